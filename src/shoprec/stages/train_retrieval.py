"""DVC stage ``train_retrieval``: the TFRS two-tower, fitted twice (replay and final) and exported.

The ``replay`` model sees train before the validation window, so the ranker can learn
from candidates as they look when the labels are still unseen; the ``final`` model sees
all of train and serves. Each phase stores every training user's query vector as of
its cut-off plus the cold-start vector (:class:`~shoprec.models.store.StoredVectors`), and its
query tower as arrays, with which scoring recomputes a shopper's vector from a fresher history
(:class:`~shoprec.models.query_tower.QueryTowerWeights`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from shoprec.config import Params
from shoprec.layout import RetrievalFiles, SplitFiles
from shoprec.models.catalog import Catalog
from shoprec.models.export import export_retrieval
from shoprec.models.multistage import fit_retrieval, query_embedder
from shoprec.models.query_tower import QueryTowerWeights
from shoprec.models.retrieval import embed_candidates
from shoprec.models.store import load_catalog, phases
from shoprec.models.training import configure_precision, distribution, output_folder, set_seeds, write_losses
from shoprec.text.catalog_embeddings import write_embeddings


def train_retrieval(split_dir: Path, items_path: Path, text_emb_path: Path, out_dir: Path, params: Params) -> Path:
    """Fit the replay and final two-towers; write their vectors, the loss curves and the export.

    Under ``TF_CONFIG`` every worker runs this same function; the chief writes ``out_dir``.
    """
    strategy = distribution()
    set_seeds(params.seed)
    configure_precision(params.retrieval.mixed_precision)
    catalog = load_catalog(items_path, text_emb_path)
    with output_folder(out_dir, strategy) as folder:
        _fit_phases(SplitFiles(split_dir), catalog, RetrievalFiles(folder), params, strategy)
    return out_dir


def _fit_phases(split: SplitFiles, catalog: Catalog, out: RetrievalFiles, params: Params,
                strategy: tf.distribute.Strategy) -> None:
    losses: dict[str, list[float]] = {}
    for phase, (events, cutoff) in phases(split).items():
        fitted = fit_retrieval(events, catalog, params, strategy)
        embed = query_embedder(fitted, events, catalog, cutoff, params)
        users = np.asarray(sorted(fitted.data.user_index), dtype=object)
        item_emb = embed_candidates(fitted.model, catalog.n_items)
        out.embeddings(phase).parent.mkdir(parents=True, exist_ok=True)
        np.savez(out.embeddings(phase), user_ids=users.astype(str), query_emb=embed(users),
                 cold_query_emb=embed(np.array([""], dtype=object))[0], item_emb=item_emb)
        QueryTowerWeights.from_model(fitted.model, users, catalog.n_items).save(out.query_tower(phase))
        losses[f"two_tower_{phase}"] = fitted.losses
        if phase == "final":
            write_embeddings(catalog.item_ids, item_emb, out.item_embeddings)
            export_retrieval(fitted, catalog, item_emb, out.saved_model)
    write_losses(losses, out.losses)

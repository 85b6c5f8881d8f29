"""DVC stages ``train_retrieval`` and ``train_ranking``, and loading what they wrote.

Layout under ``models/``::

    retrieval/replay/embeddings.npz   two-tower fitted on train before valid_start
    retrieval/final/embeddings.npz    two-tower fitted on all of train
    retrieval/final/weights.*         its Keras weights
    retrieval/item_embeddings.parquet final candidate embeddings, for ANN indexes
    retrieval/losses.csv, ranking/losses.csv   training loss per epoch (dvc plots)
    retrieval/saved_model/            query tower + BruteForce index, raw ids in
    ranking/weights.*, ranking/config.json, ranking/saved_model/

The embeddings files hold the query vector of every train user as of the phase's
cut-off plus the cold-start vector, so later stages need no two-tower to rebuild a
:class:`UserState`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from shoprec.config import Params
from shoprec.data.split import SplitPaths
from shoprec.models.candidates import UserState
from shoprec.models.catalog import Catalog
from shoprec.models.multistage import (
    MultiStage, fit_ranker, fit_retrieval, heads_for, query_embedder, user_state,
)
from shoprec.config import RankingParams
from shoprec.models.ranking import Ranker
from shoprec.paths import Artifacts
from shoprec.models.retrieval import embed_candidates
from shoprec.models.training import configure_precision, distribution, set_seeds, write_losses
from shoprec.text.catalog_embeddings import read_embeddings, write_embeddings


def load_catalog(items_path: Path, text_emb_path: Path) -> Catalog:
    items = pd.read_parquet(items_path)
    ids, vectors = read_embeddings(text_emb_path)
    if not np.array_equal(ids, items["item_id"].to_numpy(dtype=object)):
        raise ValueError(f"{text_emb_path} does not match {items_path} row for row; re-run the embed_items stage")
    return Catalog.build(items, vectors)


def cutoffs(split_dir: Path) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(valid_start, test_start) of the split."""
    summary = json.loads(SplitPaths.under(split_dir).summary.read_text())
    return pd.Timestamp(summary["valid_start"]), pd.Timestamp(summary["test_start"])


def _phases(split_dir: Path) -> dict[str, tuple[pd.DataFrame, pd.Timestamp]]:
    train = pd.read_parquet(SplitPaths.under(split_dir).train)
    valid_start, test_start = cutoffs(split_dir)
    return {"replay": (train[train["timestamp"] < valid_start], valid_start), "final": (train, test_start)}


def train_retrieval(split_dir: Path, items_path: Path, text_emb_path: Path, out_dir: Path, params: Params) -> Path:
    """Fit the replay and final two-towers; write their embeddings, weights and the export."""
    from shoprec.models.export import export_retrieval

    set_seeds(params.seed)
    configure_precision(params.retrieval.mixed_precision)
    strategy = distribution()
    catalog = load_catalog(items_path, text_emb_path)
    losses: dict[str, list[float]] = {}
    for phase, (events, cutoff) in _phases(split_dir).items():
        fitted = fit_retrieval(events, catalog, params, strategy)
        embed = query_embedder(fitted, events, catalog, cutoff, params)
        users = np.asarray(sorted(fitted.data.user_index), dtype=object)
        item_emb = embed_candidates(fitted.model, catalog.n_items)
        (out_dir / phase).mkdir(parents=True, exist_ok=True)
        np.savez(out_dir / phase / "embeddings.npz", user_ids=users.astype(str), query_emb=embed(users),
                 cold_query_emb=embed(np.array([""], dtype=object))[0], item_emb=item_emb)
        losses[f"two_tower_{phase}"] = fitted.losses
        if phase == "final":
            write_embeddings(catalog.item_ids, item_emb, out_dir / "item_embeddings.parquet")
            export_retrieval(fitted, catalog, item_emb, out_dir / "saved_model")
    write_losses(losses, out_dir / "losses.csv")
    return out_dir


def stored_state(events: pd.DataFrame, catalog: Catalog, cutoff: pd.Timestamp, cfg: Params,
                 embeddings_path: Path) -> UserState:
    """Rebuild a :class:`UserState` from events and a stored embeddings file."""
    stored = np.load(embeddings_path, allow_pickle=False)
    row = {u: i for i, u in enumerate(stored["user_ids"])}
    query_emb, cold = stored["query_emb"], stored["cold_query_emb"]

    def lookup(user_ids: np.ndarray) -> np.ndarray:
        idx = np.fromiter((row.get(str(u), -1) for u in user_ids), dtype=np.int64, count=len(user_ids))
        return np.where((idx >= 0)[:, None], query_emb[np.maximum(idx, 0)], cold[None, :])

    return user_state(events, catalog, cutoff, cfg, lookup, stored["item_emb"])


def train_ranking(split_dir: Path, items_path: Path, text_emb_path: Path, retrieval_dir: Path, out_dir: Path,
                  params: Params) -> Path:
    """Fit the DCN ranker on the replay window; write weights, config and the export."""
    from shoprec.models.export import export_ranking

    set_seeds(params.seed)
    configure_precision(params.retrieval.mixed_precision)
    catalog = load_catalog(items_path, text_emb_path)
    train = pd.read_parquet(SplitPaths.under(split_dir).train)
    valid_start, _ = cutoffs(split_dir)
    prefix, window = train[train["timestamp"] < valid_start], train[train["timestamp"] >= valid_start]
    replay = stored_state(prefix, catalog, valid_start, params, retrieval_dir / "replay" / "embeddings.npz")
    heads = heads_for(train)
    ranker, report = fit_ranker(replay, window, catalog, heads, params, distribution())
    out_dir.mkdir(parents=True, exist_ok=True)
    ranker.save_weights(str(out_dir / "weights"))
    (out_dir / "config.json").write_text(json.dumps(
        {"heads": heads, "ranking": params.ranking.model_dump(), "n_numeric": int(ranker.norm.mean.shape[-1]),
         "report": report}, indent=2) + "\n")
    write_losses({"ranker": report["losses"]}, out_dir / "losses.csv")
    export_ranking(ranker, catalog.text_emb.shape[1], int(ranker.norm.mean.shape[-1]), out_dir / "saved_model")
    return out_dir


def load_ranker(ranking_dir: Path) -> Ranker:
    spec = json.loads((ranking_dir / "config.json").read_text())
    model = Ranker(spec["heads"], RankingParams.model_validate(spec["ranking"]), np.zeros((2, spec["n_numeric"]), np.float32))
    model.load_weights(str(ranking_dir / "weights")).expect_partial()
    return model


def load_system(split_dir: Path, items_path: Path, text_emb_path: Path, retrieval_dir: Path, ranking_dir: Path,
                params: Params) -> MultiStage:
    """The full system as of the test cut-off, ready to score (evaluation, CLI, service)."""
    catalog = load_catalog(items_path, text_emb_path)
    train, test_start = _phases(split_dir)["final"]
    state = stored_state(train, catalog, test_start, params, retrieval_dir / "final" / "embeddings.npz")
    return MultiStage(catalog, state, load_ranker(ranking_dir), params)


def load_artifacts(params: Params, artifacts: Artifacts = Artifacts()) -> MultiStage:
    """:func:`load_system` on the standard ``dvc.yaml`` output paths."""
    return load_system(artifacts.split, artifacts.items, artifacts.text_embeddings, artifacts.retrieval,
                       artifacts.ranking, params)

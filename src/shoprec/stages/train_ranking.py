"""DVC stage ``train_ranking``: the DCN ranker (click and purchase heads) on the replay window.

Candidates and features come from the ``replay`` two-tower as of the validation window's
start and are labelled by what shoppers did in that window (:mod:`shoprec.models.multistage`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from shoprec.config import Params
from shoprec.layout import RankingFiles, RetrievalFiles, SplitFiles
from shoprec.models.catalog import Catalog
from shoprec.models.export import export_ranking
from shoprec.models.multistage import fit_ranker, heads_for
from shoprec.models.ranking import Ranker
from shoprec.models.store import cutoffs, load_catalog, stored_state
from shoprec.models.training import configure_precision, distribution, output_folder, set_seeds, write_losses


def train_ranking(split_dir: Path, items_path: Path, text_emb_path: Path, retrieval_dir: Path, out_dir: Path,
                  params: Params) -> Path:
    """Fit the ranker; write its weights, config, loss curve and export (the chief's, under ``TF_CONFIG``)."""
    strategy = distribution()
    set_seeds(params.seed)
    configure_precision(params.retrieval.mixed_precision)
    catalog = load_catalog(items_path, text_emb_path)
    split = SplitFiles(split_dir)
    train = pd.read_parquet(split.train)
    valid_start, _ = cutoffs(split)
    prefix, window = train[train["timestamp"] < valid_start], train[train["timestamp"] >= valid_start]
    replay = stored_state(prefix, catalog, valid_start, params, RetrievalFiles(retrieval_dir), "replay")
    heads = heads_for(train)
    ranker, report = fit_ranker(replay, window, catalog, heads, params, strategy)
    with output_folder(out_dir, strategy) as folder:
        _write(ranker, report, heads, catalog, RankingFiles(folder), params)
    return out_dir


def _write(ranker: Ranker, report: dict, heads: list[str], catalog: Catalog, out: RankingFiles, params: Params) -> None:
    out.folder.mkdir(parents=True, exist_ok=True)
    ranker.save_weights(str(out.weights))
    out.config.write_text(json.dumps(
        {"heads": heads, "ranking": params.ranking.model_dump(), "n_numeric": int(ranker.norm.mean.shape[-1]),
         "report": report}, indent=2) + "\n")
    write_losses({"ranker": report["losses"]}, out.losses)
    export_ranking(ranker, catalog.text_emb.shape[1], int(ranker.norm.mean.shape[-1]), out.saved_model)

"""Benchmark: the retrieval stage's two-tower, part by part, on Online Retail's validation window.

Each variant is the pipeline's own two-tower (``fit_retrieval``) with some
``retrieval.*`` settings changed, fitted on train before the validation window and
scored on the window's purchases exactly as the replay phase would see them (R@20 and
nDCG@20, "all" and "new"); the ids-only reference two-tower and popularity are fitted
and scored on the same window in the same run. The test window is never read, so the
table may choose settings.

Run: .venv/bin/python bench/bench_retrieval_ablation.py [variant ...]   (default: every variant)
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_reference_two_tower import (  # noqa: E402
    DATA, both_views, copy_repo, fit_reference, popularity_top20, print_table, split_of_online_retail, top20,
)

from shoprec.config import Params, load_params  # noqa: E402
from shoprec.data.split import ground_truth  # noqa: E402
from shoprec.models.multistage import fit_retrieval, query_embedder  # noqa: E402
from shoprec.models.retrieval import embed_candidates  # noqa: E402
from shoprec.models.store import load_catalog  # noqa: E402
from shoprec.models.training import distribution, set_seeds  # noqa: E402
from shoprec.pipeline import run_stage  # noqa: E402

CONTENT = ["text", "category", "brand", "price"]
VARIANTS: dict[str, dict] = {
    "as configured": {},
    "distinct rows": {"examples": "distinct"},
    "ids only": {"item_features": ["id"], "query_features": ["user"]},
    "no content": {"item_features": ["id"]},
    "no history": {"query_features": ["user", "dow"]},
    "no user id": {"query_features": ["history", "dow"]},
    "no day of week": {"query_features": ["user", "history"]},
    **{f"no {part}": {"item_features": ["id"] + [p for p in CONTENT if p != part]} for part in CONTENT},
    "temperature 0.1": {"temperature": 0.1},
    "10 epochs": {"epochs": 10},
    "no user dropout": {"user_dropout": 0.0},
    "reference's training": {"temperature": 0.1, "epochs": 10, "user_dropout": 0.0},
}


def with_retrieval(params: Params, changes: dict) -> Params:
    return params.model_copy(update={"retrieval": params.retrieval.model_copy(update=changes)})


def pipeline_two_tower(fit: pd.DataFrame, catalog, params: Params, cutoff: pd.Timestamp):
    """``(users, bought) -> top-20 lists`` of the pipeline's two-tower fitted on ``fit``, scored as of ``cutoff``."""
    set_seeds(params.seed)
    started = time.perf_counter()
    fitted = fit_retrieval(fit, catalog, params, distribution())
    seconds = time.perf_counter() - started
    embed = query_embedder(fitted, fit, catalog, cutoff, params)
    item_vectors = embed_candidates(fitted.model, catalog.n_items)

    def recommend(users: np.ndarray, bought: dict | None) -> dict:
        masks = None if bought is None else [{catalog.row_of[i] for i in bought.get(u, ())} for u in users]
        return dict(zip(users, top20(embed(users), item_vectors, catalog.item_ids, masks)))

    return recommend, seconds


def main() -> None:
    if not DATA.exists():
        sys.exit(f"skipped: {DATA} not found")
    chosen = sys.argv[1:] or list(VARIANTS)
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown:
        sys.exit(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    with tempfile.TemporaryDirectory() as tmp:
        root = copy_repo(Path(tmp), {"ingest.source": "online_retail", "ingest.path": str(DATA)})
        split = split_of_online_retail(root)
        for stage in ("finetune_text", "embed_items"):
            run_stage(stage, root=root)
        catalog = load_catalog(root / "data" / "clean" / "items.parquet",
                               root / "data" / "features" / "item_text_embeddings.parquet")
        params = load_params(root / "params.yaml")
        train = pd.read_parquet(split / "train.parquet")
        valid_start = pd.Timestamp(json.loads((split / "split.json").read_text())["valid_start"])
    fit, window = train[train["timestamp"] < valid_start], train[train["timestamp"] >= valid_start]
    truth = ground_truth(fit, window)
    users = np.array(sorted(set(truth.loc[truth["known_item"], "user_id"])))
    bought = fit[fit["event_type"] == "purchase"].groupby("user_id")["item_id"].agg(set).to_dict()
    print(f"validation window from {valid_start:%Y-%m-%d}: {len(users):,} shoppers bought known items; "
          f"fitted on {len(fit):,} events before it")
    print(f"pipeline settings: {params.retrieval.model_dump()}")
    reference = fit_reference(fit, 10, 0.1)
    print_table({"reference (ids, 10 epochs)": both_views(reference.top20, users, truth, bought),
                 "popularity": both_views(lambda u, b: popularity_top20(fit, u, b), users, truth, bought)})
    for name in chosen:
        recommend, seconds = pipeline_two_tower(fit, catalog, with_retrieval(params, VARIANTS[name]), valid_start)
        print_table({f"{name} ({seconds:.0f} s)": both_views(recommend, users, truth, bought)}, header=False)


if __name__ == "__main__":
    main()

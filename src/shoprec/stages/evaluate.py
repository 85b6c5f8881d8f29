"""DVC stage ``evaluate``: every system, both views, the same code path.

Systems: the baselines (popularity, own_history, itemknn, ease), ``two_tower``
(retrieval alone) and ``shoprec`` (retrieve -> rank). Each produces its top-``list_length``
for every test user with known-item truth; metrics are computed from those lists only,
and the lists are written to ``recommendations.parquet`` so anyone can recompute them.

``metrics.json`` holds what the data and models determine, so a rerun writes the same
bytes; how long each system took is a run detail, written to ``timings`` when given (an
untracked file, never a DVC output).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from shoprec.config import Params
from shoprec.evaluation.lists import VIEWS, recommend_batches
from shoprec.evaluation.metrics import (
    auc,
    coverage,
    intra_list_diversity,
    log_loss,
    novelty,
    ranking_metrics,
)
from shoprec.evaluation.slices import popularity_buckets, slice_recalls
from shoprec.layout import RankingFiles, ReportFiles, RetrievalFiles, SplitFiles
from shoprec.models.multistage import label_pairs
from shoprec.models.store import load_system, scorers


def _truth(split: SplitFiles) -> tuple[dict[str, set], dict[str, set]]:
    """Per-user test purchases of items seen in train, and of items never seen (cold)."""
    truth = pd.read_parquet(split.test_truth)
    by_user = lambda frame: frame.groupby("user_id")["item_id"].agg(set).to_dict()  # noqa: E731
    return by_user(truth[truth["known_item"]]), by_user(truth[~truth["known_item"]])


def head_metrics(system, test: pd.DataFrame, users: np.ndarray, rows: np.ndarray) -> dict[str, dict[str, float]]:
    """AUC and log-loss of each ranking head on the test users' candidates, labelled by the test window."""
    cands, pred = system.rank(rows)
    labels = label_pairs(test, users, cands, system.catalog, list(pred))
    return {h: {"auc": round(auc(labels[f"label_{h}"], p), 6), "log_loss": round(log_loss(labels[f"label_{h}"], p), 6),
                "pairs": int(len(p)), "positives": int(labels[f"label_{h}"].sum())} for h, p in pred.items()}


def evaluate(split_dir: Path, items_path: Path, text_emb_path: Path, retrieval_dir: Path, ranking_dir: Path,
             out_dir: Path, params: Params, timings: Path | None = None) -> Path:
    split, report = SplitFiles(split_dir), ReportFiles(out_dir)
    system = load_system(split, items_path, text_emb_path, RetrievalFiles(retrieval_dir), RankingFiles(ranking_dir),
                         params)
    state, catalog = system.state, system.catalog
    inter = state.inter
    truth, cold_truth = _truth(split)
    users = np.asarray(sorted(truth.keys() | cold_truth.keys()), dtype=object)
    truth = {u: truth.get(u, set()) for u in users}
    rows = inter.rows(users)
    bought = {u: set(catalog.item_ids[inter.purchased[r].indices]) if r >= 0 else set() for u, r in zip(users, rows)}
    share = inter.item_popularity() / max(inter.item_popularity().sum(), 1e-9)
    item_bucket = popularity_buckets(catalog.item_ids, inter.item_popularity())
    purchases = dict(zip(users, state.at(rows).purchases))
    metrics, frames, seconds = {}, [], {}
    n = params.evaluate.list_length
    for scorer in (build() for build in scorers(system, params).values()):
        metrics[scorer.name] = {}
        for view in VIEWS:
            exclude = inter.purchased[np.maximum(rows, 0)].multiply((rows >= 0)[:, None]).tocsr() if view == "new" else None
            start = time.perf_counter()
            lists: dict[str, np.ndarray] = {}
            for sl, top in recommend_batches(scorer, rows, n, exclude):
                lists.update(zip(users[sl], top))
            seconds[f"{scorer.name}/{view}"] = round(1000 * (time.perf_counter() - start) / max(len(users), 1), 3)
            view_truth = truth if view == "all" else {u: truth[u] - bought[u] for u in users}
            named = {u: list(catalog.item_ids[idx]) for u, idx in lists.items()}
            m = ranking_metrics(named, view_truth, params.evaluate.ks)
            m |= {
                "coverage@20": coverage(lists, catalog.n_items, 20),
                "diversity@20": intra_list_diversity(lists, catalog.text_emb, 20),
                "novelty@20": novelty(lists, share, 20),
            }
            metrics[scorer.name][view] = {k: round(float(v), 6) for k, v in m.items()}
            if view == "all":
                metrics[scorer.name]["slices"] = slice_recalls(named, truth, cold_truth, purchases, item_bucket)
            frames.append(pd.DataFrame({
                "system": scorer.name, "view": view,
                "user_id": np.repeat(users, [len(lists[u]) for u in users]),
                "rank": np.concatenate([np.arange(1, len(lists[u]) + 1) for u in users]),
                "item_id": np.concatenate([catalog.item_ids[lists[u]] for u in users]),
            }))
    test = pd.read_parquet(split.test)
    metrics[system.name]["heads"] = head_metrics(system, test, users, rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    pd.concat(frames, ignore_index=True).to_parquet(report.recommendations, index=False)
    _recall_curves(metrics, params.evaluate.ks, report)
    report.metrics.write_text(json.dumps(metrics, indent=2) + "\n")
    if timings is not None:
        timings.parent.mkdir(parents=True, exist_ok=True)
        timings.write_text(json.dumps({"seconds_per_1000_users": seconds}, indent=2) + "\n")
    return report.metrics


def _recall_curves(metrics: dict, ks: list[int], report: ReportFiles) -> None:
    """``recall_curves.csv`` for ``dvc plots`` (one column per system: DVC draws a line per column) and a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = {"k": ks} | {s: [metrics[s]["all"][f"recall@{k}"] for k in ks] for s in metrics}
    pd.DataFrame(curves).to_csv(report.recall_curves, index=False)
    fig, ax = plt.subplots(figsize=(6, 4))
    for s in metrics:
        ax.plot(ks, [metrics[s]["all"][f"recall@{k}"] for k in ks], marker="o", label=s)
    ax.set_xlabel("K"), ax.set_ylabel("Recall@K (all)"), ax.legend(), ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(report.recall_plot, dpi=100)
    plt.close(fig)

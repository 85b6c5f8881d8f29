"""Search quality on graded query labels, per system and per query type.

Per query with labels ``rel(i)`` in 0..3 (unlabelled items count as 0) and a ranked list:

* nDCG@10 with graded gains ``2^rel - 1``: ``DCG = sum_r gain(i_r) / log2(r + 1)`` over
  the top 10, divided by the same sum over the labels sorted by relevance;
* MRR: ``1 / rank`` of the first relevant item (``rel >= 2``: the wanted item, or one
  with its noun and every attribute the query names), 0 if none in the list;
* Recall@50: relevant items in the top 50 over ``min(50, #relevant)``
  (:func:`shoprec.evaluation.metrics.user_metrics`);
* zero-result rate: share of queries with an empty list.

Means are taken over queries, overall and per type (the ``query_id`` prefix).

*Text ceiling* (:func:`text_ceiling`): the expected nDCG@10 of a ranker that puts every
item with relevance >= 2 first, then the 1s, but cannot tell the one grade-3 item (the
item the shopper wanted) from the grade-2 items that match every word of the query, so
places it uniformly at random among those ``m`` first places. The expected gain at rank
``r <= m`` is then ``(7 + 3 (m - 1)) / m`` and 1 below (grade 1, while they last):

    E[DCG] = sum_{r <= min(m, 10)} (7 + 3 (m - 1)) / m / log2(r + 1)
             + sum_{m < r <= min(m + n_1, 10)} 1 / log2(r + 1).

It is what perfect text matching can expect on labels of this kind, so it says how much
of the gap above a baseline is left. It is not a hard bound: where something other than
the words picks the wanted item (popularity, luck), a ranker can beat it on a query type.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from shoprec.evaluation.metrics import user_metrics

RELEVANT = 2


def query_metrics(ranked: list[str], labels: dict[str, int]) -> dict[str, float]:
    gains = {item: 2.0 ** rel - 1.0 for item, rel in labels.items()}
    disc = 1.0 / np.log2(np.arange(2, 12))
    dcg = sum(gains.get(item, 0.0) * d for item, d in zip(ranked[:10], disc))
    ideal = sorted(gains.values(), reverse=True)[:10]
    idcg = float(np.dot(ideal, disc[: len(ideal)]))
    relevant = {item for item, rel in labels.items() if rel >= RELEVANT}
    first = next((r for r, item in enumerate(ranked, 1) if item in relevant), None)
    return {
        "ndcg@10": dcg / idcg if idcg > 0 else 0.0,
        "mrr": 1.0 / first if first else 0.0,
        "recall@50": user_metrics(ranked, relevant, 50)["recall@50"] if relevant else 0.0,
        "zero_result": float(len(ranked) == 0),
    }


def ceiling_ndcg(relevance: np.ndarray) -> float:
    """Expected nDCG@10 of the text ceiling (module docstring) for one query's labels."""
    rel = np.sort(np.asarray(relevance))[::-1]
    disc = 1.0 / np.log2(np.arange(2, 12))
    gains = 2.0 ** rel[:10] - 1.0
    idcg = float(gains @ disc[: len(gains)])
    top = rel[rel >= RELEVANT]
    expected = np.full(len(gains), 0.0)
    expected[: len(top)] = (2.0 ** top - 1.0).mean()
    expected[len(top):] = gains[len(top):]
    return float(expected @ disc[: len(gains)]) / idcg if idcg > 0 else 0.0


def text_ceiling(labels: pd.DataFrame) -> dict:
    """``{"all": {"ndcg@10"}, "by_type": {type: {"ndcg@10"}}}`` of the text ceiling."""
    per_query = labels.groupby("query_id", sort=True)["relevance"].apply(lambda r: ceiling_ndcg(r.to_numpy()))
    types = per_query.index.str.split("-", n=1).str[0]
    mean = lambda v: {"ndcg@10": round(float(v.mean()), 4)}  # noqa: E731
    return {"all": mean(per_query), "by_type": {t: mean(v) for t, v in per_query.groupby(types, sort=True)}}


def evaluate_queries(labels: pd.DataFrame, ranker: Callable[[str], list[str]]) -> dict:
    """``{"all": means, "by_type": {type: means}, "queries": n}`` for one system."""
    rows = []
    for qid, group in labels.groupby("query_id", sort=True):
        ranked = ranker(str(group["query"].iloc[0]))
        rows.append({"type": qid.split("-", 1)[0]} | query_metrics(ranked, dict(zip(group["item_id"], group["relevance"]))))
    frame = pd.DataFrame(rows)
    means = lambda f: {k: round(float(v), 4) for k, v in f.drop(columns="type").mean().items()}  # noqa: E731
    return {"queries": len(frame), "all": means(frame),
            "by_type": {t: means(g) for t, g in frame.groupby("type", sort=True)}}


def table(metrics: dict, systems: list[str]) -> str:
    """Markdown comparison: one row per system, overall and per-type nDCG@10 (and the text ceiling's)."""
    types = sorted(metrics[systems[0]]["by_type"])
    head = ["system", "nDCG@10", "MRR", "Recall@50", "zero-result"] + [f"nDCG@10 {t}" for t in types]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in systems:
        m = metrics[s]["all"]
        cells = [s, m["ndcg@10"], m["mrr"], m["recall@50"], m["zero_result"]]
        cells += [metrics[s]["by_type"][t]["ndcg@10"] for t in types]
        lines.append("| " + " | ".join(f"{c:.3f}" if isinstance(c, float) else str(c) for c in cells) + " |")
    if "text_ceiling" in metrics:
        ceiling = metrics["text_ceiling"]
        cells = ["text ceiling", ceiling["all"]["ndcg@10"], "", "", ""]
        cells += [ceiling["by_type"][t]["ndcg@10"] for t in types]
        lines.append("| " + " | ".join(f"{c:.3f}" if isinstance(c, float) else str(c) for c in cells) + " |")
    return "\n".join(lines)

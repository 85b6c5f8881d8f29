"""The gate's rules: refuse a model that does not beat the strongest simple baseline, beyond noise.

Recommendations: the best baseline is the one with the highest mean ``gate.metric`` on
``gate.view``; the per-user scores of the system and of that baseline, recomputed from
the evaluated lists (``recommendations.parquet``) and the test truth, go through a paired
bootstrap over users (:mod:`shoprec.evaluation.significance`). Pass iff the lower bound
of the ``gate.confidence`` interval of ``mean(system - baseline)`` is above
``gate.margin``: a lead the luck of the test shoppers could explain does not pass.

Search (when there are labelled queries): the same test of hybrid against lexical search,
paired over queries on nDCG@10, against ``gate.search_margin``; without labelled queries
(e.g. Online Retail) there is nothing to compare and search passes with that reason.

The ``gate`` stage (:mod:`shoprec.stages.gate`) writes each decision and its reason either
way; a refusal then stops the pipeline before packaging. :func:`headline` picks the few
numbers ``dvc metrics show`` and ``dvc metrics diff`` read.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from shoprec.config import GateParams
from shoprec.evaluation.metrics import user_metrics
from shoprec.evaluation.significance import paired_bootstrap
from shoprec.search.evaluate import query_metrics

BASELINES = ("popularity", "own_history", "itemknn", "ease")
HEADLINE_METRICS = ("recall@20", "ndcg@20")  # per system and view
SEARCH_HEADLINE = "ndcg@10"  # per search system
SEARCH_RIVALS = ("hybrid", "lexical")


class GateRefused(RuntimeError):
    pass


def per_user_scores(lists: pd.DataFrame, truth: pd.DataFrame, systems: list[str], view: str,
                    metric: str) -> dict[str, np.ndarray]:
    """``metric`` of each system per test user of ``view`` (users with known-item truth there), aligned by user.

    The same users and formula as the evaluate stage's means: known items only; the "new"
    view leaves out what the user bought in train. A user without a list scores 0.
    """
    k = int(metric.split("@")[1])
    keep = truth["known_item"] & ~truth["bought_before"] if view == "new" else truth["known_item"]
    known = truth[keep]
    wanted = known.groupby("user_id", sort=True)["item_id"].agg(set)
    chosen = lists[(lists["view"] == view) & lists["system"].isin(systems)].sort_values(["system", "user_id", "rank"])
    ranked = chosen.groupby(["system", "user_id"], sort=False)["item_id"].agg(list)
    return {s: np.array([user_metrics(ranked.get((s, u), []), items, k)[metric] for u, items in wanted.items()])
            for s in systems}


def decide(metrics: dict, lists: pd.DataFrame, truth: pd.DataFrame, params: GateParams, seed: int) -> dict:
    def value(system: str) -> float:
        return float(metrics[system][params.view][params.metric])

    best = max(BASELINES, key=value)
    scores = per_user_scores(lists, truth, [params.system, best], params.view, params.metric)
    interval = paired_bootstrap(scores[params.system], scores[best], params.resamples, params.confidence, seed)
    passed = interval["low"] > params.margin
    reason = (
        f"{params.system} {params.metric} ({params.view}) = {value(params.system):.4f} against the best baseline "
        f"{best} = {value(best):.4f}: {_interval(interval)} over {interval['units']:,} users; its lower bound is "
        f"{'above' if passed else 'not above'} the margin {params.margin}"
    )
    return {"passed": passed, "system": params.system, "metric": params.metric, "view": params.view,
            "value": value(params.system), "best_baseline": best, "baseline_value": value(best),
            "margin": params.margin, **interval, "reason": reason}


def decide_search(search_metrics: dict, search_lists: pd.DataFrame, labels: pd.DataFrame, params: GateParams,
                  seed: int) -> dict:
    """Hybrid search against lexical search on nDCG@10, paired over queries (see module docstring)."""
    if not search_metrics.get("queries"):
        return {"passed": True, "reason": "search: no labelled queries, nothing to compare"}
    wanted = {qid: dict(zip(g["item_id"], g["relevance"])) for qid, g in labels.groupby("query_id", sort=True)}
    ranked = search_lists.sort_values(["system", "query_id", "rank"]).groupby(["system", "query_id"])["item_id"].agg(list)
    hybrid, lexical = (np.array([query_metrics(ranked.get((s, q), []), rel)[SEARCH_HEADLINE] for q, rel in wanted.items()])
                       for s in SEARCH_RIVALS)
    interval = paired_bootstrap(hybrid, lexical, params.resamples, params.confidence, seed)
    passed = interval["low"] > params.search_margin
    means = {s: float(search_metrics[s]["all"][SEARCH_HEADLINE]) for s in SEARCH_RIVALS}
    return {"passed": passed, **means, "margin": params.search_margin, **interval,
            "reason": f"search: hybrid ndcg@10 = {means['hybrid']:.4f} against lexical = {means['lexical']:.4f}: "
                      f"{_interval(interval)} over {interval['units']:,} queries; its lower bound is "
                      f"{'above' if passed else 'not above'} the margin {params.search_margin}"}


def _interval(interval: dict) -> str:
    return (f"difference {interval['difference']:+.4f}, {interval['level']:.0%} interval "
            f"[{interval['low']:+.4f}, {interval['high']:+.4f}] ({interval['resamples']:,} paired resamples)")


def headline(metrics: dict, search_metrics: dict | None, decision: dict) -> dict:
    """Primary metrics per system and view, search nDCG@10 per system, first-choice MRR per mode on the
    logged searches, the gate's decisions and intervals."""
    out: dict = {"recommend": {system: {view: {m: views[view][m] for m in HEADLINE_METRICS} for view in ("all", "new")}
                               for system, views in metrics.items()}}
    if search_metrics is not None and search_metrics.get("queries"):
        out["search"] = {system: search_metrics[system]["all"][SEARCH_HEADLINE]
                         for system, value in search_metrics.items() if isinstance(value, dict) and "all" in value
                         and system != "text_ceiling"}
    if search_metrics is not None and search_metrics.get("logged", {}).get("searches"):
        out["search_logged"] = search_metrics["logged"]  # first-choice MRR on the scored window's searches
    out["gate"] = {"passed": decision["passed"], "difference": decision["difference"], "low": decision["low"]}
    if "search" in decision:
        out["gate"] |= {"search_passed": decision["search"]["passed"]}
        if "low" in decision["search"]:
            out["gate"] |= {"search_difference": decision["search"]["difference"], "search_low": decision["search"]["low"]}
    return out

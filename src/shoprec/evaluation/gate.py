"""The gate's rules: refuse a model that does not beat the strongest simple baseline.

Decision: pass iff ``metric(system) > max_b metric(b) + margin`` over the baselines, on
the configured view. The ``gate`` stage (:mod:`shoprec.stages.gate`) writes the
decision and its reason either way; a refusal then stops the pipeline before packaging.

Search (when ``search_metrics.json`` is given): hybrid search must not be worse than
lexical search alone, ``ndcg@10(hybrid) >= ndcg@10(lexical)`` over the labelled queries;
without labelled queries (e.g. Online Retail) there is nothing to compare and search
passes with that reason.

:func:`headline` picks the few numbers ``dvc metrics show`` and ``dvc metrics diff`` read.
"""

from __future__ import annotations

from shoprec.config import GateParams

BASELINES = ("popularity", "own_history", "itemknn", "ease")
HEADLINE_METRICS = ("recall@20", "ndcg@20")  # per system and view
SEARCH_HEADLINE = "ndcg@10"  # per search system


class GateRefused(RuntimeError):
    pass


def decide(metrics: dict, params: GateParams) -> dict:
    def value(system: str) -> float:
        return float(metrics[system][params.view][params.metric])

    best = max(BASELINES, key=value)
    passed = value(params.system) > value(best) + params.margin
    verb = "beats" if passed else "does not beat"
    reason = (
        f"{params.system} {params.metric} ({params.view}) = {value(params.system):.4f} {verb} "
        f"the best baseline {best} = {value(best):.4f} + margin {params.margin}"
    )
    return {"passed": passed, "system": params.system, "metric": params.metric, "view": params.view,
            "value": value(params.system), "best_baseline": best, "baseline_value": value(best),
            "margin": params.margin, "reason": reason}


def decide_search(search_metrics: dict) -> dict:
    """Hybrid search must match or beat lexical search on nDCG@10 (see module docstring)."""
    if not search_metrics.get("queries"):
        return {"passed": True, "reason": "search: no labelled queries, nothing to compare"}
    hybrid, lexical = (float(search_metrics[s]["all"]["ndcg@10"]) for s in ("hybrid", "lexical"))
    passed = hybrid >= lexical
    verb = "is not worse than" if passed else "is worse than"
    return {"passed": passed, "hybrid": hybrid, "lexical": lexical,
            "reason": f"search: hybrid ndcg@10 = {hybrid:.4f} {verb} lexical = {lexical:.4f}"}


def headline(metrics: dict, search_metrics: dict | None, decision: dict) -> dict:
    """Primary metrics per system and view, search nDCG@10 per system, the gate's decisions."""
    out: dict = {"recommend": {system: {view: {m: views[view][m] for m in HEADLINE_METRICS} for view in ("all", "new")}
                               for system, views in metrics.items()}}
    if search_metrics is not None and search_metrics.get("queries"):
        out["search"] = {system: search_metrics[system]["all"][SEARCH_HEADLINE]
                         for system, value in search_metrics.items() if isinstance(value, dict) and "all" in value
                         and system != "text_ceiling"}
    out["gate"] = {"passed": decision["passed"]} | (
        {"search_passed": decision["search"]["passed"]} if "search" in decision else {})
    return out

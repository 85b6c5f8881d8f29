"""DVC stage ``gate``: refuse a model that does not beat the strongest simple baseline.

Decision: pass iff ``metric(system) > max_b metric(b) + margin`` over the baselines, on
the configured view. The decision and its reason are written to ``gate.json`` either
way; a refusal then stops the pipeline before packaging (non-zero exit).

Search (when ``search_metrics.json`` is given): hybrid search must not be worse than
lexical search alone, ``ndcg@10(hybrid) >= ndcg@10(lexical)`` over the labelled queries;
without labelled queries (e.g. Online Retail) there is nothing to compare and search
passes with that reason.

The stage also writes the headline metrics (:func:`headline`), the small file that
``dvc metrics show`` and ``dvc metrics diff`` read; the full reports stay beside it.
"""

from __future__ import annotations

import json
from pathlib import Path

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


def gate(metrics_path: Path, out_path: Path, params: GateParams, search_metrics_path: Path | None = None,
         headline_path: Path | None = None) -> dict:
    """Write ``gate.json`` (and ``search_gate.json`` next to it for search metrics) and the headline
    metrics; raise on either refusal.

    Returns the recommender decision, with the search decision under ``"search"`` when given.
    """
    metrics = json.loads(metrics_path.read_text())
    decision = decide(metrics, params)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(decision, indent=2) + "\n")
    refusals = [] if decision["passed"] else [f"gate refused the model: {decision['reason']} (decision in {out_path})"]
    search_metrics = json.loads(search_metrics_path.read_text()) if search_metrics_path is not None else None
    if search_metrics is not None:
        search = decide_search(search_metrics)
        search_path = out_path.with_name("search_gate.json")
        search_path.write_text(json.dumps(search, indent=2) + "\n")
        decision = decision | {"search": search}
        if not search["passed"]:
            refusals.append(f"gate refused the search models: {search['reason']} (decision in {search_path})")
    if headline_path is not None:
        headline_path.write_text(json.dumps(headline(metrics, search_metrics, decision), indent=2) + "\n")
    if refusals:
        raise GateRefused("; ".join(refusals))
    return decision

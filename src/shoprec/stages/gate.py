"""DVC stage ``gate``: pass only models that beat the strongest simple baseline (rules in
:mod:`shoprec.evaluation.gate`), and write the headline metrics file."""

from __future__ import annotations

import json
from pathlib import Path

from shoprec.config import GateParams
from shoprec.evaluation.gate import GateRefused, decide, decide_search, headline


def gate(metrics_path: Path, out_path: Path, params: GateParams, search_metrics_path: Path | None = None,
         headline_path: Path | None = None) -> dict:
    """Write the decision to ``out_path`` (and ``search_gate.json`` beside it for search metrics) and the
    headline metrics; raise :class:`GateRefused` on either refusal.

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

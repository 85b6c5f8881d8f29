"""DVC stage ``gate``: pass only models that beat the strongest simple baseline beyond noise (rules
in :mod:`shoprec.evaluation.gate`), and write the headline metrics file."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from shoprec.config import Params
from shoprec.evaluation.gate import GateRefused, decide, decide_search, headline
from shoprec.layout import ReportFiles


def gate(reports_dir: Path, test_truth: Path, params: Params, query_labels: Path | None = None) -> dict:
    """Decide on the evaluate (and evaluate_search) outputs in ``reports_dir``; write ``gate.json``,
    ``search_gate.json`` and ``headline.json`` beside them.

    ``test_truth`` is the split's truth the per-user scores are recomputed from; ``query_labels``
    the search labels. Returns the recommender decision, with the search decision under
    ``"search"`` when labels are given; raises :class:`GateRefused` on either refusal.
    """
    reports = ReportFiles(reports_dir)
    metrics = json.loads(reports.metrics.read_text())
    decision = decide(metrics, pd.read_parquet(reports.recommendations), pd.read_parquet(test_truth), params.gate,
                      params.seed)
    reports.gate.write_text(json.dumps(decision, indent=2) + "\n")
    refusals = [] if decision["passed"] else [f"gate refused the model: {decision['reason']} (decision in {reports.gate})"]
    search_metrics = None
    if query_labels is not None:
        search_metrics = json.loads(reports.search_metrics.read_text())
        search = decide_search(search_metrics, pd.read_parquet(reports.search_lists), pd.read_parquet(query_labels),
                               params.gate, params.seed)
        reports.search_gate.write_text(json.dumps(search, indent=2) + "\n")
        decision = decision | {"search": search}
        if not search["passed"]:
            refusals.append(f"gate refused the search models: {search['reason']} (decision in {reports.search_gate})")
    reports.headline.write_text(json.dumps(headline(metrics, search_metrics, decision), indent=2) + "\n")
    if refusals:
        raise GateRefused("; ".join(refusals))
    return decision

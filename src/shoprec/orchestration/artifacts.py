"""Turn the pipeline's own reports into Prefect artifacts, so a run explains itself in the UI.

The stages already write everything worth showing: ``validation.json`` (the validate
stage), ``metrics.json`` (evaluate) and ``gate.json`` (gate). After a stage, the reports
among its declared outputs are rendered here (pure functions, testable without Prefect)
and published under fixed keys, so the Artifacts page keeps one history per report.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shoprec.data.validation.report import render_markdown
from shoprec.evaluation.gate import HEADLINE_METRICS
from shoprec.layout import Layout
from shoprec.pipeline import stage_outputs

REPO = Layout(Path("."))  # report paths relative to the repository, as dvc.yaml declares them
VALIDATION_REPORT, METRICS_REPORT, GATE_REPORT = REPO.validation_report, REPO.reports.metrics, REPO.reports.gate
PACKAGE_STAGE = "package"


def validation_markdown(report: dict[str, Any]) -> str:
    """Failed expectations first (the quick answer to "why did it stop?"), then the full page."""
    failed = [
        f"- `{table}`: {e['expectation']}" + (f" on `{e['column']}`" if e.get("column") else "")
        + f" ({e['unexpected_count']:,} unexpected)"
        for table, entry in report["tables"].items()
        for e in entry["expectations"]
        if not e["success"]
    ]
    head = ["## Failed expectations", "", *(failed or ["none"]), ""]
    return "\n".join(head) + "\n" + render_markdown(report)


def metrics_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (system, view) with every metric at the headline cut-off k.

    ``metrics.json`` holds each metric at several k; the table keeps the k of the headline
    metrics (20, as in ``ndcg@20``, the gate's default). Sub-reports that are not flat
    metric views (slices, heads) are left to the JSON.
    """
    suffix = HEADLINE_METRICS[0][HEADLINE_METRICS[0].index("@"):]
    rows = []
    for system, views in metrics.items():
        for view, values in views.items():
            numbers = {k: round(float(v), 4) for k, v in values.items()
                       if isinstance(v, (int, float)) and k.endswith(suffix)}
            if numbers:
                rows.append({"system": system, "view": view, **numbers})
    return rows


def gate_markdown(decision: dict[str, Any]) -> str:
    verdict = "PASSED" if decision["passed"] else "REFUSED"
    return "\n".join([
        f"# Gate {verdict}",
        "",
        decision["reason"],
        "",
        "| | system | metric | view | value | best baseline | baseline value | difference | interval | margin |",
        "| --- | --- | --- | --- | ---: | --- | ---: | ---: | --- | ---: |",
        f"| {verdict} | {decision['system']} | {decision['metric']} | {decision['view']} | {decision['value']:.4f} "
        f"| {decision['best_baseline']} | {decision['baseline_value']:.4f} | {decision['difference']:+.4f} "
        f"| {decision['level']:.0%}: [{decision['low']:+.4f}, {decision['high']:+.4f}] | {decision['margin']} |",
    ]) + "\n"


def package_markdown(outputs: list[Path], root: Path) -> str:
    """What the package stage left behind: each declared output, its size, small JSON/text inline."""
    lines = ["# Packaged", ""]
    for out in outputs:
        path = root / out
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size
        lines.append(f"- `{out}` ({size:,} bytes)")
        if path.is_file() and path.suffix in (".json", ".txt") and size < 4096:
            lines += ["", "```", path.read_text().strip(), "```", ""]
    return "\n".join(lines) + "\n"


def publish_stage_artifacts(stage: str, root: Path) -> list[str]:
    """Publish the artifacts of whatever reports ``stage`` declares and has written; return their keys.

    Called after a stage succeeds and also after it fails for a data or gate reason: the
    validate and gate stages write their report before they stop the run, and that report
    is the explanation of the failure.
    """
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    declared = [Path(p) for p in stage_outputs(root).get(stage, [])]
    renderers: dict[str, tuple[str, Callable[[dict], Any], Callable[..., Any]]] = {
        VALIDATION_REPORT: ("shoprec-validation", validation_markdown, create_markdown_artifact),
        METRICS_REPORT: ("shoprec-metrics", metrics_rows, create_table_artifact),
        GATE_REPORT: ("shoprec-gate", gate_markdown, create_markdown_artifact),
    }
    published = []
    for report, (key, render, create) in renderers.items():
        path = Path(report)
        if (root / path).is_file() and any(path == out or out in path.parents for out in declared):
            content = render(json.loads((root / path).read_text()))
            create(content, key=key, description=f"{report} after stage '{stage}'")
            published.append(key)
    present = [out for out in declared if (root / out).exists()]
    if stage == PACKAGE_STAGE and present:
        create_markdown_artifact(package_markdown(present, root), key="shoprec-package",
                                 description="outputs of the package stage")
        published.append("shoprec-package")
    return published

"""``validation.json`` and its Markdown page: what came in, what was kept, what was not, why.

Per table: ``raw_rows`` (rows read, policy exclusions included), ``clean_rows``,
``quarantined_rows`` = ``policy_rows`` + ``invalid_rows``, ``quarantined_by_reason``
(counted by rule, i.e. the reason without the offending value) and every expectation
with its verdict. Top level: the source, the same totals over all tables, and
``status`` (``passed``/``failed``, with ``error`` on failure).

The conservation law ``raw_rows == clean_rows + quarantined_rows`` is checked for every
table by :func:`check_conservation` before anything is written: a row that vanished
would be a bug in shoprec, not in the data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from shoprec.data.validation.quarantine import INVALID, POLICY, RULE_COL

TOTALS = ("raw_rows", "clean_rows", "quarantined_rows")


def table_entry(
    raw_rows: int, clean_rows: int, quarantine: pd.DataFrame, expectations: list[dict[str, Any]]
) -> dict[str, Any]:
    """Counts of one table; ``quarantine`` holds this table's policy and invalid rows."""
    return {
        "raw_rows": int(raw_rows),
        "clean_rows": int(clean_rows),
        "quarantined_rows": len(quarantine),
        "quarantined_by_reason": _by_reason(quarantine),
        "invalid_rows": int((quarantine["kind"] == INVALID).sum()),
        "policy_rows": int((quarantine["kind"] == POLICY).sum()),
        "expectations": expectations,
    }


def build_report(source: str, tables: dict[str, dict[str, Any]], error: str | None = None) -> dict[str, Any]:
    report: dict[str, Any] = {"source": source, "status": "failed" if error else "passed"}
    if error:
        report["error"] = error
    report["tables"] = tables
    for key in TOTALS:
        report[key] = sum(t[key] for t in tables.values())
    merged: dict[str, int] = {}
    for entry in tables.values():
        for reason, count in entry["quarantined_by_reason"].items():
            merged[reason] = merged.get(reason, 0) + count
    report["quarantined_by_reason"] = dict(sorted(merged.items(), key=lambda kv: (-kv[1], kv[0])))
    return report


def check_conservation(report: dict[str, Any]) -> None:
    """raw = clean + quarantined for every table; quarantined = policy + invalid."""
    for name, t in report["tables"].items():
        if t["raw_rows"] != t["clean_rows"] + t["quarantined_rows"] or t["quarantined_rows"] != (
            t["policy_rows"] + t["invalid_rows"]
        ):
            raise AssertionError(
                f"row conservation broken for {name}: raw {t['raw_rows']} != clean {t['clean_rows']} + "
                f"quarantined {t['quarantined_rows']} (policy {t['policy_rows']}, invalid {t['invalid_rows']})"
            )


def write_report(report: dict[str, Any], json_path: Path, md_path: Path) -> None:
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md_path.write_text(render_markdown(report))


def render_markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Data validation: {report['source']}",
        "",
        f"Status: **{report['status']}**" + (f"\n\n```\n{report['error']}\n```" if "error" in report else ""),
        "",
        "| table | raw | clean | quarantined | policy | invalid |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, t in report["tables"].items():
        lines.append(
            f"| {name} | {t['raw_rows']:,} | {t['clean_rows']:,} | {t['quarantined_rows']:,} "
            f"| {t['policy_rows']:,} | {t['invalid_rows']:,} |"
        )
    lines.append(
        f"| **all** | {report['raw_rows']:,} | {report['clean_rows']:,} | {report['quarantined_rows']:,} | | |"
    )
    for name, t in report["tables"].items():
        lines += ["", f"## {name}", ""]
        if t["quarantined_by_reason"]:
            lines += ["| quarantine reason | rows |", "| --- | ---: |"]
            lines += [f"| {_cell(r)} | {n:,} |" for r, n in t["quarantined_by_reason"].items()]
            lines.append("")
        lines += ["| expectation | column | success | unexpected |", "| --- | --- | --- | ---: |"]
        lines += [
            f"| {e['expectation']} | {e['column'] or ''} | {'yes' if e['success'] else 'NO'} "
            f"| {e['unexpected_count']:,} |"
            for e in t["expectations"]
        ]
    return "\n".join(lines) + "\n"


def _by_reason(quarantine: pd.DataFrame) -> dict[str, int]:
    counts = quarantine[RULE_COL].value_counts()
    return {str(k): int(v) for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))}


def _cell(text: str) -> str:
    return text.replace("|", "\\|")

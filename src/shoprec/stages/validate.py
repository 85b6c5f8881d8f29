"""DVC stage ``validate``: raw tables -> clean tables, quarantine and report (Great Expectations).

Writes ``items.parquet``, ``events.parquet``, ``query_labels.parquet``, ``service_intents.parquet``
and ``service_phrasings.parquet`` (the last three empty when the source has none),
``quarantine.parquet``, ``validation.json`` and ``validation.md``.
When a table-level rule fails it still writes the quarantine and the report (status
``failed``) before raising, so nothing read is lost, and it removes clean tables left by
an earlier run so that no stale data looks current.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from shoprec.data.contracts import ITEMS, QUARANTINE, SERVICE_INTENTS, Table
from shoprec.data.raw import OPTIONAL, ORDER, read_raw, write_parquet
from shoprec.data.sources.base import SOURCE_COL, RawTables
from shoprec.data.validation.errors import DataValidationError
from shoprec.data.validation.quarantine import finalise, with_rules
from shoprec.data.validation.report import build_report, check_conservation, table_entry, write_report
from shoprec.data.validation.table import validate_table

QUARANTINE_FILE, REPORT_JSON, REPORT_MD = "quarantine.parquet", "validation.json", "validation.md"


@dataclass(frozen=True)
class ValidationResult:
    out_dir: Path
    tables: dict[str, Path]  # clean table name -> parquet
    quarantine: Path
    report: Path
    report_md: Path
    counts: dict[str, dict[str, int]]  # table -> raw_rows, clean_rows, quarantined_rows

    def summary(self) -> str:
        lines = [f"validated into {self.out_dir}/ (report: {self.report_md.name})"]
        for name, c in self.counts.items():
            lines.append(
                f"  {name:<13} raw {c['raw_rows']:>9,}  clean {c['clean_rows']:>9,}  "
                f"quarantined {c['quarantined_rows']:>9,}"
            )
        return "\n".join(lines)


def validate(raw_dir: Path, out_dir: Path, max_invalid_share: float) -> ValidationResult:
    """The stage: validate the raw tables the ``ingest`` stage wrote in ``raw_dir``."""
    return validate_tables(read_raw(raw_dir), out_dir, max_invalid_share)


def validate_tables(raw: RawTables, out_dir: Path, max_invalid_share: float) -> ValidationResult:
    """Coerce and check every table of ``raw``; write clean tables, quarantine and report.

    A table whose invalid rows exceed ``max_invalid_share`` of its validated rows
    (raw minus policy exclusions) fails the run, like any table-level rule.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    for table in ORDER:
        (out_dir / f"{table.name}.parquet").unlink(missing_ok=True)
    policy = with_rules(raw.excluded)
    quarantine, entries, clean = [policy], {}, {}
    error: DataValidationError | None = None
    try:
        known: dict[str, pd.Series] = {}  # key column -> its clean values, for the tables that name them
        for table in ORDER:
            frame = getattr(raw, table.name)
            if frame is None:
                continue
            table_policy = policy[policy["table"] == table.name]
            label = _label(frame, table_policy, table)
            result = validate_table(table, frame, label, known.get("item_id"), known.get("intent_id"))
            quarantine.append(result.quarantine)
            clean[table.name] = result.clean
            raw_rows = raw.raw_rows.get(table.name, len(frame) + len(table_policy))
            entries[table.name] = table_entry(
                raw_rows, len(result.clean), pd.concat([table_policy, result.quarantine]), result.expectations
            )
            if table in (ITEMS, SERVICE_INTENTS):
                known[table.key[0]] = result.clean[table.key[0]]
            _check_invalid_share(table, label, entries[table.name], result.quarantine, max_invalid_share)
    except DataValidationError as exc:
        error = exc
    report = build_report(_source_name(raw), entries, str(error) if error else None)
    check_conservation(report)
    quarantine_path = out_dir / QUARANTINE_FILE
    write_parquet(finalise(pd.concat(quarantine, ignore_index=True)), QUARANTINE, quarantine_path)
    write_report(report, out_dir / REPORT_JSON, out_dir / REPORT_MD)
    if error is not None:
        raise error
    tables = {}
    for table in ORDER:
        if table.name in clean:
            tables[table.name] = out_dir / f"{table.name}.parquet"
            write_parquet(clean[table.name], table, tables[table.name])
    for table in OPTIONAL:  # none in the source: an empty table, so the stages reading it still have their input
        if table.name not in clean:
            write_parquet(pd.DataFrame(columns=table.names), table, out_dir / f"{table.name}.parquet")
    counts = {name: {k: e[k] for k in ("raw_rows", "clean_rows", "quarantined_rows")} for name, e in entries.items()}
    return ValidationResult(out_dir, tables, quarantine_path, out_dir / REPORT_JSON, out_dir / REPORT_MD, counts)


def _check_invalid_share(table: Table, label: str, entry: dict, invalid: pd.DataFrame, limit: float) -> None:
    validated = entry["raw_rows"] - entry["policy_rows"]
    share = entry["invalid_rows"] / validated if validated else 0.0
    if share > limit:
        sample = [f"row {r.row}: {r.reason}" for r in invalid.head(5).itertuples()]
        raise DataValidationError(
            label,
            "share of invalid rows",
            f"{table.name}: {entry['invalid_rows']:,} of {validated:,} rows ({share:.1%}) broke a rule, "
            f"above max_invalid_share {limit:.1%}; see quarantine.parquet and validation.md",
            sample,
            total=entry["invalid_rows"],
        )


def _label(frame: pd.DataFrame, table_policy: pd.DataFrame, table: Table) -> str:
    """The input file(s) a table came from, for messages."""
    sources = frame[SOURCE_COL] if SOURCE_COL in frame.columns and len(frame) else table_policy["source"]
    names = sorted(sources.astype(str).unique())
    return ", ".join(names) if names else f"{table.name} table"


def _source_name(raw: RawTables) -> str:
    frames = [f for t in ORDER if (f := getattr(raw, t.name)) is not None and SOURCE_COL in f.columns]
    names = {str(s) for f in frames for s in f[SOURCE_COL].unique()} | set(raw.excluded["source"].astype(str))
    return ", ".join(sorted(names)) or "unknown"

"""Validate one raw table: table-level checks, coercion, the row-level GX suite.

The steps, in order, each row quarantined for the first rule it breaks:

1. table level (GX, on the raw frame): contract columns present, at least one row;
   a failure raises :class:`DataValidationError` — nothing sensible can follow;
2. coercion to the contract types (:mod:`.coerce`); failures are quarantined with the
   field, the rule and the raw value;
3. the row-level GX suite on the coerced rows (:mod:`.expectations`); the rows GX lists
   as unexpected are quarantined under the rule's words and the raw value. Uniqueness
   rules are resolved last and among the rows still clean, so the *first clean*
   occurrence of an id stays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from shoprec.data.contracts import Table
from shoprec.data.validation import expectations
from shoprec.data.validation.coerce import coerce
from shoprec.data.validation.errors import DataValidationError
from shoprec.data.validation.quarantine import INVALID, quarantine_rows, records_json

COERCION = "coerce_to_contract_types"


@dataclass(frozen=True)
class TableResult:
    clean: pd.DataFrame  # contract columns and types, RangeIndex
    quarantine: pd.DataFrame  # invalid rows, in-memory quarantine layout (with ``rule``)
    expectations: list[dict[str, Any]]  # per expectation: name, column, success, unexpected_count


def validate_table(
    table: Table,
    raw: pd.DataFrame,
    label: str,
    known_items: pd.Series | None = None,
    known_intents: pd.Series | None = None,
) -> TableResult:
    """Split ``raw`` into clean rows and quarantined rows; ``label`` names the input in errors."""
    raw = raw.reset_index(drop=True)
    report = check_table(table, raw, label)
    coerced = coerce(raw, table)
    failed = len(coerced.failed)
    report.append({"expectation": COERCION, "column": None, "success": failed == 0, "unexpected_count": failed})
    rules = expectations.row_rules(table, known_items, known_intents)
    outcomes = expectations.run(table.name, coerced.clean, [r.expectation for r in rules])
    report.extend(o.as_report() for o in outcomes)

    rule_parts, value_parts = [coerced.failed["rule"]], [coerced.failed["value"]]
    remaining = coerced.clean
    for rule, outcome in sorted(zip(rules, outcomes), key=lambda pair: pair[0].keep_first):
        hits = outcome.unexpected_index.intersection(remaining.index)
        if rule.keep_first:
            hits = hits.intersection(remaining.index[remaining[outcome.column].duplicated(keep="first")])
        rule_parts.append(pd.Series(rule.rule, index=hits, dtype=object))
        value_parts.append(raw.loc[hits, outcome.column].astype(str).astype(object))
        remaining = remaining.drop(index=hits)

    rules_by_row = pd.concat(rule_parts).sort_index()
    values_by_row = pd.concat(value_parts).loc[rules_by_row.index]
    quarantine = quarantine_rows(table.name, raw, rules_by_row, INVALID, values_by_row)
    return TableResult(remaining.reset_index(drop=True), quarantine, report)


def check_table(table: Table, raw: pd.DataFrame, label: str) -> list[dict[str, Any]]:
    """Run the table-level suite; raise on the first failure, else return its report entries."""
    outcomes = expectations.run(table.name, raw, expectations.table_expectations(table))
    columns, rows = outcomes
    if not columns.success:
        absent = [c for c in table.columns if c.name not in raw.columns]
        missing = [c.name for c in absent if c.required] or [c.name for c in absent]  # the required ones first
        found = [c for c in raw.columns if not str(c).startswith("_")]
        raise DataValidationError(
            label,
            "required columns exist",
            f"{table.name} lacks column(s) {', '.join(missing)}; found: {', '.join(map(str, found))} "
            f"(contract: {', '.join(table.names)})",
            records_json(raw.head(5)),
            total=len(raw),
        )
    if not rows.success:
        raise DataValidationError(label, "table not empty", f"{table.name} has no rows to validate")
    return [o.as_report() for o in outcomes]

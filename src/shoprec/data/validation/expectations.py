"""The Great Expectations suites, one per table, and how they are run.

Two kinds of checks, both real GX expectations run on an ephemeral (in-memory) context
with a pandas data source and a whole-dataframe batch definition:

* table level, on the raw frame: the contract columns exist
  (``expect_table_columns_to_match_set``, extra columns allowed) and the table has rows
  (``expect_table_row_count_to_be_between``, min 1). A failure stops the run.
* row level, on the coerced frame: each :class:`RowRule` pairs an expectation with the
  words a quarantined row gets as its reason. Rows GX lists in ``unexpected_index_list``
  (result format COMPLETE) go to quarantine.

GX is handed frames with a fresh ``RangeIndex`` and its indices are mapped back to the
caller's labels: with GX 1.24 on pandas 3, ``expect_column_values_to_be_in_set`` reports
*no* unexpected rows when the frame's index is not 0..n-1 (checked by a test).

``great_expectations`` takes ~10 s to import, so it is imported on first use only.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from functools import cache
from typing import Any

import pandas as pd

from shoprec.data.contracts import EVENT_TYPES, HANDOFF, SERVICE_FIELDS, Table

EARLIEST = dt.datetime(1990, 1, 1, tzinfo=dt.timezone.utc)
COMPLETE = {"result_format": "COMPLETE", "partial_unexpected_count": 0}


@dataclass(frozen=True)
class RowRule:
    expectation: Any  # a great_expectations.expectations.Expectation
    rule: str  # the quarantine reason for the rows it flags
    keep_first: bool = False  # uniqueness: the first occurrence stays clean, later ones are flagged


@dataclass(frozen=True)
class Outcome:
    expectation: str
    column: str | None
    success: bool
    unexpected_count: int
    unexpected_index: pd.Index  # caller's index labels of the flagged rows (row-level only)
    observed: Any = None  # table level: GX's observed value

    def as_report(self) -> dict[str, Any]:
        return {
            "expectation": self.expectation,
            "column": self.column,
            "success": self.success,
            "unexpected_count": self.unexpected_count,
        }


def table_expectations(table: Table) -> list[Any]:
    """Table-level suite: contract columns present, at least one row."""
    gxe = _gx().expectations
    return [
        gxe.ExpectTableColumnsToMatchSet(column_set=table.names, exact_match=False),
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
    ]


def row_rules(table: Table, known_items: pd.Series | None = None,
              known_intents: pd.Series | None = None) -> list[RowRule]:
    """Row-level suite of ``table``; ``known_items`` are the clean item ids (events, labels),
    ``known_intents`` the clean intent ids (phrasings).

    Order matters: a row flagged by several rules is quarantined under the first.
    """
    gxe = _gx().expectations
    if table.name.startswith("service_"):
        return _service_rules(table, known_intents)
    if table.name == "items":
        return [
            RowRule(gxe.ExpectColumnValuesToBeBetween(column="price", min_value=0), "price: negative (must be >= 0)"),
            RowRule(gxe.ExpectColumnValuesToBeUnique(column="item_id"), "duplicate item_id", keep_first=True),
        ]
    known = [] if known_items is None else sorted(known_items.unique().tolist())
    in_items = RowRule(gxe.ExpectColumnValuesToBeInSet(column="item_id", value_set=known), "unknown item_id")
    if table.name == "events":
        latest = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
        return [
            RowRule(
                gxe.ExpectColumnValuesToBeInSet(column="event_type", value_set=list(EVENT_TYPES)),
                f"event_type: not one of {', '.join(EVENT_TYPES)}",
            ),
            RowRule(
                gxe.ExpectColumnValuesToBeBetween(column="timestamp", min_value=EARLIEST, max_value=latest),
                f"timestamp: outside {EARLIEST:%Y-%m-%d} .. now + 1 day",
            ),
            RowRule(gxe.ExpectColumnValuesToBeBetween(column="quantity", min_value=1), "quantity: below 1"),
            RowRule(gxe.ExpectColumnValuesToBeBetween(column="position", min_value=0),
                    "position: negative (must be >= 0)"),
            in_items,
        ]
    return [
        RowRule(
            gxe.ExpectColumnValuesToBeBetween(column="relevance", min_value=0, max_value=3),
            "relevance: outside 0..3",
        ),
        in_items,
    ]


_FIELD = "(?:" + "|".join(SERVICE_FIELDS) + ")"


def _service_rules(table: Table, known_intents: pd.Series | None) -> list[RowRule]:
    """The help centre's rules: an answer places only known shopper fields, a phrasing names a known intent."""
    gxe = _gx().expectations
    if table.name == "service_phrasings":
        known = sorted({HANDOFF, *([] if known_intents is None else known_intents.unique().tolist())})
        return [RowRule(gxe.ExpectColumnValuesToBeInSet(column="intent_id", value_set=known),
                        f"intent_id: not an intent of service_intents (nor {HANDOFF!r})")]
    fields = ", ".join(SERVICE_FIELDS)
    return [
        RowRule(gxe.ExpectColumnValuesToNotBeInSet(column="intent_id", value_set=[HANDOFF]),
                f"intent_id: {HANDOFF!r} is reserved for the questions a person answers"),
        RowRule(gxe.ExpectColumnValuesToMatchRegex(column="answer", regex=rf"^(?:[^{{}}]|\{{{_FIELD}\}})*$"),
                f"answer: a {{placeholder}} that is not one of {fields} (e.g. 'Ordered on {{last_order_date}}')"),
        RowRule(gxe.ExpectColumnValuesToMatchRegex(column="fields", regex=rf"^(?:{_FIELD}(?: {_FIELD})*)?$"),
                f"fields: not space-separated names among {fields} (e.g. 'last_order_date purchases')"),
        RowRule(gxe.ExpectColumnValuesToBeUnique(column="intent_id"), "duplicate intent_id", keep_first=True),
    ]


# One GX run at a time per process: the context, its data asset and the batch a table's frames share
# (the same batch id, hence the same cached metrics) are not safe across threads; two threads storing
# feedback at once could otherwise read each other's frames.
_RUN_LOCK = threading.Lock()


def run(table: str, frame: pd.DataFrame, expectations: list[Any]) -> list[Outcome]:
    """Validate ``frame`` against ``expectations`` as one GX suite (result format COMPLETE); one outcome
    per expectation, in their order (GX reports them grouped by column, not in the order added)."""
    with _RUN_LOCK:
        batch = _batch_definition(table).get_batch(batch_parameters={"dataframe": frame.reset_index(drop=True)})
        suite = _gx().ExpectationSuite(name=f"shoprec.{table}")  # after the context exists: GX binds to it
        for expectation in expectations:
            suite.add_expectation(expectation)
        results = batch.validate(suite, result_format=COMPLETE).results
    order = [(e.configuration.type, e.configuration.kwargs.get("column")) for e in expectations]
    results = sorted(results, key=lambda r: order.index((r.expectation_config.type,
                                                         r.expectation_config.kwargs.get("column"))))
    outcomes = []
    for result in results:
        info = result.exception_info or {}
        if info.get("raised_exception"):
            name = result.expectation_config.type
            raise RuntimeError(f"GX failed to evaluate {name}: {info.get('exception_message')}")
        positions = result.result.get("unexpected_index_list") or []
        outcomes.append(
            Outcome(
                expectation=result.expectation_config.type,
                column=result.expectation_config.kwargs.get("column"),
                success=bool(result.success),
                unexpected_count=int(result.result.get("unexpected_count") or 0),
                unexpected_index=frame.index[list(positions)],
                observed=result.result.get("observed_value"),
            )
        )
    return outcomes


@cache
def _gx():
    import great_expectations as gx

    return gx


@cache
def _context():
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = _gx().get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


@cache
def _source():
    return _context().data_sources.add_pandas("shoprec")


@cache
def _batch_definition(table: str):
    """One dataframe asset per table in the one pandas data source; whole-dataframe batches."""
    return _source().add_dataframe_asset(table).add_batch_definition_whole_dataframe("whole")

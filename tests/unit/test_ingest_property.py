"""A property of ingestion, for arbitrary rows: every row read is either clean or quarantined.

Hypothesis writes contract files full of awkward cells (delimiters, quotes, line breaks,
any Unicode, numbers that are not numbers, far-off dates), and the real reader and the
real Great Expectations validation must neither crash nor lose a row: for each table,
rows in the file = raw rows = clean rows + quarantined rows. Seeded (derandomize), so a
failure reproduces.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shoprec.data.sources.files import load
from shoprec.data.validation.errors import DataValidationError
from shoprec.stages.validate import validate_tables

AWKWARD = ["", " ", "A0", "A1", "3.5", "-1", "0", "2", "1e400", "NaN", "inf", "9" * 30, "2024-01-01",
           "2024-01-01T10:00:00+05:00", "1969-12-31", "view", "purchase", '"', ",", "\n", "\r\n", "\t", "\ufeff", "é"]
cell = st.one_of(st.sampled_from(AWKWARD), st.text(max_size=12))
ITEM_COLUMNS = ["item_id", "title", "price"]
EVENT_COLUMNS = ["user_id", "item_id", "event_type", "timestamp", "quantity"]


def _write(path: Path, header: list[str], rows: list[tuple]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header, *rows])


@settings(max_examples=100, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(items=st.lists(st.tuples(cell, cell, cell), min_size=1, max_size=12),
       events=st.lists(st.tuples(cell, cell, cell, cell, cell), min_size=1, max_size=20))
def test_every_row_read_is_clean_or_quarantined(tmp_path_factory, items, events):
    folder = tmp_path_factory.mktemp("rows")
    (folder / "in").mkdir()
    _write(folder / "in" / "items.csv", ITEM_COLUMNS, items)
    _write(folder / "in" / "events.csv", EVENT_COLUMNS, events)

    try:
        validate_tables(load(folder / "in"), folder / "out", max_invalid_share=1.0)
    except DataValidationError as exc:  # only a table-level rule may stop the run, and it says which
        assert "check '" in str(exc)
    report = json.loads((folder / "out" / "validation.json").read_text())
    written = {"items": len(items), "events": len(events)}
    for name, counts in report["tables"].items():
        assert counts["raw_rows"] == written[name], (name, counts)
        assert counts["raw_rows"] == counts["clean_rows"] + counts["quarantined_rows"], (name, counts)

"""Validated ingestion of contract files: every bad input is caught, named and counted.

Real Great Expectations, real files written to tmp_path with hand-made rows. Each
row-level case also checks conservation (raw = clean + quarantined) in validation.json.
"""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from importlib.util import find_spec
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from shoprec.data.contracts import EVENTS, ITEMS, QUARANTINE
from shoprec.data.validation.errors import DataValidationError
from shoprec.stages.validate import validate_tables as validate
from shoprec.data.sources.files import load

ITEMS_CSV = """item_id,title,description,category,brand,price
A1,Red mug,Stoneware,kitchen,Acme,3.50
A2,Blue mug,,kitchen,Acme,4
A3,Tea towel,,kitchen,,2.25
A4,Candle,,home,Glow,6.10
"""

EVENTS_CSV = """user_id,item_id,event_type,timestamp,session_id,query,quantity
u1,A1,view,2024-01-02 10:00:00,s1,,1
u1,A1,add_to_cart,2024-01-02 10:03:00,s1,,1
u1,A1,purchase,2024-01-02 10:05:00,s1,,2
u2,A2,click,2024-01-03T09:00:00+01:00,s2,blue mug,1
u2,A3,view,2024-01-03T09:01:00Z,s2,,1
u3,A4,view,2024-01-04 12:00:00,s3,candle,1
u3,A4,purchase,2024-01-04 12:02:00,s3,candle,1
u4,A2,view,2024-01-05 08:00:00,,,1
"""


def write_source(folder: Path, items: str = ITEMS_CSV, events: str = EVENTS_CSV) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "items.csv").write_text(items)
    (folder / "events.csv").write_text(events)
    return folder


def run(tmp_path: Path, items: str = ITEMS_CSV, events: str = EVENTS_CSV, share: float = 0.5):
    """Validate a files source; return (result, report, quarantine frame)."""
    src = write_source(tmp_path / "in", items, events)
    result = validate(load(src), tmp_path / "out", share)
    return result, report_of(tmp_path), pd.read_parquet(tmp_path / "out" / "quarantine.parquet")


def report_of(tmp_path: Path) -> dict:
    report = json.loads((tmp_path / "out" / "validation.json").read_text())
    for name, t in report["tables"].items():
        assert t["raw_rows"] == t["clean_rows"] + t["quarantined_rows"], name
        assert sum(t["quarantined_by_reason"].values()) == t["quarantined_rows"], name
    assert report["raw_rows"] == report["clean_rows"] + report["quarantined_rows"]
    return report


def reasons(quarantine: pd.DataFrame, table: str) -> list[str]:
    return quarantine.loc[quarantine["table"] == table, "reason"].tolist()


def replace_line(text: str, line_no: int, new: str) -> str:
    lines = text.splitlines()
    lines[line_no] = new
    return "\n".join(lines) + "\n"


def test_clean_input_passes_with_contract_types(tmp_path):
    result, report, quarantine = run(tmp_path)
    assert report["status"] == "passed"
    assert report["tables"]["items"]["clean_rows"] == 4 and report["tables"]["events"]["clean_rows"] == 8
    assert quarantine.empty and pq.read_schema(result.quarantine).equals(QUARANTINE.schema)
    assert pq.read_schema(result.tables["items"]).equals(ITEMS.schema)
    events = pd.read_parquet(result.tables["events"])
    assert pq.read_schema(result.tables["events"]).equals(EVENTS.schema)
    # an explicit offset is converted to UTC, a naive time is taken as UTC
    assert events.loc[3, "timestamp"] == pd.Timestamp("2024-01-03 08:00:00", tz="UTC")
    assert events.loc[0, "timestamp"] == pd.Timestamp("2024-01-02 10:00:00", tz="UTC")
    expectation_names = {e["expectation"] for e in report["tables"]["events"]["expectations"]}
    assert {"expect_column_values_to_be_in_set", "expect_table_columns_to_match_set"} <= expectation_names
    assert "events" in (tmp_path / "out" / "validation.md").read_text()


def test_wrong_types_are_quarantined_with_field_rule_and_value(tmp_path):
    items = replace_line(ITEMS_CSV, 2, "A2,Blue mug,,kitchen,Acme,abc")
    events = replace_line(EVENTS_CSV, 6, "u3,A4,view,2024-01-04 12:00:00,s3,candle,two")
    events = replace_line(events, 7, "u3,A4,purchase,2024-01-04 12:02:00,s3,candle,1.5")
    events = replace_line(events, 5, "u2,A3,view,2024-01-03T09:01:00Z,s2,,1e30")
    _, report, quarantine = run(tmp_path, items, events, share=1.0)
    assert reasons(quarantine, "items") == ["price: not a number ('abc')"]
    assert "quantity: not a number ('two')" in reasons(quarantine, "events")
    assert "quantity: not an integer ('1.5')" in reasons(quarantine, "events")
    assert "quantity: not an integer ('1e30')" in reasons(quarantine, "events")
    row = quarantine[quarantine["reason"].str.startswith("price")].iloc[0]
    assert row["source"].endswith("items.csv") and row["row"] == 1 and row["kind"] == "invalid"
    assert json.loads(row["record"])["price"] == "abc"
    # the item lost to a bad price makes its events unknown
    assert reasons(quarantine, "events").count("unknown item_id ('A2')") == 2
    assert report["tables"]["events"]["quarantined_by_reason"]["unknown item_id"] == 2


def test_negative_price(tmp_path):
    _, report, quarantine = run(tmp_path, items=replace_line(ITEMS_CSV, 3, "A3,Tea towel,,kitchen,,-2.25"))
    assert reasons(quarantine, "items") == ["price: negative (must be >= 0) ('-2.25')"]
    failed = [e for e in report["tables"]["items"]["expectations"] if not e["success"]]
    assert [(e["expectation"], e["column"], e["unexpected_count"]) for e in failed] == [
        ("expect_column_values_to_be_between", "price", 1)
    ]


EVENT_ROW_CASES = {
    "unknown event type and empty required field": (
        {1: "u1,A1,wishlist,2024-01-02 10:00:00,s1,,1", 2: " ,A1,add_to_cart,2024-01-02 10:03:00,s1,,1"},
        [
            "event_type: not one of view, click, add_to_cart, purchase ('wishlist')",
            "user_id: required but empty (' ')",
        ],
    ),
    "unparseable and out-of-range timestamps": (
        {
            1: "u1,A1,view,yesterday,s1,,1",
            2: "u1,A1,add_to_cart,2024-13-45 10:03:00,s1,,1",
            3: "u1,A1,purchase,1985-06-01 10:05:00,s1,,2",
        },
        [
            "timestamp: not a parseable ISO 8601 timestamp ('yesterday')",
            "timestamp: not a parseable ISO 8601 timestamp ('2024-13-45 10:03:00')",
            "timestamp: outside 1990-01-01 .. now + 1 day ('1985-06-01 10:05:00')",
        ],
    ),
}


@pytest.mark.parametrize("edits, expected", EVENT_ROW_CASES.values(), ids=EVENT_ROW_CASES.keys())
def test_event_row_rules(tmp_path, edits, expected):
    events = EVENTS_CSV
    for line_no, line in edits.items():
        events = replace_line(events, line_no, line)
    _, report, quarantine = run(tmp_path, events=events)
    assert reasons(quarantine, "events") == expected
    assert report["tables"]["events"]["invalid_rows"] == len(expected)
    assert report["tables"]["events"]["clean_rows"] == 8 - len(expected)


def test_duplicate_item_ids_keep_the_first(tmp_path):
    items = ITEMS_CSV + "A1,Red mug again,,kitchen,Acme,9.99\nA3,Towel copy,,kitchen,,1\n"
    result, report, quarantine = run(tmp_path, items=items)
    assert reasons(quarantine, "items") == ["duplicate item_id ('A1')", "duplicate item_id ('A3')"]
    assert quarantine.loc[quarantine["table"] == "items", "row"].tolist() == [4, 5]
    clean = pd.read_parquet(result.tables["items"]).set_index("item_id")
    assert clean.loc["A1", "title"] == "Red mug" and clean.loc["A1", "price"] == 3.5
    assert report["tables"]["events"]["clean_rows"] == 8  # events on A1 stay valid


def test_duplicate_of_an_invalid_row_is_kept(tmp_path):
    """The first *clean* occurrence stays: a bad first row does not doom a good second."""
    items = replace_line(ITEMS_CSV, 1, "A1,Red mug,,kitchen,Acme,-1") + "A1,Red mug,,kitchen,Acme,3.5\n"
    result, _, quarantine = run(tmp_path, items=items)
    assert reasons(quarantine, "items") == ["price: negative (must be >= 0) ('-1')"]
    assert "A1" in set(pd.read_parquet(result.tables["items"])["item_id"])


def test_events_for_unknown_items(tmp_path):
    events = EVENTS_CSV + "u5,ZZ9,view,2024-01-06 08:00:00,s9,,1\n"
    _, report, quarantine = run(tmp_path, events=events)
    assert reasons(quarantine, "events") == ["unknown item_id ('ZZ9')"]
    assert quarantine.iloc[0]["row"] == 8
    assert report["quarantined_by_reason"] == {"unknown item_id": 1}


def test_missing_column_stops_the_run_and_still_reports(tmp_path):
    events = "\n".join(",".join(line.split(",")[:3] + line.split(",")[4:]) for line in EVENTS_CSV.splitlines())
    with pytest.raises(DataValidationError) as info:
        run(tmp_path, events=events + "\n")
    message = str(info.value)
    assert "events.csv" in message and "required columns exist" in message and "timestamp" in message
    assert '"user_id":"u1"' in message  # a sample of the offending rows
    report = json.loads((tmp_path / "out" / "validation.json").read_text())
    assert report["status"] == "failed" and "timestamp" in report["error"]
    assert report["tables"]["items"]["clean_rows"] == 4  # what passed is still accounted for
    assert not (tmp_path / "out" / "items.parquet").exists()


def test_too_many_invalid_rows_stops_the_run(tmp_path):
    events = EVENTS_CSV.replace(",1\n", ",none\n", 2)
    with pytest.raises(DataValidationError) as info:
        run(tmp_path, events=events, share=0.05)
    message = str(info.value)
    assert "events.csv" in message and "share of invalid rows" in message and "2 of 8 rows (25.0%)" in message
    assert "quantity: not a number ('none')" in message
    quarantine = pd.read_parquet(tmp_path / "out" / "quarantine.parquet")
    assert len(quarantine) == 2  # nothing lost although the run failed
    assert not (tmp_path / "out" / "events.parquet").exists()


def test_empty_file(tmp_path):
    with pytest.raises(DataValidationError) as info:
        run(tmp_path, items="")
    assert "items.csv" in str(info.value) and "table not empty" in str(info.value) and "empty input" in str(info.value)


def test_header_only(tmp_path):
    with pytest.raises(DataValidationError) as info:
        run(tmp_path, events=EVENTS_CSV.splitlines()[0] + "\n")
    assert "events.csv" in str(info.value) and "header only, no data rows" in str(info.value)


def test_non_utf8_bytes(tmp_path):
    src = write_source(tmp_path / "in")
    (src / "items.csv").write_bytes(ITEMS_CSV.replace("Candle", "Caf\xe9 candle").encode("latin-1"))
    with pytest.raises(DataValidationError) as info:
        load(src)
    message = str(info.value)
    assert "items.csv" in message and "encoding is UTF-8" in message and "byte 0xe9" in message
    assert "line 5: A4,Caf\\xe9 candle" in message


def test_truncated_gzip(tmp_path):
    src = write_source(tmp_path / "in")
    (src / "events.csv").unlink()
    packed = gzip.compress(EVENTS_CSV.encode() * 50)
    (src / "events.csv.gz").write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DataValidationError) as info:
        load(src)
    assert "events.csv.gz" in str(info.value) and "truncated or corrupt gzip" in str(info.value)


def test_gzip_csv_and_parquet_inputs(tmp_path):
    src = write_source(tmp_path / "in")
    (src / "events.csv").unlink()
    (src / "events.csv.gz").write_bytes(gzip.compress(EVENTS_CSV.encode()))
    (src / "items.csv").unlink()
    pd.read_csv(io.StringIO(ITEMS_CSV), dtype=str, keep_default_na=False).to_parquet(src / "items.parquet")
    result = validate(load(src), tmp_path / "out", 0.0)
    assert result.counts["items"]["clean_rows"] == 4 and result.counts["events"]["clean_rows"] == 8


@pytest.mark.skipif(find_spec("openpyxl") is not None, reason="openpyxl installed: .xlsx is read, not refused")
def test_xlsx_instead_of_csv(tmp_path):
    src = write_source(tmp_path / "in")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as book:  # the parts that make a zip an .xlsx workbook
        book.writestr("[Content_Types].xml", "<Types/>")
        book.writestr("xl/workbook.xml", "<workbook/>")
    (src / "items.csv").write_bytes(buffer.getvalue())
    with pytest.raises(DataValidationError) as info:
        load(src)
    message = str(info.value)
    assert "items.csv" in message and "Excel workbook" in message
    assert "save it as CSV" in message and "openpyxl" in message


def test_missing_optional_columns_are_empty_and_extra_columns_ignored(tmp_path):
    items = "item_id,title,price,colour\nA1,Red mug,3.5,red\nA2,Blue mug,4,blue\n"
    events = "user_id,item_id,event_type,timestamp,quantity\nu1,A1,view,2024-01-02 10:00:00,1\n"
    result, _, quarantine = run(tmp_path, items, events)
    items_out = pd.read_parquet(result.tables["items"])
    assert list(items_out.columns) == ITEMS.names and set(items_out["brand"]) == {""}
    assert quarantine.empty


def test_missing_input_files(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "items.csv").write_text(ITEMS_CSV)
    with pytest.raises(DataValidationError) as info:
        load(tmp_path / "in")
    assert "input files present" in str(info.value) and "events.csv" in str(info.value)


INTENTS_CSV = """intent_id,answer,fields
order_status,Your last order was placed on {last_order_date}.,last_order_date
returns,Returns are free within 30 days.,
"""
PHRASINGS_CSV = """intent_id,phrasing
order_status,where is my order
returns,how do i return shoes
handoff,can i speak to a manager
"""


def run_help_centre(tmp_path: Path, intents: str, phrasings: str, share: float = 0.5):
    src = write_source(tmp_path / "in")
    (src / "service_intents.csv").write_text(intents)
    (src / "service_phrasings.csv").write_text(phrasings)
    result = validate(load(src), tmp_path / "out", share)
    return result, pd.read_parquet(tmp_path / "out" / "quarantine.parquet")


def test_help_centre_files_are_validated_like_every_table(tmp_path):
    result, quarantine = run_help_centre(tmp_path, INTENTS_CSV, PHRASINGS_CSV)
    assert quarantine.empty and result.counts["service_phrasings"]["clean_rows"] == 3
    intents = pd.read_parquet(result.tables["service_intents"])
    assert intents["fields"].tolist() == ["last_order_date", ""]


def test_bad_help_centre_rows_are_quarantined_with_their_rule(tmp_path):
    intents = INTENTS_CSV + "sizes,Ordered on {order_day}.,\nwallet,Hi,points\nhandoff,A person answers,\n"
    phrasings = PHRASINGS_CSV + "refunds,where is my refund\n"
    _, quarantine = run_help_centre(tmp_path, intents, phrasings, share=1.0)
    assert reasons(quarantine, "service_intents") == [
        "answer: a {placeholder} that is not one of last_order_date, last_order_item, purchases "
        "(e.g. 'Ordered on {last_order_date}') ('Ordered on {order_day}.')",
        "fields: not space-separated names among last_order_date, last_order_item, purchases "
        "(e.g. 'last_order_date purchases') ('points')",
        "intent_id: 'handoff' is reserved for the questions a person answers ('handoff')"]
    assert reasons(quarantine, "service_phrasings") == [
        "intent_id: not an intent of service_intents (nor 'handoff') ('refunds')"]


def test_a_bad_intents_file_stops_the_run_naming_file_rule_and_example(tmp_path):
    with pytest.raises(DataValidationError) as info:
        run_help_centre(tmp_path, INTENTS_CSV.replace("{last_order_date}", "{order_date}"), PHRASINGS_CSV, share=0.0)
    message = str(info.value)
    assert "service_intents.csv" in message and "share of invalid rows" in message
    assert "answer: a {placeholder}" in message and "e.g. 'Ordered on {last_order_date}'" in message

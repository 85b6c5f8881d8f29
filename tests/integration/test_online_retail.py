"""Online Retail adapter: mapping and policy on hand-made lines, then the real file when present."""

from __future__ import annotations

import gzip
import json

import pandas as pd
import pytest

from shoprec.data.validation.errors import DataValidationError
from shoprec.stages.validate import validate_tables as validate
from shoprec.data.sources.online_retail import load

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
LINES = [
    "900001,11111,RED LAMP,2,2011-03-01 10:00:00,2.50,12345.0,United Kingdom",  # 0 accepted
    "900001,22222,BLUE VASE,1,2011-03-01 10:00:00,5.00,12345.0,United Kingdom",  # 1 accepted
    "900002,11111,RED LAMP,1,2011-03-02 11:30:00,3.50,12346.0,France",  # 2 accepted
    "900003,11111,LAMP RED,4,2011-03-03 09:00:00,2.00,12346.0,France",  # 3 accepted
    "900004,22222,BLUE VASE,3,2011-03-04 09:00:00,4.00,,United Kingdom",  # 4 missing CustomerID
    "C900005,11111,RED LAMP,-1,2011-03-05 09:00:00,2.50,,United Kingdom",  # 5 missing id beats C
    "C900006,22222,BLUE VASE,-2,2011-03-05 10:00:00,5.00,12345.0,United Kingdom",  # 6 cancellation
    "900007,22222,BLUE VASE,0,2011-03-06 10:00:00,5.00,12345.0,United Kingdom",  # 7 quantity <= 0
    "900008,22222,BLUE VASE,1,2011-03-06 10:00:00,0.00,12345.0,United Kingdom",  # 8 price <= 0
    "900009,POST,POSTAGE,1,2011-03-06 10:00:00,18.00,12345.0,France",  # 9 non-product
    "900009,gift_0001_20,VOUCHER,1,2011-03-06 10:00:00,16.00,12345.0,France",  # 10 non-product
    "900010,33333,GREEN JUG,lots,2011-03-07 10:00:00,1.00,12347.0,France",  # 11 invalid quantity
]


def write(tmp_path, lines=LINES, header=HEADER, gz=False):
    text = "\n".join([header, *lines]) + "\n"
    path = tmp_path / ("retail.csv.gz" if gz else "retail.csv")
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    return path


def test_policy_reasons_first_match_in_documented_order(tmp_path):
    raw = load(write(tmp_path))
    reasons = dict(zip(raw.excluded["row"], raw.excluded["reason"]))
    assert reasons == {
        4: "missing CustomerID",
        5: "missing CustomerID",
        6: "cancellation (InvoiceNo starts with C)",
        7: "Quantity <= 0",
        8: "UnitPrice <= 0",
        9: "non-product StockCode",
        10: "non-product StockCode",
    }
    assert set(raw.excluded["kind"]) == {"policy"} and set(raw.excluded["table"]) == {"events"}
    assert json.loads(raw.excluded.iloc[0]["record"])["InvoiceNo"] == "900004"
    assert raw.raw_rows == {"items": 3, "events": 12}


def test_events_and_items_mapping(tmp_path):
    raw = load(write(tmp_path, gz=True))
    events = raw.events.set_index("_row")
    assert list(events.index) == [0, 1, 2, 3, 11]
    assert events.loc[0, "user_id"] == "12345" and events.loc[2, "user_id"] == "12346"
    assert events.loc[0, "session_id"] == "900001" and set(events["event_type"]) == {"purchase"}
    items = raw.items.set_index("item_id")
    # modal description; median of accepted lines only (the 0.00 and excluded lines do not count)
    assert items.loc["11111", "title"] == "RED LAMP" and items.loc["11111", "price"] == 2.5
    assert items.loc["22222", "price"] == 5.0 and items.loc["22222", "_row"] == 1
    assert set(items.index) == {"11111", "22222", "33333"}


def test_validated_counts_add_up(tmp_path):
    result = validate(load(write(tmp_path)), tmp_path / "out", max_invalid_share=0.25)
    report = json.loads(result.report.read_text())
    events = report["tables"]["events"]
    assert (events["raw_rows"], events["clean_rows"], events["policy_rows"], events["invalid_rows"]) == (12, 4, 7, 1)
    assert events["quarantined_by_reason"]["quantity: not a number"] == 1
    clean = pd.read_parquet(result.tables["events"])
    assert clean["timestamp"].iloc[0] == pd.Timestamp("2011-03-01 10:00:00", tz="UTC")  # UK time taken as UTC
    labels = pd.read_parquet(tmp_path / "out" / "query_labels.parquet")  # no logged queries: empty, not absent
    assert labels.empty and list(labels.columns) == ["query_id", "query", "item_id", "relevance"]


def test_missing_column_is_named(tmp_path):
    header = HEADER.replace(",CustomerID", "")
    lines = [line.rsplit(",", 2)[0] + "," + line.rsplit(",", 1)[1] for line in LINES]
    with pytest.raises(DataValidationError) as info:
        load(write(tmp_path, lines, header))
    assert "retail.csv" in str(info.value) and "required columns exist" in str(info.value)
    assert "CustomerID" in str(info.value)


def test_real_file(online_retail_path, tmp_path):
    raw = load(online_retail_path)
    result = validate(raw, tmp_path / "out", max_invalid_share=0.05)
    report = json.loads(result.report.read_text())
    events, items = report["tables"]["events"], report["tables"]["items"]
    assert events["raw_rows"] == 541_909
    assert events["raw_rows"] == events["clean_rows"] + events["policy_rows"] + events["invalid_rows"]
    assert sum(events["quarantined_by_reason"].values()) == events["quarantined_rows"]
    assert events["quarantined_by_reason"] == {
        "missing CustomerID": 135_080,
        "cancellation (InvoiceNo starts with C)": 8_905,
        "non-product StockCode": 1_547,
        "UnitPrice <= 0": 40,
    }
    assert events["invalid_rows"] == 0 and items["quarantined_rows"] == 0
    clean = pd.read_parquet(result.tables["events"], columns=["user_id", "item_id"])
    assert clean["user_id"].nunique() == 4_334 and not clean["user_id"].str.contains(r"\.").any()
    assert clean["item_id"].nunique() == items["clean_rows"]

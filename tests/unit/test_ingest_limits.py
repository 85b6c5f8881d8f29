"""Hostile and odd files: bombs, blobs, ambiguous headers, nested or huge Parquet values.

Ingestion must bound its memory by the file's real size, quarantine an over-long cell
with its row, and say what is wrong with a file it cannot read as a table.
"""

from __future__ import annotations

import io
import json
import zipfile

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shoprec.data.readers import ReadLimits, read_table
from shoprec.data.sources.files import load
from shoprec.data.validation.errors import DataValidationError
from shoprec.stages.validate import validate_tables

EVENTS_CSV = "user_id,item_id,event_type,timestamp,quantity\n" + "".join(
    f"u{n},A{n % 3},view,2024-01-0{1 + n % 5} 10:00:00,1\n" for n in range(12))
ITEMS_CSV = "item_id,title,price\nA0,Red mug,3.5\nA1,Blue mug,4\nA2,Candle,6\n"
MIB = 2**20


def test_a_gzip_bomb_stops_at_the_bound_naming_the_file_and_the_limit(tmp_path):
    from ingest_memory import gzip_bomb, ingest_peak

    folder = gzip_bomb(tmp_path / "in", nul_mib=200)
    assert (folder / "items.csv.gz").stat().st_size < 400_000

    result, peak, seconds = ingest_peak("files", folder, tmp_path / "out")
    assert result.returncode == 1, result.stderr[-2000:]
    assert f"{folder / 'items.csv.gz'}: check 'unpacked size bounded' failed" in result.stderr
    assert "ingest.max_expansion" in result.stderr and "Traceback" not in result.stderr
    assert peak < 1024 * MIB and seconds < 30, (peak / MIB, seconds)


def test_a_50_mb_title_is_quarantined_with_a_cut_record_and_counted(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "items.csv").write_text(ITEMS_CSV + "A3," + "x" * (50 * MIB) + ",9\n")
    (folder / "events.csv").write_text(EVENTS_CSV)

    result = validate_tables(load(folder), tmp_path / "out", 0.5)
    clean = pd.read_parquet(result.tables["items"])
    quarantine = pd.read_parquet(result.quarantine)
    assert list(clean["item_id"]) == ["A0", "A1", "A2"]
    [row] = quarantine[quarantine["table"] == "items"].itertuples()
    assert row.kind == "invalid" and row.row == 3
    assert row.reason == "title: field too long (52,428,800 bytes; the limit is ingest.max_field_bytes = 100,000)"
    assert len(row.record) < 1000 and json.loads(row.record)["item_id"] == "A3"
    assert result.counts["items"] == {"raw_rows": 4, "clean_rows": 3, "quarantined_rows": 1}


def test_the_field_limit_counts_utf8_bytes(tmp_path):
    path = tmp_path / "items.csv"
    path.write_text(ITEMS_CSV + "A3," + "é" * 60 + ",9\nA4," + "e" * 100 + ",9\n", encoding="utf-8")
    frame, too_long = read_table(path, ReadLimits(max_field_bytes=100))
    assert list(too_long.index) == [3] and "(120 bytes;" in too_long[3] and len(frame) == 5


def test_a_parquet_bomb_is_refused_before_its_columns_are_read(tmp_path):
    path = tmp_path / "items.parquet"
    pq.write_table(pa.table({"item_id": ["A0"], "title": ["\0" * (100 * MIB)], "price": ["1"]}), path,
                   compression="zstd", use_dictionary=False)
    assert path.stat().st_size < MIB
    with pytest.raises(DataValidationError, match="the Parquet data unpacks to more than"):
        read_table(path)


def test_a_zip_bomb_is_refused_from_its_directory(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/workbook.xml", b"\0" * (100 * MIB))
    (tmp_path / "items.xlsx").write_bytes(buffer.getvalue())
    with pytest.raises(DataValidationError, match="the zip archive unpacks to more than"):
        read_table(tmp_path / "items.xlsx")


def test_a_header_naming_a_column_twice_is_refused(tmp_path):
    path = tmp_path / "items.csv"
    path.write_text("item_id,title,price,title\nA0,Red mug,3.5,Mug\n")
    with pytest.raises(DataValidationError, match="the header names 'title' more than once"):
        read_table(path)


def test_parquet_integers_beyond_2_53_stay_exact_and_lists_are_refused(tmp_path):
    exact = tmp_path / "events.parquet"
    pq.write_table(pa.table({"user_id": pa.array([2**60 + 1, None], pa.int64()), "n": [1, 2]}), exact)
    frame, _ = read_table(exact)
    assert list(frame["user_id"]) == [str(2**60 + 1), ""]

    nested = tmp_path / "items.parquet"
    pq.write_table(pa.table({"item_id": ["A0"], "tags": [["red", "mug"]]}), nested)
    with pytest.raises(DataValidationError, match="column\\(s\\) tags hold lists or records"):
        read_table(nested)


def test_a_parquet_file_missing_a_column_is_told_the_columns_it_has(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    pq.write_table(pa.table({"item_id": ["A0"], "name": ["Red mug"], "price": [3.5]}), folder / "items.parquet")
    (folder / "events.csv").write_text(EVENTS_CSV)
    with pytest.raises(DataValidationError) as info:
        validate_tables(load(folder), tmp_path / "out", 0.5)
    message = str(info.value)
    assert "items lacks column(s) title; found: item_id, price " in message
    assert "description" not in message.split("found:")[1].split("(contract")[0]  # not a column the file has

"""The stage functions: source dispatch, the raw hand-over between the DVC stages, GX plumbing."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from shoprec.config import IngestParams, SampleParams
from shoprec.data.contracts import EVENTS
from shoprec.data.raw import read_raw, write_raw
from shoprec.data.read import read_source
from shoprec.data.validation import expectations
from shoprec.data.validation.errors import DataValidationError
from shoprec.stages.ingest import ingest
from shoprec.stages.validate import validate, validate_tables
from test_ingest_files import EVENTS_CSV, write_source

SMALL_SAMPLE = IngestParams(sample=SampleParams(n_items=40, n_users=30, n_events=400, days=14))


def test_ingest_then_validate_the_files_source_end_to_end(tmp_path):
    src = write_source(tmp_path / "in", events=EVENTS_CSV + "u9,NOPE,view,2024-01-06 08:00:00,,,1\n")
    raw = ingest("files", src, tmp_path / "raw", IngestParams())
    result = validate(raw, tmp_path / "out", max_invalid_share=0.2)
    assert result.counts["events"] == {"raw_rows": 9, "clean_rows": 8, "quarantined_rows": 1}
    assert "events" in result.summary() and "quarantined" in result.summary()
    assert json.loads(result.report.read_text())["source"].endswith("items.csv")


def test_raw_hand_over_gives_the_same_result_as_a_direct_run(tmp_path):
    raw = read_source("sample", None, SMALL_SAMPLE)
    raw.events.loc[3, "event_type"] = "bogus"  # one invalid row, so quarantine is not empty
    direct = validate_tables(raw, tmp_path / "direct", 0.05)
    write_raw(raw, tmp_path / "raw")
    staged = validate(tmp_path / "raw", tmp_path / "staged", 0.05)
    assert staged.counts == direct.counts and direct.counts["events"]["quarantined_rows"] == 1
    for name in ("items", "events", "query_labels", "quarantine"):
        a = pd.read_parquet(tmp_path / "direct" / f"{name}.parquet")
        b = pd.read_parquet(tmp_path / "staged" / f"{name}.parquet")
        pd.testing.assert_frame_equal(a, b)
    stored = pd.read_parquet(tmp_path / "raw" / "events.parquet")
    assert all(stored[c].map(type).eq(str).all() for c in stored.columns if c != "_row")


def test_read_raw_names_what_is_missing(tmp_path):
    with pytest.raises(DataValidationError) as info:
        read_raw(tmp_path)
    assert "raw tables present" in str(info.value) and "items.parquet" in str(info.value)


def test_read_source_refuses_unknown_source_and_missing_path():
    with pytest.raises(DataValidationError, match="known source"):
        read_source("ftp", None, IngestParams())
    with pytest.raises(DataValidationError, match="needs --path"):
        read_source("online_retail", None, IngestParams())


def test_gx_indices_map_back_to_labels_on_any_index():
    """GX 1.24 + pandas 3 miss in-set violations on a non-0..n-1 index; run() must not."""
    frame = pd.DataFrame({"item_id": ["a", "b", "b"]}, index=[10, 20, 30])
    rule = expectations.row_rules(EVENTS, pd.Series(["a"]))[-1]
    (outcome,) = expectations.run("index_check", frame, [rule.expectation])
    assert not outcome.success and list(outcome.unexpected_index) == [20, 30]


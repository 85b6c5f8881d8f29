"""Durable feedback: validation by ingestion's rules, exactly-once storage, exports, ingestion of the batches."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from shoprec.cli import app
from shoprec.config import IngestParams, SampleParams
from shoprec.data.read import read_source
from shoprec.stages.validate import validate_tables
from shoprec.data.sources.base import ROW_COL, SOURCE_COL
from shoprec.data.sources.feedback import load_feedback
from shoprec.serving.sqlite_store import SqliteStore
from shoprec.serving.store import StoreError, open_store

CATALOG = {"I000001", "I000002"}


def event(**fields) -> dict:
    base = {"user_id": "fb-user", "item_id": "I000001", "event_type": "click", "timestamp": "2024-01-05T10:00:00Z"}
    return {**base, **fields}


def without(field: str) -> dict:
    e = event()
    del e[field]
    return e


# One broken event per rule: (event, field, rule).
BROKEN = [
    (without("user_id"), "user_id", "user_id: required but empty"),
    (without("item_id"), "item_id", "item_id: required but empty"),
    (event(event_type="like"), "event_type", "event_type: not one of view, click, add_to_cart, purchase"),
    (event(timestamp="yesterday"), "timestamp", "timestamp: not a parseable ISO 8601 timestamp"),
    (event(timestamp="2999-01-01T00:00:00Z"), "timestamp", "timestamp: outside 1990-01-01 .. now + 1 day"),
    (event(quantity=0), "quantity", "quantity: below 1"),
    (event(quantity="2.5"), "quantity", "quantity: not an integer"),
    (event(quantity="two"), "quantity", "quantity: not a number"),
    (event(item_id="NOPE"), "item_id", "unknown item_id"),
    ("not an object", "event", "event: not a JSON object"),
]


def test_each_rule_rejects_with_field_reason_and_a_valid_example(new_store):
    store = new_store()
    valid = [event(), event(quantity=3, session_id="s1", query="mug"), event(timestamp="2024-01-05T12:00:00+02:00")]
    result = store.append(valid + [e for e, _, _ in BROKEN], CATALOG)

    assert result["accepted"] == 3 and result["duplicates"] == 0
    got = [(r["index"], r["field"], r["reason"]) for r in result["rejected"]]
    assert got == [(3 + i, field, rule) for i, (_, field, rule) in enumerate(BROKEN)]
    assert result["rejected"][8]["value"] == "NOPE" and result["rejected"][8]["example"] in CATALOG

    # Each example is a valid value: putting it in the field makes the event acceptable.
    fixed = [r["example"] if r["field"] == "event" else {**BROKEN[i][0], r["field"]: r["example"]}
             for i, r in enumerate(result["rejected"])]
    assert store.append(fixed, CATALOG) == {"accepted": len(BROKEN), "duplicates": 0, "unattributed": 0, "rejected": []}

    quarantined = store.quarantined()
    assert list(quarantined["request_index"]) == list(range(3, 3 + len(BROKEN)))
    assert quarantined["reason"].iloc[8] == "unknown item_id ('NOPE')"
    assert json.loads(quarantined["record"].iloc[5]) == event(quantity=0)
    assert store.count() == 3 + len(BROKEN)


def test_unknown_items_pass_when_no_catalog_is_given(new_store):
    result = new_store().append([event(item_id="NOPE")], None)
    assert result == {"accepted": 1, "duplicates": 0, "unattributed": 0, "rejected": []}


def test_a_retried_event_id_is_stored_once(new_store):
    store = new_store()
    first = store.append([event(event_id="e1"), event(event_id="e1"), event(), event()], CATALOG)
    retry = store.append([event(event_id="e1", quantity=5)], CATALOG)
    assert (first["accepted"], first["duplicates"]) == (3, 1)
    assert (retry["accepted"], retry["duplicates"]) == (0, 1)
    stored = store.events()
    assert store.count() == 3 and stored["event_id"].is_unique and stored["seq"].is_monotonic_increasing
    assert stored.set_index("event_id").loc["e1", "quantity"] == "1"  # the first write wins
    assert stored["event_id"].drop(0).str.fullmatch(r"[0-9a-f]{32}").all()  # generated uuid4 hex


def test_a_group_commit_answers_each_request_as_if_it_came_alone(new_store):
    requests = [
        [event(event_id="g1"), event(event_type="like")],  # one valid, one broken
        ["not an object", event(event_id="g2")],
        [event(event_id="g1", quantity=4)],  # an earlier request of the same batch stored g1
        [event(item_id="NOPE")],  # nothing valid
    ]
    together = new_store("together").append_events(requests, CATALOG)
    alone_store = new_store("alone")
    alone = [alone_store.append(r, CATALOG) for r in requests]
    assert together == alone
    assert [(r["accepted"], r["duplicates"], [x["index"] for x in r["rejected"]]) for r in together] == \
        [(1, 0, [1]), (1, 0, [0]), (0, 1, []), (0, 0, [0])]
    quarantined = new_store("together").quarantined()
    assert sorted(quarantined["request_index"]) == [0, 0, 1]


def _append_many(db: str, worker: int, start: multiprocessing.synchronize.Barrier, out) -> None:
    store, accepted, duplicates = open_store(db), 0, 0
    start.wait()
    for batch in range(25):
        ids = [f"w{worker}-{batch}-{i}" for i in range(3)] + [f"shared-{batch}-{i}" for i in range(2)]
        result = store.append([event(event_id=i) for i in ids], CATALOG)
        accepted, duplicates = accepted + result["accepted"], duplicates + result["duplicates"]
    out.put((accepted, duplicates))


def test_two_processes_appending_at_once_lose_nothing_and_store_shared_ids_once(new_store):
    store = new_store()
    db = str(store.where)
    store.append([event()], CATALOG)  # import GX once here; the forked workers inherit it
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Barrier(2), ctx.Queue()
    workers = [ctx.Process(target=_append_many, args=(db, w, start, out)) for w in range(2)]
    for w in workers:
        w.start()
    totals = [out.get(timeout=120) for _ in workers]
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0

    assert sum(a for a, _ in totals) == 2 * 25 * 3 + 25 * 2  # own ids, plus each shared id once
    assert sum(d for _, d in totals) == 25 * 2  # the other copy of each shared id
    stored = store.events()
    expected = {f"w{w}-{b}-{i}" for w in range(2) for b in range(25) for i in range(3)}
    expected |= {f"shared-{b}-{i}" for b in range(25) for i in range(2)}
    assert set(stored["event_id"]) - {stored["event_id"].iloc[0]} == expected and len(stored) == len(expected) + 1
    assert stored["seq"].is_monotonic_increasing and stored["seq"].is_unique


def test_export_moves_the_watermark_and_writes_each_event_once(new_store, tmp_path):
    store, out = new_store(), tmp_path / "feedback"
    store.append([event(event_id=f"e{i}") for i in range(3)], CATALOG)
    first = store.export_events(out)
    assert first == out / "feedback-1-3.parquet" and store.pending() == 0
    assert store.export_events(out) is None

    store.append([event(event_id="e3", user_id="later")], CATALOG)
    assert store.pending() == 1 and store.export_events(out) == out / "feedback-4-4.parquet"
    batches, _ = load_feedback(out)
    assert list(batches["user_id"]) == ["fb-user"] * 3 + ["later"]
    assert list(batches[ROW_COL]) == [0, 1, 2, 0] and batches[SOURCE_COL].iloc[3].endswith("feedback-4-4.parquet")
    assert all(batches[c].map(type).eq(str).all() for c in batches.columns if c != ROW_COL)
    assert sorted(p.name for p in out.iterdir()) == ["feedback-1-3.parquet", "feedback-4-4.parquet"]


def test_an_export_that_failed_is_redone_with_the_same_range(new_store, tmp_path):
    store = new_store()
    store.append([event(event_id="a"), event(event_id="b")], CATALOG)
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    with pytest.raises(OSError):
        store.export_events(blocked)  # fails after the range was planned, before the watermark moved
    store.append([event(event_id="c")], CATALOG)
    assert store.pending() == 3

    out = tmp_path / "feedback"
    assert store.export_events(out) == out / "feedback-1-2.parquet"  # the planned range, not 1-3
    assert store.export_events(out) == out / "feedback-3-3.parquet"
    assert list(load_feedback(out)[0]["user_id"]) == ["fb-user"] * 3 and store.pending() == 0


def test_load_feedback_of_a_missing_or_empty_folder_has_the_raw_columns(tmp_path):
    frame, quarantined = load_feedback(tmp_path / "absent")
    assert quarantined.empty and frame.empty and list(frame.columns)[-2:] == [SOURCE_COL, ROW_COL] and "timestamp" in frame.columns


def test_cli_export_prints_path_and_count(new_store, tmp_path):
    store = new_store()
    store.append([event(), event()], CATALOG)
    args = ["export-feedback", "--db", str(store.where), "--out", str(tmp_path / "feedback")]
    first, second = CliRunner().invoke(app, args), CliRunner().invoke(app, args)
    assert json.loads(first.stdout) == {"path": str(tmp_path / "feedback" / "feedback-1-2.parquet"), "count": 2}
    assert json.loads(second.stdout) == {"path": None, "count": 0}


def test_ingest_validates_exported_feedback_with_the_source_events(tmp_path):
    store, folder = SqliteStore(tmp_path / "fb.db"), tmp_path / "feedback"
    store.append([event(user_id="fb-good", event_type="purchase"), event(user_id="fb-gone", item_id="GONE")], None)
    store.export_events(folder)
    sample = SampleParams(n_items=40, n_users=30, n_events=400, days=14)
    without_feedback = validate_tables(read_source("sample", None, IngestParams(
        sample=sample, feedback_dir=str(tmp_path / "none"))), tmp_path / "plain", 0.05)
    result = validate_tables(read_source("sample", None, IngestParams(
        sample=sample, feedback_dir=str(folder))), tmp_path / "out", 0.05)

    counts, before = result.counts["events"], without_feedback.counts["events"]
    assert counts["raw_rows"] == before["raw_rows"] + 2 == counts["clean_rows"] + counts["quarantined_rows"]
    assert counts["clean_rows"] == before["clean_rows"] + 1
    assert counts["quarantined_rows"] == before["quarantined_rows"] + 1
    clean = pd.read_parquet(result.tables["events"])
    good = clean[clean["user_id"] == "fb-good"]
    assert len(good) == 1 and good.iloc[0]["event_type"] == "purchase" and good.iloc[0]["quantity"] == 1
    quarantine = pd.read_parquet(result.quarantine)
    gone = quarantine[quarantine["source"].str.endswith("feedback-1-2.parquet")]
    assert list(gone["reason"]) == ["unknown item_id ('GONE')"] and list(gone["row"]) == [1]
    assert json.loads(gone["record"].iloc[0])["user_id"] == "fb-gone"


@pytest.mark.parametrize("field, value, says", [
    ("user_id", {"id": 7}, "user_id: must be a string, not an object"),
    ("user_id", True, "user_id: must be a string, not true/false"),
    ("item_id", 1001, "item_id: must be a string, not a number"),
    ("session_id", ["s1"], "session_id: must be a string, not a list"),
    ("quantity", True, "quantity: must be a string or a whole number, not true/false"),
    ("quantity", 2.0, "quantity: must be a string or a whole number, not a number"),
    ("query", "q" * 200_000, "query: longer than 200 characters (200000)"),
    ("event_id", "e" * 201, "event_id: longer than 200 characters (201)"),
])
def test_fields_must_be_json_strings_of_bounded_length(new_store, field, value, says):
    store = new_store()
    result = store.append([event(**{field: value}), event(quantity=2, session_id=None)], CATALOG)

    assert result["accepted"] == 1  # the well-formed event beside it is stored
    [rejection] = result["rejected"]
    assert (rejection["index"], rejection["field"], rejection["reason"]) == (0, field, says)
    assert len(str(rejection["value"])) < 200  # a huge value is echoed cut, with its length
    record = store.quarantined()["record"].iloc[0]
    assert len(record) < 4100
    assert set(store.events()["user_id"]) == {"fb-user"}


def _store_with_events(path: Path, n: int = 3000) -> SqliteStore:
    store = SqliteStore(path)
    store.append([event(session_id=f"session-{i:05d}", query=f"query words {i}") for i in range(n)], CATALOG)
    return store  # every connection is closed: the WAL is checkpointed into the file


def _overwrite(path: Path, offset: int, size: int) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        f.write(bytes(range(256)) * (size // 256))


def test_a_store_with_damaged_pages_fails_its_check_naming_the_file(tmp_path):
    path = tmp_path / "fb.db"
    store = _store_with_events(path)
    store.check()
    assert store.healthy()
    _overwrite(path, path.stat().st_size // 2, 8192)

    with pytest.raises(StoreError, match=f"feedback store {path}: .*(malformed|damaged pages).*corrupt; restore it "
                                         "from a backup"):
        SqliteStore(path).check()


def test_a_store_with_a_damaged_header_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "fb.db"
    _store_with_events(path, 10)
    _overwrite(path, 0, 256)
    with pytest.raises(StoreError, match=f"feedback store {path}: file is not a database: the file is corrupt"):
        SqliteStore(path)


def test_an_unwritable_store_fails_its_check_and_recovers_when_writable_again(tmp_path):
    from immutable import immutable

    path = tmp_path / "fb.db"
    store = _store_with_events(path, 10)
    assert store.healthy()
    with immutable(path):
        assert store.healthy()  # the last answer, until the re-check interval has passed
        store._checked_at -= 60  # as if it had: the light probe (a write, rolled back) finds the store unwritable
        assert not store.healthy()
        with pytest.raises(StoreError, match=f"feedback store {path}: .*readonly.*must be able to write"):
            store.append([event()], CATALOG)
        store._checked_at -= 60
        assert not store.healthy()
    assert not store.healthy()  # the last answer, until the interval has passed
    store._checked_at -= 60
    assert store.healthy() and store.append([event()], CATALOG)["accepted"] == 1


def test_cli_export_of_a_corrupt_store_is_one_message(tmp_path):
    path = tmp_path / "fb.db"
    _store_with_events(path, 10)
    _overwrite(path, 0, 256)
    result = CliRunner().invoke(app, ["export-feedback", "--db", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert f"export-feedback: feedback store {path}: file is not a database" in result.output
    assert "Traceback" not in result.output


def test_threads_validating_at_once_each_get_their_own_verdict():
    """Two threads of one process validate at the same time (as two writers to a store do): a clean
    batch stays clean and a bad one is rejected for its own rule, every round."""
    from concurrent.futures import ThreadPoolExecutor

    from shoprec.serving.feedback import validated

    good = [{"user_id": "u1", "item_id": "I1", "event_type": "click", "timestamp": "2024-01-05T10:00:00Z"}] * 5
    bad = [dict(good[0], event_type="teleport")] * 5

    def verdicts(events):
        accepted, rejected = validated(events, None)
        return len(accepted), sorted({r["field"] for r in rejected})

    with ThreadPoolExecutor(2) as pool:
        for _ in range(20):
            clean, broken = pool.submit(verdicts, good), pool.submit(verdicts, bad)
            assert clean.result() == (5, [])
            assert broken.result() == (0, ["event_type"])

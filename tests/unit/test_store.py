"""The store's impressions, attribution, recent events and versions; the impression writer's group commits."""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from prometheus_client import CollectorRegistry, Counter
from typer.testing import CliRunner

from shoprec.cli import app
from shoprec.config import IngestParams, ParamsError, SampleParams, load_params
from shoprec.data.read import read_source
from shoprec.serving.impressions import ImpressionLog
from shoprec.serving.sqlite_store import MIGRATIONS, SqliteStore
from shoprec.serving.store import Impression, StoreError, open_store
from shoprec.stages.validate import validate_tables

CATALOG = {"I000001", "I000002", "I000003"}
OLD_STORE = Path(__file__).resolve().parents[1] / "fixtures" / "feedback_store_v0.sql"


def event(**fields) -> dict:
    return {"user_id": "u1", "item_id": "I000001", "event_type": "click", "timestamp": "2024-01-05T10:00:00Z"} | fields


def impression(request_id: str, served_at: float | None = None, **fields) -> Impression:
    base = dict(surface="recommend", user_id="u1", session_id="s1", model_version="shoprec:v1", variant="champion",
                item_ids=("I000002", "I000001", "I000003"), query="", served_at=time.time() if served_at is None
                else served_at)
    return Impression(request_id, **(base | fields))


class Counts:
    """The writer's two counters as real Prometheus counters, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.sent, self.stored = (Counter(name, name, registry=self.registry) for name in ("sent", "stored"))

    def __call__(self) -> tuple[float, float]:
        return tuple(self.registry.get_sample_value(f"{name}_total") for name in ("sent", "stored"))


def old_store(path: Path) -> Path:
    """A store exactly as the release before impressions left it (tests/fixtures/feedback_store_v0.sql)."""
    with sqlite3.connect(path) as db:
        db.executescript(OLD_STORE.read_text())
        db.execute("PRAGMA journal_mode=WAL")
    return path


def test_a_store_of_the_previous_release_is_migrated_in_place(tmp_path):
    path = old_store(tmp_path / "old.db")
    store = open_store(f"sqlite:///{path}")
    assert isinstance(store, SqliteStore)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) == 1
    events = store.events()
    assert list(events["event_id"]) == ["old-1", "old-2", "old-3"]  # kept, in order, with the new columns
    assert list(events["request_id"]) == [""] * 3 and events["attributed"].isna().all()
    assert events.set_index("event_id").loc["old-2", "ts"] == "2024-01-06T10:00:00.000000+00:00"  # +02:00 in UTC
    assert store.pending() == 1 and len(store.quarantined()) == 1  # the export watermark and quarantine survive

    # The old rows work with the new operations, and new rows sit beside them.
    out = tmp_path / "feedback"
    assert store.export_events(out) == out / "feedback-3-3.parquet"  # only what the old export had not taken
    assert pq.read_table(out / "feedback-3-3.parquet").column("request_id").to_pylist() == [""]
    since = store.recent_events("old-user", dt.datetime(2024, 1, 6, tzinfo=dt.timezone.utc))
    assert list(since["event_id"]) == ["old-2"]
    store.append_impressions([impression("r-new")])
    assert store.append([event(event_id="new-1", request_id="r-new", position=1)], CATALOG)["unattributed"] == 0
    assert open_store(path).events()["event_id"].tolist()[-1] == "new-1"  # opening again migrates nothing


def test_a_store_of_a_newer_release_is_refused_naming_it(new_store):
    where = str(new_store().where)
    if where.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(where, autocommit=True) as db:
            db.execute("UPDATE shoprec_schema SET version = version + 1")
    else:
        with sqlite3.connect(where) as db:
            db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StoreError, match=f"feedback store {re.escape(where)}: made by a newer shoprec"):
        open_store(where)


def test_the_store_is_chosen_by_its_location_and_other_schemes_are_refused_naming_the_field(tmp_path):
    assert isinstance(open_store(tmp_path / "plain.db"), SqliteStore) and (tmp_path / "plain.db").is_file()
    assert isinstance(open_store(f"sqlite:///{tmp_path}/url.db"), SqliteStore) and (tmp_path / "url.db").is_file()
    params = tmp_path / "params.yaml"
    for wrong in ("mysql://shop@db/shop", "postgresql://", "sqlite:///", ""):
        params.write_text(f"serving:\n  feedback_db: '{wrong}'\n")
        with pytest.raises(ParamsError, match=rf"{params}: serving\.feedback_db: .*names no store: give a SQLite file "
                                              r".*e\.g\. postgresql://shoprec@db\.internal:5432/shoprec"):
            load_params(params)
    params.write_text("serving:\n  feedback_db: postgresql://shoprec@db.internal:5432/shoprec\n")
    assert load_params(params).serving.feedback_db.startswith("postgresql://")
    wrong = CliRunner().invoke(app, ["export-feedback", "--db", "mysql://shop@db/shop"])
    assert wrong.exit_code == 1 and "export-feedback: --db: 'mysql://shop@db/shop' names no store" in wrong.output


def test_events_naming_a_logged_answer_are_attributed_and_others_stored_but_counted(new_store):
    store = new_store()
    store.append_impressions([impression("r1"), impression("r2", surface="search", query="mug")])
    store.append_impressions([impression("r1", user_id="someone else")])  # a retried commit: stored once
    assert store.known_requests(["r1", "r2", "nope"]) == {"r1", "r2"}

    result = store.append([event(request_id="r1", position=0), event(request_id="r2", position="2"),
                           event(request_id="nope", position=1), event(), event(request_id="r1", event_id="x")],
                          CATALOG)
    again = store.append([event(request_id="nope", event_id="x")], CATALOG)  # a duplicate is not counted again
    assert (result["accepted"], result["unattributed"], result["rejected"]) == (5, 1, [])
    assert (again["duplicates"], again["unattributed"]) == (1, 0)
    stored = store.events()
    assert [None if pd.isna(v) else int(v) for v in stored["attributed"]] == [1, 1, 0, None, 1]
    assert store.unattributed() == 1
    assert list(stored["position"]) == ["0", "2", "1", "", ""]
    impressions = store.impressions()
    assert list(impressions["request_id"]) == ["r1", "r2"] and impressions["user_id"].iloc[0] == "u1"
    assert impressions["item_ids"].iloc[1] == ["I000002", "I000001", "I000003"]


@pytest.mark.parametrize("field, value, says", [
    ("request_id", 7, "request_id: must be a string, not a number"),
    ("request_id", "r" * 201, "request_id: longer than 200 characters (201)"),
    ("position", -1, "position: negative (must be >= 0)"),
    ("position", 1.5, "position: must be a string or a whole number, not a number"),
    ("position", True, "position: must be a string or a whole number, not true/false"),
    ("position", "first", "position: not a number"),
    ("position", "2.5", "position: not an integer"),
])
def test_request_id_and_position_are_checked(new_store, field, value, says):
    result = new_store().append([event(**{field: value}), event(request_id="r", position=0)], CATALOG)
    assert result["accepted"] == 1
    [rejection] = result["rejected"]
    assert (rejection["index"], rejection["field"], rejection["reason"]) == (0, field, says)
    assert rejection["example"] == {"request_id": "5d41402abc4b2a76b9719d911017c592", "position": 0}[field]


def test_recent_events_of_a_shopper_since_a_time(new_store):
    store = new_store()
    store.append([event(timestamp="2024-01-05T10:00:00Z", event_id="a"), event(timestamp="2024-01-07T09:00:00+01:00",
                  event_id="c"), event(timestamp="2024-01-06T00:00:00Z", event_id="b", event_type="purchase"),
                  event(user_id="u2", timestamp="2024-01-08T00:00:00Z")], CATALOG)
    recent = store.recent_events("u1", dt.datetime(2024, 1, 6))  # naive: UTC
    assert list(recent["event_id"]) == ["b", "c"] and list(recent["event_type"]) == ["purchase", "click"]
    assert recent["ts"].iloc[1] == "2024-01-07T08:00:00.000000+00:00" and "received_at" in recent
    assert store.recent_events("nobody", dt.datetime(2000, 1, 1)).empty


def test_recent_events_see_every_commit_and_survive_a_close(new_store):
    """A read after a commit sees it, though the SQLite backend keeps its read connection between reads; a
    closed store's next read opens a new one."""
    store = new_store()
    since = dt.datetime(2024, 1, 1)
    assert store.recent_events("u1", since).empty
    store.append([event(event_id="a")], CATALOG)
    assert list(store.recent_events("u1", since)["event_id"]) == ["a"]
    store.close()
    store.append([event(event_id="b", timestamp="2024-01-06T10:00:00Z")], CATALOG)
    assert list(store.recent_events("u1", since)["event_id"]) == ["a", "b"]


def test_impressions_are_exported_in_batches_and_expire(new_store, tmp_path):
    store, out = new_store(), tmp_path / "impressions"
    day = 86400.0
    store.append_impressions([impression("old", served_at=time.time() - 10 * day), impression("recent")])
    first = store.export_impressions(out, keep_days=30)
    assert first.path == out / "impressions-1-2.parquet" and first.count == 2 and first.expired == 0
    batch = pq.read_table(first.path).to_pandas()
    assert list(batch["request_id"]) == ["old", "recent"] and list(batch["item_ids"].iloc[0]) == ["I000002",
                                                                                                  "I000001", "I000003"]
    assert str(batch["served_at"].dtype) == "datetime64[us, UTC]"
    assert store.export_impressions(out, keep_days=30).path is None  # nothing new

    store.append_impressions([impression("later", served_at=time.time() - 6 * day)])
    store.append_impressions([impression("unexported", served_at=time.time() - 9 * day)])
    done = store.export_impressions(out, keep_days=7)  # exports 3-4, then drops what is older than 7 days
    assert done.path == out / "impressions-3-4.parquet" and done.count == 2
    assert done.expired == 2  # "old" and "unexported" (exported just before): both older than 7 days
    assert list(store.impressions()["request_id"]) == ["recent", "later"]
    assert done.expired_files == []  # each batch still holds a newer impression
    expired = store.export_impressions(out, keep_days=1)
    assert expired.path is None and expired.expired == 1 and expired.expired_files == [out / "impressions-3-4.parquet"]
    assert sorted(p.name for p in out.iterdir()) == ["impressions-1-2.parquet"]


def test_cli_exports_impressions_with_the_retention_of_params(tmp_path):
    store = SqliteStore(tmp_path / "fb.db")
    store.append_impressions([impression("r1", served_at=time.time() - 100 * 86400.0), impression("r2")])
    params = tmp_path / "params.yaml"
    params.write_text("serving:\n  impressions_days: 30\n")
    args = ["export-impressions", "--db", str(tmp_path / "fb.db"), "--out", str(tmp_path / "out"),
            "--params", str(params)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"path": str(tmp_path / "out/impressions-1-2.parquet"), "count": 2,
                                         "expired": 1, "expired_files": []}
    missing = CliRunner().invoke(app, ["export-impressions", "--db", str(tmp_path / "none.db")])
    assert missing.exit_code == 1 and "no feedback database" in missing.output


def test_the_writer_commits_in_groups_and_counts_sent_and_stored(new_store):
    store = new_store()
    counts = Counts()
    log = ImpressionLog(store, counts.sent, counts.stored, interval=0.2)
    for n in range(50):
        log.log(impression(f"r{n}"))
    assert counts()[0] == 50
    deadline = time.monotonic() + 5
    while counts()[1] < 50 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert counts() == (50, 50) and len(store.impressions()) == 50 and log.pending() == 0

    log.log(impression("last"))
    log.close()  # a graceful stop commits what is queued
    assert counts() == (51, 51) and store.known_requests(["last"]) == {"last"}


def test_the_writer_keeps_impressions_while_the_store_fails_and_stores_them_after(tmp_path):
    from immutable import immutable

    path = tmp_path / "fb.db"
    store = SqliteStore(path)
    counts = Counts()
    log = ImpressionLog(store, counts.sent, counts.stored, interval=3600)  # commits only when asked here
    log.log(impression("a"))
    with immutable(path):
        log.log(impression("b"))
        assert log.flush() == 0 and log.pending() == 2 and counts() == (2, 0)
    assert log.flush() == 2 and list(store.impressions()["request_id"]) == ["a", "b"]
    assert counts() == (2, 2)
    log.close()


def test_ingest_reads_attributed_feedback_and_batches_from_before_attribution(new_store, tmp_path):
    store, folder = new_store(), tmp_path / "feedback"
    store.append_impressions([impression("r1")])
    store.append([event(user_id="fb-attributed", request_id="r1", position=2, event_type="purchase")], None)
    store.export_events(folder)
    old_batch = pd.DataFrame([{**event(user_id="fb-old"), "session_id": "", "query": "", "quantity": "1",
                               "event_id": "e-old"}])
    old_batch.to_parquet(folder / "feedback-0-0.parquet", index=False)  # a batch exported before these columns
    sample = SampleParams(n_items=40, n_users=30, n_events=400, days=14)
    raw = read_source("sample", None, IngestParams(sample=sample, feedback_dir=str(folder)))
    raw.events.loc[raw.events["user_id"].isin(["fb-attributed", "fb-old"]), "item_id"] = raw.items["item_id"].iloc[0]
    result = validate_tables(raw, tmp_path / "out", 0.05)

    clean = pd.read_parquet(result.tables["events"])
    assert str(clean["position"].dtype) == "Int64"
    fed = clean[clean["user_id"].str.startswith("fb-")].set_index("user_id")
    assert fed.loc["fb-attributed", "request_id"] == "r1" and fed.loc["fb-attributed", "position"] == 2
    assert fed.loc["fb-old", "request_id"] == "" and pd.isna(fed.loc["fb-old", "position"])
    assert clean.loc[~clean["user_id"].str.startswith("fb-"), "position"].isna().all()

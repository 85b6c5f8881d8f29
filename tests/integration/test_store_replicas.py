"""Several replicas, one PostgreSQL store: exports under concurrent writers, two services and a SIGKILL.

A real PostgreSQL server (tests/helpers/pg_server.py), real service processes (``shoprec
serve``) and bounded loops. The watermark test makes the race the export scheme exists
for happen on purpose: a writer holding a low ``seq`` commits after a higher one has
been exported.
"""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pandas as pd
import psycopg
import pytest

from shoprec.serving.feedback import warm_up
from shoprec.serving.store import Impression, StoreError, open_store

EVENT = {"user_id": "u-replica", "item_id": "I000001", "event_type": "click", "timestamp": "2024-01-05T10:00:00Z"}


def exported(folder: Path, kind: str) -> pd.Series:
    """The ids in every batch of ``folder`` (event_id or request_id), one entry per exported row."""
    column = "event_id" if kind == "feedback" else "request_id"
    files = sorted(folder.glob(f"{kind}-*.parquet"))
    return pd.concat([pd.read_parquet(f, columns=[column])[column] for f in files], ignore_index=True) if files \
        else pd.Series([], dtype=str)


def _waits_on_a_lock(url: str, timeout: float = 10.0) -> None:
    with psycopg.connect(url, autocommit=True) as db:
        deadline = time.monotonic() + timeout
        while not db.execute("SELECT 1 FROM pg_stat_activity WHERE application_name = 'shoprec' "
                             "AND wait_event_type = 'Lock'").fetchone():
            assert time.monotonic() < deadline, "the writer never blocked"
            time.sleep(0.05)


def test_a_row_committed_after_a_higher_seq_was_exported_is_exported_next_time(postgres, tmp_path):
    url, out = postgres.database(), tmp_path / "feedback"
    store = open_store(url)
    warm_up(None)  # Great Expectations imported: the writer below reaches its insert at once
    with ThreadPoolExecutor(1) as pool, psycopg.connect(url) as blocker:
        # A replica's group commit that stalls after its event took a seq: its quarantine insert waits here.
        blocker.execute("LOCK TABLE quarantine IN SHARE ROW EXCLUSIVE MODE")
        slow = pool.submit(store.append, [dict(EVENT, event_id="late"), dict(EVENT, event_type="like")], None)
        try:
            _waits_on_a_lock(url)
            store.append([dict(EVENT, event_id="early")], None)  # a later seq, committed first
            first = store.export_events(out)
        finally:
            blocker.rollback()  # the stalled commit goes through now
        assert slow.result(timeout=30)["accepted"] == 1
    seqs = store.events().set_index("event_id")["seq"]
    assert seqs["late"] < seqs["early"]  # the race happened: "seq above the last exported" would skip "late"
    assert list(exported(out, "feedback")) == ["early"] and first is not None
    second = store.export_events(out)
    assert second is not None and sorted(exported(out, "feedback")) == ["early", "late"]
    assert store.pending() == 0 and store.export_events(out) is None
    store.close()


def test_exports_during_concurrent_writers_hold_every_row_exactly_once(postgres, tmp_path):
    url, out = postgres.database(), tmp_path / "out"
    open_store(url).close()  # migrate once, before the writers race
    batches, per_batch = 20, 10
    done = threading.Event()

    def write(writer: int) -> None:
        store = open_store(url)
        for b in range(batches):
            ids = [f"w{writer}-{b}-{i}" for i in range(per_batch)]
            requests = [[dict(EVENT, event_id=i) for i in ids[:5]], [dict(EVENT, event_id=i) for i in ids[5:]]]
            results = store.append_events(requests, None)  # one group commit of two requests
            assert [r["accepted"] for r in results] == [5, 5], results
            store.append_impressions([Impression(i, "recommend", "u", "s", "m", "champion", ("I000001",), "",
                                                 time.time()) for i in ids])
        store.close()

    def export() -> int:
        store, runs = open_store(url), 0
        while not done.is_set():
            store.export_events(out)
            store.export_impressions(out, keep_days=30)
            runs += 1
            time.sleep(0.02)
        store.close()
        return runs

    with ThreadPoolExecutor(3) as pool:
        exporter = pool.submit(export)
        writers = [pool.submit(write, w) for w in range(2)]
        for w in writers:
            w.result(timeout=120)
        done.set()
        runs = exporter.result(timeout=60)
    final = open_store(url)
    final.export_events(out)
    final.export_impressions(out, keep_days=30)
    expected = {f"w{w}-{b}-{i}" for w in range(2) for b in range(batches) for i in range(per_batch)}
    for kind in ("feedback", "impressions"):
        ids = exported(out, kind)
        assert ids.is_unique and set(ids) == expected, kind
    assert set(final.events()["event_id"]) == expected and final.pending() == 0
    assert runs > 1 and len(list(out.glob("feedback-*.parquet"))) > 1  # the exports really ran between writes
    final.close()


def test_an_unreachable_database_is_an_error_naming_it_without_the_password(postgres):
    url = f"postgresql://shoprec:s3cret@127.0.0.1:{postgres.port}/postgres"
    store = open_store(url)
    postgres.stop()
    try:
        with pytest.raises(StoreError, match=rf"feedback store postgresql://shoprec:\*\*\*@127.0.0.1:{postgres.port}"
                                             r"/postgres: .*must be running and reachable") as failed:
            store.check()
        assert "s3cret" not in str(failed.value) and not store.healthy()
        with pytest.raises(StoreError, match="must be running"):
            open_store(url)
    finally:
        postgres.start()
    store.check()  # back: the next operation reconnects, and a thorough check clears the failure
    assert store.healthy()
    store.close()


class Client:
    """A shop's client: posts batches of events to its replica and, when that fails, the same batch to
    the other (as a load balancer would); remembers what was sent and what was acknowledged."""

    def __init__(self, items: list[str]) -> None:
        self.items, self.lock = items, threading.Lock()
        self.sent: set[str] = set()
        self.acked: set[str] = set()
        self.accepted = self.failed_over = 0

    def post(self, urls: list[str], name: str, n: int) -> None:
        events = [dict(EVENT, item_id=self.items[(n * 5 + k) % len(self.items)], event_id=f"{name}-{n}-{k}")
                  for k in range(4)] + [dict(EVENT, item_id=self.items[0], event_id=f"shared-{n}")]  # sent to both
        with self.lock:
            self.sent.update(e["event_id"] for e in events)
        for attempt, url in enumerate(urls):
            try:
                response = httpx.post(f"{url}/feedback", json={"events": events}, timeout=10)
            except httpx.HTTPError:
                continue  # the replica is gone (or was killed with the request in flight): the next one
            if response.is_success:
                with self.lock:
                    self.acked.update(e["event_id"] for e in events)
                    self.accepted += response.json()["accepted"]
                    self.failed_over += attempt
                return


def _ready(url: str) -> int:
    try:
        return httpx.get(f"{url}/readyz", timeout=5).status_code
    except httpx.HTTPError:
        return 0


def _until(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_two_replicas_store_every_acknowledged_event_once_though_one_is_killed(pipeline_run, package_record, bundle,
                                                                               postgres, tmp_path):
    from shoprec.serving.process import start_server

    url, requests = postgres.database(), 25
    items = pd.read_parquet(bundle / "data/clean/items.parquet")["item_id"].tolist()
    with ThreadPoolExecutor(2) as pool:  # both load their model at once
        starts = [pool.submit(start_server, pipeline_run.root, url, tmp_path / f"{name}.log") for name in "ab"]
    servers = [s.result() for s in starts if s.exception() is None]
    try:
        assert len(servers) == 2, [str(s.exception())[-2000:] for s in starts if s.exception()]
        a, b = servers
        client = Client(items)
        with ThreadPoolExecutor(4) as pool:
            loops = [pool.submit(lambda urls, name: [client.post(urls, name, n) for n in range(requests)], urls, name)
                     for urls, name in [([a.url, b.url], "a1"), ([a.url, b.url], "a2"), ([b.url], "b1"),
                                        ([b.url, a.url], "b2")]]
            assert _until(lambda: len(client.acked) >= 100)
            a.stop(signal.SIGKILL)  # mid-stream: a's clients fail over to b
            for loop in loops:
                loop.result(timeout=300)
        stored = open_store(url).events()["event_id"]
        assert stored.is_unique and set(client.acked) <= set(stored), "an acknowledged event is missing"
        assert set(stored) <= client.sent, "stored events nobody sent"
        assert set(stored) == client.acked  # every batch was acknowledged in the end (by b after the kill)
        assert client.failed_over > 0 and client.accepted <= len(stored)

        # Real-time /recommend reads the shopper's stored events from the database off the event loop: while the
        # database hangs, each request costs its deadline and gets the precomputed list, and the worker serves on.
        assert httpx.post(f"{b.url}/recommend", json={"user_id": "u-replica", "k": 5}, timeout=10).json()["realtime"]
        with postgres.hung():
            for _ in range(3):
                started = time.monotonic()
                answer = httpx.post(f"{b.url}/recommend", json={"user_id": "u-replica", "k": 5}, timeout=10)
                assert answer.status_code == 200 and not answer.json()["realtime"] and len(answer.json()["items"]) == 5
                assert time.monotonic() - started < 2.0, "a hung database held the request past its deadline"
            assert httpx.post(f"{b.url}/similar", json={"item_id": items[0], "k": 5}, timeout=5).status_code == 200
        assert _until(lambda: httpx.post(f"{b.url}/recommend", json={"user_id": "u-replica", "k": 5},
                                         timeout=10).json()["realtime"]), "real-time lists did not come back"

        # The database goes away: b's readiness says so, and comes back with it.
        postgres.stop()
        try:
            assert _until(lambda: _ready(b.url) == 503), "readiness still 200 with the database down"
        finally:
            postgres.start()
        assert _until(lambda: _ready(b.url) == 200), "readiness did not recover with the database"
    finally:
        for server in servers:
            server.stop()


def test_a_replica_whose_database_is_unreachable_refuses_to_start_naming_it(pipeline_run, package_record, tmp_path):
    from shoprec.serving.process import free_port, start_server

    url = f"postgresql://shoprec@127.0.0.1:{free_port()}/shoprec"  # nothing listens there
    with pytest.raises(RuntimeError, match=rf"refusing to serve: feedback store {url}: .*must be running"):
        start_server(pipeline_run.root, url, tmp_path / "server.log").stop()

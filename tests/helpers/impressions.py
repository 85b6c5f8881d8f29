"""What a running server logged: its impressions (they arrive in group commits: wait, bounded), its
counters, and what a SIGKILL of one of its workers under load costs (the e2e test and bench/ share it)."""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import psutil

from shoprec.serving.process import Server
from shoprec.serving.sqlite_store import SqliteStore


def logged(db: Path, request_ids: list[str], timeout: float = 5.0) -> pd.DataFrame:
    """The stored impressions of ``request_ids`` (indexed by request id), once all are there or ``timeout`` passed."""
    deadline = time.monotonic() + timeout
    while True:
        stored = SqliteStore(db).impressions().set_index("request_id")
        if set(request_ids) <= set(stored.index) or time.monotonic() > deadline:
            return stored.loc[stored.index.intersection(request_ids)]
        time.sleep(0.1)


def metric(server: Server, name: str) -> float:
    """A counter of ``/metrics``, summed over its series (the workers' values are summed already)."""
    lines = httpx.get(f"{server.url}/metrics", timeout=30).text.splitlines()
    values = [float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(name)]
    assert values, f"{name} is not in /metrics"
    return sum(values)


@dataclass
class KillRun:
    answered: list[tuple[float, str]]  # (when the request was sent, its answer's request_id), every 200
    killed_at: float  # time.monotonic() of the SIGKILL
    lost: list[float]  # when the answers whose impression is not stored were asked for
    stored: int  # impressions in the store
    sent_metric: float  # /metrics after the run: shoprec_answers_sent_total
    stored_metric: float  # ... and shoprec_impressions_stored_total
    rate: float  # answers per second before the kill


def kill_worker_under_load(server: Server, users: list[str], callers: int = 4, before: int = 1000,
                           after: int = 200, timeout: float = 180.0) -> KillRun:
    """``callers`` threads ask /recommend in a closed loop; after ``before`` answers one worker process
    gets SIGKILL; once BentoML's restarted worker has given ``after`` more, the load stops and, after
    the last group commit, the store and /metrics are read."""
    answered: list[tuple[float, str]] = []
    stop = threading.Event()

    def shop(n: int) -> None:
        with httpx.Client(timeout=5) as client:
            while not stop.is_set():
                sent = time.monotonic()
                try:
                    response = client.post(f"{server.url}/recommend", json={"user_id": users[n % len(users)], "k": 10})
                except httpx.HTTPError:
                    continue  # in flight at the kill, or the worker is starting again
                if response.status_code == 200:
                    answered.append((sent, response.json()["request_id"]))

    tree = [psutil.Process(server.process.pid), *psutil.Process(server.process.pid).children(recursive=True)]
    worker = next(p for p in tree if "_bentoml_impl.worker" in " ".join(p.cmdline()))
    deadline = time.monotonic() + timeout
    with ThreadPoolExecutor(callers) as pool:
        for n in range(callers):
            pool.submit(shop, n)
        try:
            started = time.monotonic()
            while len(answered) < before and time.monotonic() < deadline:
                time.sleep(0.05)
            killed_at, count = time.monotonic(), len(answered)
            worker.send_signal(signal.SIGKILL)
            while len(answered) < count + after and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            stop.set()
    assert len(answered) >= count + after, f"no new answers {timeout:.0f} s after the kill: the worker did not restart"
    time.sleep(1.5)  # the last group commit of the restarted worker
    stored = set(SqliteStore(server.feedback_db).impressions()["request_id"])
    return KillRun(answered, killed_at, [sent for sent, request_id in answered if request_id not in stored],
                   len(stored), metric(server, "shoprec_answers_sent_total"),
                   metric(server, "shoprec_impressions_stored_total"), count / (killed_at - started))

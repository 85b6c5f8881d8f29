"""Impressions: what each answer showed, logged off the request's path in group commits.

Every ``/recommend``, ``/search`` and ``/similar`` answer carries a ``request_id`` (a
uuid4 hex) and a ``variant``; a shopper's click or purchase that names the
``request_id`` (and the item's ``position``) is attributed to that answer. The variant is
the experiment arm that answered (``"champion"`` for every answer while no experiment
runs, :mod:`shoprec.serving.experiment`), and the model version the model of that arm.

:class:`ImpressionLog` takes an impression from the event loop in microseconds (a deque
append and a counter) and a background thread writes what has queued every
:data:`FLUSH_SECONDS` in one transaction, so a request never waits for the disk and a
commit's fsync is shared by hundreds of answers. The price is the last moments before a
crash: a SIGKILL loses what queued since the last commit, at most about
:data:`FLUSH_SECONDS` plus a commit's time. The loss is counted rather than hidden: the
``answers_sent`` counter moves with every answer, the ``impressions_stored`` one after
each commit (both Prometheus counters in the server, whose files outlive a killed
worker, so ``/metrics`` shows sent minus stored). While the store fails, impressions
wait in memory for the next commit, up to :data:`MAX_PENDING`; past that some are
dropped, and counted as lost by the same difference.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
import uuid
from typing import Protocol

from shoprec.serving.store import Impression, Store, StoreError

FLUSH_SECONDS = 0.5  # a group commit at least this often: a crash loses at most ~this much
MAX_PENDING = 200_000  # impressions held while the store fails (~minutes of full load per worker)
LOG = logging.getLogger("bentoml.shoprec")


class Counter(Protocol):
    def inc(self, amount: float = 1) -> None: ...


def new_request_id() -> str:
    return uuid.uuid4().hex


class ImpressionLog:
    """Queue impressions from any thread; a daemon thread commits them to ``store`` in groups.

    ``sent`` counts every impression logged, ``stored`` every one committed (anything
    with ``inc``: Prometheus counters in the server).
    """

    def __init__(self, store: Store, sent: Counter, stored: Counter, interval: float = FLUSH_SECONDS,
                 max_pending: int = MAX_PENDING) -> None:
        self.store, self.sent, self.stored, self.interval = store, sent, stored, interval
        self._queue: collections.deque[Impression] = collections.deque(maxlen=max_pending)  # full: some dropped
        self._commit = threading.Lock()  # one group commit at a time (the thread, or flush() from a request)
        self._stop = threading.Event()
        self._failing = False
        self._thread = threading.Thread(target=self._run, name="impressions", daemon=True)
        self._thread.start()

    def log(self, impression: Impression) -> None:
        """Queue one impression (thread-safe, no I/O)."""
        self._queue.append(impression)
        self.sent.inc()

    def flush(self) -> int:
        """Commit what is queued now; how many were stored (0 while the store fails: they stay queued)."""
        with self._commit:
            batch = [self._queue.popleft() for _ in range(len(self._queue))]
            if not batch:
                return 0
            try:
                self.store.append_impressions(batch)
            except StoreError as exc:
                self._queue.extendleft(reversed(batch))  # retried first next time, order kept
                if not self._failing:
                    LOG.error("impressions not stored (kept in memory, retried): %s", exc)
                self._failing = True
                return 0
            if self._failing:
                LOG.info("impressions stored again")
            self._failing = False
            self.stored.inc(len(batch))
            return len(batch)

    def pending(self) -> int:
        return len(self._queue)

    def close(self) -> None:
        """Stop the thread after a last commit of everything queued (a server's shutdown)."""
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            started = time.monotonic()
            self.flush()
            if time.monotonic() - started > self.interval:
                LOG.warning("a group commit of impressions took %.2f s (> %.2f s)", time.monotonic() - started,
                            self.interval)
        self.flush()

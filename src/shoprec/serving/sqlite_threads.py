"""One SQLite connection per thread, opened on first use and kept until :meth:`ThreadConnections.close`.

Real-time ``/recommend`` reads SQLite at every request (the feedback store's recent events, the
list cache), and opening a connection costs more than those queries. A connection stays with the
thread that opened it; ``close`` (at shutdown) closes them all, from whichever thread.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable


class ThreadConnections:
    def __init__(self, open_one: Callable[[], sqlite3.Connection]) -> None:
        self._open_one = open_one
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def get(self) -> sqlite3.Connection:
        """The calling thread's connection."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self._open_one()
            with self._lock:
                self._opened.append(db)
        return db

    def forget(self) -> None:
        """The calling thread's next :meth:`get` opens a new connection (after an error on this one)."""
        self._local.db = None

    def close(self) -> None:
        with self._lock:
            for db in self._opened:
                db.close()
            self._opened.clear()
        self._local = threading.local()

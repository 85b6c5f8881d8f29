"""Real-time lists reused while nothing they were computed from has changed, shared by a server's workers.

A list depends on the shopper's history, the request's options and the clock. The key holds
the first two exactly (the user, the options and the ids of every stored event that was part
of the history), so a new ``/feedback`` event, whichever worker or replica took it, changes the
key of the shopper's next request; only the clock moves while a list is reused, and at most
``max_age`` of the data's clock: the answer is the one a recomputation would have given that
long ago.

The entries live in a small SQLite file that every worker of one server opens (the workers are
processes; keep-alive connections pin a caller to one of them, so a cache per worker would
compute each shopper's list once per worker). The file is scratch, not state: written without
fsync, named after the server process and the loaded model, removed by :meth:`ListCache.close`,
and any error reading or writing it is a miss, never a failed request.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import tempfile
from pathlib import Path

import pandas as pd

from shoprec.serving.sqlite_threads import ThreadConnections

PRUNE_EVERY = 1000  # puts between two removals of expired and surplus entries


class ListCache:
    """Lists by key, each with the data-clock time it was computed at (see the module docstring)."""

    def __init__(self, path: Path, max_age: pd.Timedelta, size: int = 20_000) -> None:
        self.path, self.max_age, self.size = Path(path), max_age, size
        self._connections = ThreadConnections(self._open)
        self._puts = 0

    @classmethod
    def for_server(cls, model: str, max_age: pd.Timedelta) -> ListCache:
        """The cache the workers of this server share for ``model`` (an identity of the loaded bundle and its
        clock): a file in the temporary directory named after the parent process, which started the workers."""
        name = hashlib.sha1(f"{os.getppid()} {model}".encode()).hexdigest()[:16]
        return cls(Path(tempfile.gettempdir()) / f"shoprec-lists-{name}.db", max_age)

    def get(self, key: tuple, now: pd.Timestamp) -> object | None:
        try:
            row = self._connections.get().execute("SELECT at, value FROM lists WHERE key = ?", (_digest(key),)).fetchone()
        except sqlite3.Error:
            return None
        if row is None or not 0 <= now.value - row[0] <= self.max_age.value:
            return None
        return json.loads(row[1])

    def put(self, key: tuple, now: pd.Timestamp, value: object) -> None:
        try:
            db = self._connections.get()
            db.execute("INSERT OR REPLACE INTO lists (key, at, value) VALUES (?, ?, ?)",
                       (_digest(key), now.value, json.dumps(value)))
            self._puts += 1
            if self._puts % PRUNE_EVERY == 0:
                self._prune(db, now)
        except sqlite3.Error:
            pass

    def _prune(self, db: sqlite3.Connection, now: pd.Timestamp) -> None:
        """Remove the expired entries, then the oldest beyond ``size``."""
        db.execute("DELETE FROM lists WHERE at < ?", (now.value - self.max_age.value,))
        db.execute("DELETE FROM lists WHERE key IN (SELECT key FROM lists ORDER BY at DESC LIMIT -1 OFFSET ?)",
                   (self.size,))

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, timeout=0.05, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=OFF")  # scratch: a lost entry is a recomputation
        db.execute("CREATE TABLE IF NOT EXISTS lists (key TEXT PRIMARY KEY, at INTEGER NOT NULL, value TEXT)")
        return db

    def __len__(self) -> int:
        return self._connections.get().execute("SELECT COUNT(*) FROM lists").fetchone()[0]

    def close(self) -> None:
        """Close the connections and remove the file (a worker still running recomputes its lists)."""
        self._connections.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)


def _digest(key: tuple) -> str:
    return hashlib.sha1(repr(key).encode()).hexdigest()

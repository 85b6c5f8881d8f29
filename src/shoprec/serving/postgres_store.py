"""The store in a PostgreSQL database: several replicas of the service, one store (:mod:`shoprec.serving.store`).

Same rows and answers as the SQLite backend; what differs is how, with many writers:

* exactly-once: ``event_id`` (and an impression's ``request_id``) is UNIQUE and every
  insert is ``ON CONFLICT DO NOTHING``, so a retry of an acknowledged event, sent to this
  replica or another, is counted as a duplicate and not stored again. A group commit is
  one transaction; it returns once PostgreSQL has flushed its WAL (the server's
  ``synchronous_commit``, on by default), so an acknowledged event survives a crash of
  the replica, and of the database server.
* the export watermark: ``seq`` comes from a sequence, and sequence numbers are handed
  out when a row is inserted, not when its transaction commits. Replica A can take seq
  10, replica B seq 11, and B commit first: an export between the two commits would see
  11, and "every seq above the last exported" would then skip 10 for ever. (SQLite has
  one writer, so there its seq order is commit order.) Here an export instead *claims*
  rows: in one transaction it adds an ``exports`` row (the batch, not done) and sets
  ``batch`` on every row that has none (``UPDATE ... WHERE batch IS NULL``). The UPDATE
  sees exactly the rows committed before it started; a row still being inserted is
  invisible to it, keeps ``batch`` NULL when it commits, and goes to the next export.
  No row is claimed twice: only exports write ``batch``, one at a time (an advisory lock
  per table), and only where it is NULL. The claim is committed before the file is
  written, so a crash after it leaves a planned batch whose rows are fixed; the next
  export writes those rows again under the same name (``<first seq>-<last seq>`` of the
  batch; a seq belongs to one batch, so names never collide) and only then claims more.
  The price is one update of each row, once. Serialising writers with a lock held
  through commit would keep seq in commit order too, but would make every replica's
  commit wait for the others'; snapshot xmin bounds would be exact as well, but need
  the transaction ids of rows, which a logical dump and restore renumbers.
* versions: the ``shoprec_schema`` table holds the version; opening a store applies the
  missing :data:`MIGRATIONS` in one transaction under an advisory lock, so of several
  replicas starting at once one migrates and the others find it done.
* connections: a small pool per store (per process: a forked child opens its own), each
  operation on one connection; one that failed is closed, not reused. If the database
  goes away, operations fail with :class:`~shoprec.serving.store.StoreError` naming the
  URL (without its password), readiness reports the store down, and the next operation
  after it is back reconnects.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pandas as pd
import psycopg

from shoprec.data.contracts import EVENTS
from shoprec.serving.feedback import Accepted
from shoprec.serving.store import EXPORT_COLUMNS, IMPRESSION_SCHEMA, RECENT_COLUMNS, Impression, Store, StoreError, \
    impression_row, now_iso

CONNECT_TIMEOUT_S = 10  # a server that does not answer fails the operation (and a replica's start) after this
IDLE_CONNECTIONS = 4  # kept open per store for the next operation
MIGRATION_LOCK = 0x5EED_0001  # advisory lock keys (any bigint unique to shoprec)
EXPORT_LOCKS = {"events": 0x5EED_0002, "impressions": 0x5EED_0003}
EXPORTS = {"events": "exports", "impressions": "impression_exports"}  # a table -> its exports' table
IMPRESSION_COLUMNS = IMPRESSION_SCHEMA.names

# Version 1: what SQLite's version 1 holds, plus each row's export batch (NULL: none yet).
SCHEMA_1 = f"""
CREATE TABLE exports (
    batch BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    done BOOLEAN NOT NULL DEFAULT FALSE,
    path TEXT,
    exported_at TEXT
);
CREATE TABLE impression_exports (LIKE exports INCLUDING ALL);
CREATE TABLE events (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    {", ".join(f"{name} TEXT NOT NULL" for name in EVENTS.names)},
    ts TEXT NOT NULL,  -- the event time in UTC (ISO text: text order is time order)
    attributed BOOLEAN,  -- whether its request_id was a stored impression when it arrived; NULL without one
    received_at TEXT NOT NULL,
    batch BIGINT REFERENCES exports
);
CREATE INDEX events_user_ts ON events (user_id, ts);
CREATE INDEX events_batch ON events (batch);
CREATE INDEX events_unexported ON events (seq) WHERE batch IS NULL;
CREATE TABLE quarantine (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_index INTEGER NOT NULL,
    field TEXT NOT NULL,
    reason TEXT NOT NULL,
    record TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE TABLE impressions (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    {", ".join(f"{name} TEXT NOT NULL" for name in IMPRESSION_COLUMNS)},  -- item_ids: a JSON list, served_at ISO
    batch BIGINT REFERENCES impression_exports,
    UNIQUE (request_id)
);
CREATE INDEX impressions_served_at ON impressions (served_at);
CREATE INDEX impressions_batch ON impressions (batch);
CREATE INDEX impressions_unexported ON impressions (seq) WHERE batch IS NULL;
"""

MIGRATIONS = [SCHEMA_1]  # MIGRATIONS[v] takes a store from version v to v + 1


def redacted(url: str) -> str:
    """``url`` without its password (what messages and logs may show)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


class PostgresStore(Store):
    """Feedback events, quarantined events and impressions in the PostgreSQL database at ``url``."""

    remote = True

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url, self.where = url, redacted(url)
        self._idle: list[psycopg.Connection] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._migrate()

    def _migrate(self) -> None:
        with self._transaction() as db:
            db.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            db.execute("CREATE TABLE IF NOT EXISTS shoprec_schema (version INTEGER NOT NULL)")
            row = db.execute("SELECT version FROM shoprec_schema").fetchone()
            version = 0 if row is None else row[0]
            if version > len(MIGRATIONS):
                raise _Refused(f"made by a newer shoprec (version {version}; this one knows up to "
                               f"{len(MIGRATIONS)}); serve it with that release")
            if version == len(MIGRATIONS):
                return
            for migration in MIGRATIONS[version:]:
                db.execute(migration)
            db.execute("DELETE FROM shoprec_schema")
            db.execute("INSERT INTO shoprec_schema VALUES (%s)", (len(MIGRATIONS),))

    # --- health -------------------------------------------------------------------------------------------------

    def check(self, thorough: bool = True) -> None:
        """Raise :class:`StoreError` unless the database answers, has this release's tables and takes writes.

        A write (the schema version, rewritten to itself) rolled back: fails on a server
        that is down, a read-only one (a standby) and a user without write rights. Light
        and thorough are the same here (PostgreSQL checks its own pages); only a
        thorough check clears an earlier failure.
        """
        with self._transaction() as db:
            db.execute("UPDATE shoprec_schema SET version = version")
            db.execute("SELECT 1 FROM events, impressions, quarantine LIMIT 0")
            raise psycopg.Rollback()
        if thorough:
            self._failed_at = None

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for db in idle:
            db.close()

    # --- events -------------------------------------------------------------------------------------------------

    def _insert_events(self, events: list[Accepted], quarantined: list[tuple], received_at: str) -> list[tuple]:
        names = ["event_id", *EVENTS.names, "ts", "attributed", "received_at"]
        insert = (f"INSERT INTO events ({', '.join(names)}) "
                  f"VALUES ({', '.join(['%s'] * len(names))}) ON CONFLICT (event_id) DO NOTHING RETURNING seq")
        request_ids = [event.field("request_id").strip() for event in events]
        with self._transaction() as db:
            known = _known(db, [r for r in request_ids if r])
            attributed = [request_id in known if request_id else None for request_id in request_ids]
            stored = _each_stored(db, insert, [(event.event_id, *event.values, event.ts, a, received_at)
                                               for event, a in zip(events, attributed)])
            if quarantined:
                db.cursor().executemany("INSERT INTO quarantine (request_index, field, reason, record, received_at) "
                                        "VALUES (%s, %s, %s, %s, %s)", quarantined)
        return list(zip(stored, attributed))

    def recent_rows(self, user_id: str, since: dt.datetime) -> list[tuple]:
        since = since if since.tzinfo else since.replace(tzinfo=dt.timezone.utc)
        with self._connection() as db:
            return db.execute(f"SELECT {', '.join(RECENT_COLUMNS)} FROM events WHERE user_id = %s AND ts >= %s "
                              "ORDER BY ts, seq", (user_id, now_iso(since.timestamp()))).fetchall()

    def pending(self) -> int:
        return int(self._frame("SELECT COUNT(*) AS n FROM events WHERE batch IS NULL "
                               "OR batch IN (SELECT batch FROM exports WHERE NOT done)")["n"].iloc[0])

    # --- impressions --------------------------------------------------------------------------------------------

    def append_impressions(self, impressions: list[Impression]) -> None:
        rows = [impression_row(i) for i in impressions]
        with self._transaction() as db:
            db.cursor().executemany(
                f"INSERT INTO impressions ({', '.join(IMPRESSION_COLUMNS)}) "
                f"VALUES ({', '.join(['%s'] * len(IMPRESSION_COLUMNS))}) ON CONFLICT (request_id) DO NOTHING", rows)

    def known_requests(self, request_ids: list[str]) -> set[str]:
        with self._connection() as db:
            return _known(db, request_ids)

    def _delete_exported_impressions(self, cutoff: str) -> int:
        with self._transaction() as db:
            return db.execute("DELETE FROM impressions WHERE served_at < %s AND batch IN "
                              "(SELECT batch FROM impression_exports WHERE done)", (cutoff,)).rowcount

    # --- export -------------------------------------------------------------------------------------------------

    def _plan(self, table: str) -> tuple[int, pd.DataFrame] | None:
        """Claim the rows no export holds for a new batch (see the module docstring), unless one
        planned before is unfinished: then that one, the same rows."""
        exports, columns = EXPORTS[table], EXPORT_COLUMNS if table == "events" else IMPRESSION_COLUMNS
        with self._transaction() as db:
            db.execute("SELECT pg_advisory_xact_lock(%s)", (EXPORT_LOCKS[table],))
            row = db.execute(f"SELECT batch FROM {exports} WHERE NOT done").fetchone()
            if row is None:
                row = db.execute(f"INSERT INTO {exports} DEFAULT VALUES RETURNING batch").fetchone()
                if not db.execute(f"UPDATE {table} SET batch = %s WHERE batch IS NULL", row).rowcount:
                    raise psycopg.Rollback()  # nothing to export: no batch either
            return row[0], _read(db, f"SELECT seq, {', '.join(columns)} FROM {table} WHERE batch = %s ORDER BY seq",
                                 row)
        return None

    def _finish(self, table: str, key: int, path: Path) -> None:
        with self._transaction() as db:
            db.execute(f"UPDATE {EXPORTS[table]} SET done = TRUE, path = %s, exported_at = %s WHERE batch = %s",
                       (str(path), now_iso(), key))

    # --- plumbing -----------------------------------------------------------------------------------------------

    def _frame(self, sql: str) -> pd.DataFrame:
        with self._connection() as db:
            return _read(db, sql)

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        """A connection of the pool for one operation; any failure closes it and leaves as :class:`StoreError`."""
        db = None
        try:
            db = self._take()
            yield db
        except (psycopg.Error, pd.errors.DatabaseError, OSError) as exc:
            if db is not None:
                db.close()
                db = None
            if isinstance(exc, psycopg.OperationalError):
                self.close()  # the server went away (or is unreachable): the idle connections are dead too
            self._failed_at = time.monotonic()
            raise StoreError(self.where, _explain(exc)) from exc
        except _Refused as exc:
            raise StoreError(self.where, str(exc)) from None
        except BaseException:
            if db is not None:
                db.close()
                db = None
            raise
        finally:
            if db is not None:
                self._give_back(db)

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection]:
        """One transaction (READ COMMITTED), committed when the block ends, rolled back if it raises."""
        with self._connection() as db, db.transaction():
            yield db

    def _take(self) -> psycopg.Connection:
        with self._lock:
            if os.getpid() != self._pid:  # forked: the parent's connections are not this process's to use
                self._idle, self._pid = [], os.getpid()
            if self._idle:
                return self._idle.pop()
        return psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                               application_name="shoprec")

    def _give_back(self, db: psycopg.Connection) -> None:
        with self._lock:
            if len(self._idle) < IDLE_CONNECTIONS and os.getpid() == self._pid and not db.closed:
                self._idle.append(db)
                return
        db.close()


class _Refused(Exception):
    """The database is fine but not one this release may use."""


def _each_stored(db: psycopg.Connection, insert: str, rows: list[tuple]) -> list[bool]:
    """Run ``insert ... RETURNING`` once per row (pipelined: one round trip); whether each inserted a row."""
    if not rows:
        return []
    cursor = db.cursor()
    cursor.executemany(insert, rows, returning=True)
    stored = []
    while True:
        stored.append(cursor.fetchone() is not None)
        if not cursor.nextset():
            return stored


def _known(db: psycopg.Connection, request_ids: list[str]) -> set[str]:
    if not request_ids:
        return set()
    return {row[0] for row in db.execute("SELECT request_id FROM impressions WHERE request_id = ANY(%s)",
                                         (sorted(set(request_ids)),))}


def _read(db: psycopg.Connection, sql: str, params: tuple | None = None) -> pd.DataFrame:
    cursor = db.execute(sql, params)
    return pd.DataFrame(cursor.fetchall(), columns=[c.name for c in cursor.description])


def _explain(exc: BaseException) -> str:
    """What is wrong with the database, and what an operator can do about it."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, psycopg.OperationalError):
        return f"{text}: the database server must be running and reachable at this address, the user allowed in"
    if isinstance(exc, psycopg.errors.ReadOnlySqlTransaction):
        return f"{text}: the URL names a read-only server (a standby?); point serving.feedback_db at the primary"
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return f"{text}: the database user must be able to create tables (once) and write them"
    return text

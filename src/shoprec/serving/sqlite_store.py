"""The store in one embedded SQLite file: the default, for one host (:mod:`shoprec.serving.store`).

* WAL mode with ``synchronous=FULL``: every commit is fsynced to the write-ahead log
  before it returns, so an event acknowledged to a client survives a SIGKILL of the
  server and a power loss (``synchronous=NORMAL`` in WAL mode survives only the process
  crash: the last commits may still sit in the OS page cache). WAL also lets readers
  (exports, inspection) run while a worker writes.
* ``busy_timeout``: several server worker processes write the same file; a writer waits
  up to :data:`BUSY_TIMEOUT_MS` for the lock instead of failing at once. Each write is
  one short ``BEGIN IMMEDIATE`` transaction (validation happens before it), so waits are
  milliseconds. Connections are opened per operation, so a store is safe to share
  between threads and to create before a fork.
* exactly-once: every accepted event has an ``event_id`` with a UNIQUE constraint (and
  every impression a ``request_id``); a retry of an acknowledged event is counted as a
  duplicate and not stored again (the first write wins; a rejected event reserves
  nothing, so its corrected retry may reuse the id). ``seq`` (``INTEGER PRIMARY KEY
  AUTOINCREMENT``, increasing but with gaps: a duplicate insert uses up a number)
  numbers rows in commit order: SQLite has a single writer and assigns ``seq`` inside
  the write lock, so no row can later commit below a ``seq`` an export has already seen,
  which makes "every ``seq`` above the watermark" exact.
* versions: the file's ``PRAGMA user_version`` says which of :data:`MIGRATIONS` it has;
  opening a store applies the missing ones in place, in one transaction (the first
  worker to get the write lock does it, the others find it done). A new store is made
  as version 0 and migrated like an old one, so there is one path.

A file that is not a sound SQLite database, or cannot be written, raises
:class:`~shoprec.serving.store.StoreError` naming the file (:meth:`SqliteStore.check`).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from shoprec.data.contracts import EVENTS
from shoprec.serving.feedback import UTC_TEXT, Accepted
from shoprec.serving.sqlite_threads import ThreadConnections
from shoprec.serving.store import EXPORT_COLUMNS, IMPRESSION_SCHEMA, RECENT_COLUMNS, Impression, Store, StoreError, impression_row, \
    now_iso

BUSY_TIMEOUT_MS = 10_000
IMPRESSION_COLUMNS = IMPRESSION_SCHEMA.names
EXPORTS = {"events": "exports", "impressions": "impression_exports"}  # a table -> its exports' table
IN_CHUNK = 500  # ids per `IN (...)` lookup

# Version 0: the store as the first release wrote it.
SCHEMA_V0 = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL, item_id TEXT NOT NULL, event_type TEXT NOT NULL, timestamp TEXT NOT NULL, session_id TEXT NOT NULL, query TEXT NOT NULL, quantity TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS quarantine (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    request_index INTEGER NOT NULL,
    field TEXT NOT NULL,
    reason TEXT NOT NULL,
    record TEXT NOT NULL,
    received_at TEXT NOT NULL
);
-- one row per export; the range is planned (done = 0) before the file is written
CREATE TABLE IF NOT EXISTS exports (
    first_seq INTEGER NOT NULL,
    last_seq INTEGER PRIMARY KEY,
    done INTEGER NOT NULL,
    path TEXT,
    exported_at TEXT
);
"""

# Version 1: attribution (an event's request_id and position, and whether its request_id was a
# stored impression when it arrived: NULL without one), the event time in UTC for "a shopper's
# events since", and the impressions with their own exports.
MIGRATION_1 = """
ALTER TABLE events ADD COLUMN request_id TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN position TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN ts TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN attributed INTEGER;
CREATE INDEX events_user_ts ON events (user_id, ts);
CREATE TABLE impressions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL UNIQUE,
    surface TEXT NOT NULL,
    user_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    model_version TEXT NOT NULL,
    variant TEXT NOT NULL,
    item_ids TEXT NOT NULL,  -- JSON list: item_ids[i] was shown at position i
    query TEXT NOT NULL,
    served_at TEXT NOT NULL
);
CREATE INDEX impressions_served_at ON impressions (served_at);
CREATE TABLE impression_exports (
    first_seq INTEGER NOT NULL,
    last_seq INTEGER PRIMARY KEY,
    done INTEGER NOT NULL,
    path TEXT,
    exported_at TEXT
);
"""


def _backfill_event_times(db: sqlite3.Connection) -> None:
    """Version 1's ``ts`` for the events a version-0 store holds (all passed validation, so all parse)."""
    old = pd.read_sql_query("SELECT seq, timestamp FROM events WHERE ts = ''", db)
    stamps = pd.to_datetime(old["timestamp"].str.strip(), utc=True, format="ISO8601")
    db.executemany("UPDATE events SET ts = ? WHERE seq = ?",
                   zip(stamps.dt.strftime(UTC_TEXT), old["seq"].tolist()))


def _migrate_1(db: sqlite3.Connection) -> None:
    _run_script(db, MIGRATION_1)
    _backfill_event_times(db)


MIGRATIONS = [_migrate_1]  # MIGRATIONS[v] takes a store from version v to v + 1


class SqliteStore(Store):
    """Feedback events, quarantined events and impressions in the SQLite file ``path``."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = self.where = Path(path)
        self._readers = ThreadConnections(self._open_reader)  # recent_rows' connections (see there)
        with self._guard():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as db:
                db.execute("PRAGMA journal_mode=WAL")  # persistent: stored in the file
            self._migrate()

    def _migrate(self) -> None:
        with self._transaction() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise StoreError(self.path, f"made by a newer shoprec (version {version}; this one knows up to "
                                            f"{len(MIGRATIONS)}); serve it with that release")
            if version == 0:
                _run_script(db, SCHEMA_V0)
            for migration in MIGRATIONS[version:]:
                migration(db)
            db.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")

    # --- health -------------------------------------------------------------------------------------------------

    def check(self, thorough: bool = True) -> None:
        """Raise :class:`StoreError` unless the file reads back sound and takes writes.

        Thorough: ``PRAGMA quick_check`` reads every page of the file (O(size): a server
        runs it at start, so corrupt pages are found then, not by the first shopper's
        event, and again before it reports a failed store healthy). Always: a write
        (the header's ``user_version``, rewritten to itself) rolled back, which fails
        on a store that cannot be written, without a commit's fsync.
        """
        with self._connect() as db:
            if thorough and (problems := [row[0] for row in db.execute("PRAGMA quick_check(5)")]) != ["ok"]:
                lines = [line for text in problems for line in text.splitlines() if not line.startswith("***")]
                raise sqlite3.DatabaseError(f"damaged pages ({'; '.join(lines)})")
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(f"PRAGMA user_version = {int(db.execute('PRAGMA user_version').fetchone()[0])}")
            finally:
                db.execute("ROLLBACK")
        if thorough:
            self._failed_at = None

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """SQLite's and the file system's errors as one :class:`StoreError` that names the file."""
        try:
            yield
        except (sqlite3.Error, pd.errors.DatabaseError, OSError) as exc:
            self._failed_at = time.monotonic()
            raise StoreError(self.path, _explain(exc)) from exc

    # --- events -------------------------------------------------------------------------------------------------

    def _insert_events(self, events: list[Accepted], quarantined: list[tuple], received_at: str) -> list[tuple]:
        names = [*EVENTS.names, "event_id", "ts", "attributed", "received_at"]
        insert = (f"INSERT INTO events ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}) "
                  "ON CONFLICT (event_id) DO NOTHING")
        request_ids = [event.field("request_id").strip() for event in events]
        out = []
        with self._transaction() as db:
            known = _known(db, [r for r in request_ids if r])
            for event, request_id in zip(events, request_ids):
                attributed = request_id in known if request_id else None
                cursor = db.execute(insert, (*event.values, event.event_id, event.ts, attributed, received_at))
                out.append((bool(cursor.rowcount), attributed))
            db.executemany("INSERT INTO quarantine (request_index, field, reason, record, received_at) "
                           "VALUES (?, ?, ?, ?, ?)", quarantined)
        return out

    def recent_rows(self, user_id: str, since: dt.datetime) -> list[tuple]:
        since = since if since.tzinfo else since.replace(tzinfo=dt.timezone.utc)
        with self._guard():
            try:
                return self._readers.get().execute(
                    f"SELECT {', '.join(RECENT_COLUMNS)} FROM events WHERE user_id = ? AND ts >= ? ORDER BY ts, seq",
                    (user_id, now_iso(since.timestamp()))).fetchall()
            except sqlite3.Error:
                self._readers.forget()  # the next read opens a new one (the file may have been replaced)
                raise

    def _open_reader(self) -> sqlite3.Connection:
        """A connection for :meth:`recent_rows`, kept by its thread: real-time ``/recommend`` reads at every
        request. In WAL mode an autocommit read sees every commit made before it, whichever connection made it."""
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)  # closed by close()
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        return db

    def close(self) -> None:
        self._readers.close()

    def pending(self) -> int:
        return self._scalar(
            "SELECT COUNT(*) FROM events WHERE seq > (SELECT COALESCE(MAX(last_seq), 0) FROM exports WHERE done)"
        )

    # --- impressions --------------------------------------------------------------------------------------------

    def append_impressions(self, impressions: list[Impression]) -> None:
        rows = [impression_row(i) for i in impressions]
        with self._transaction() as db:
            db.executemany(f"INSERT INTO impressions ({', '.join(IMPRESSION_COLUMNS)}) "
                           f"VALUES ({', '.join('?' * len(IMPRESSION_COLUMNS))}) ON CONFLICT (request_id) DO NOTHING",
                           rows)

    def known_requests(self, request_ids: list[str]) -> set[str]:
        with self._connect() as db:
            return _known(db, request_ids)

    def _delete_exported_impressions(self, cutoff: str) -> int:
        with self._transaction() as db:
            return db.execute("DELETE FROM impressions WHERE served_at < ? AND seq <= "
                              "(SELECT COALESCE(MAX(last_seq), 0) FROM impression_exports WHERE done)",
                              (cutoff,)).rowcount

    # --- plumbing -----------------------------------------------------------------------------------------------

    def _plan(self, table: str) -> tuple[int, pd.DataFrame] | None:
        """The range of ``seq`` (an ``exports`` row with ``done = 0``) is fixed before the file is written."""
        exports, columns = EXPORTS[table], EXPORT_COLUMNS if table == "events" else IMPRESSION_COLUMNS
        with self._transaction() as db:
            planned = db.execute(f"SELECT first_seq, last_seq FROM {exports} WHERE NOT done").fetchone()
            if planned is None:
                start = db.execute(f"SELECT COALESCE(MAX(last_seq), 0) FROM {exports}").fetchone()[0]
                planned = db.execute(f"SELECT MIN(seq), MAX(seq) FROM {table} WHERE seq > ?", (start,)).fetchone()
                if planned[0] is None:
                    return None
                db.execute(f"INSERT INTO {exports} (first_seq, last_seq, done) VALUES (?, ?, 0)", planned)
            batch = pd.read_sql_query(f"SELECT seq, {', '.join(columns)} FROM {table} "
                                      "WHERE seq BETWEEN ? AND ? ORDER BY seq", db, params=planned)
        return planned[1], batch

    def _finish(self, table: str, key: int, path: Path) -> None:
        with self._transaction() as db:
            db.execute(f"UPDATE {EXPORTS[table]} SET done = 1, path = ?, exported_at = ? WHERE last_seq = ?",
                       (str(path), now_iso(), key))

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with self._guard():
            db = sqlite3.connect(self.path, isolation_level=None)  # autocommit: transactions are explicit
            try:
                db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                db.execute("PRAGMA synchronous=FULL")
                yield db
            finally:
                db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; IMMEDIATE takes the write lock up front (waiting up to the busy timeout)."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _scalar(self, sql: str) -> int:
        with self._connect() as db:
            return int(db.execute(sql).fetchone()[0])

    def _frame(self, sql: str) -> pd.DataFrame:
        with self._connect() as db:
            return pd.read_sql_query(sql, db)


def _run_script(db: sqlite3.Connection, script: str) -> None:
    """The statements of ``script`` inside the open transaction (``executescript`` would commit it first)."""
    for statement in filter(str.strip, _statements(script)):
        db.execute(statement)


def _statements(script: str) -> list[str]:
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return " ".join(lines).split(";")


def _known(db: sqlite3.Connection, request_ids: list[str]) -> set[str]:
    known: set[str] = set()
    unique = sorted(set(request_ids))
    for start in range(0, len(unique), IN_CHUNK):
        chunk = unique[start:start + IN_CHUNK]
        known.update(row[0] for row in db.execute(
            f"SELECT request_id FROM impressions WHERE request_id IN ({', '.join('?' * len(chunk))})", chunk))
    return known


def _explain(exc: BaseException) -> str:
    """What is wrong with the store, and what an operator can do about it."""
    text = str(exc)
    if "not a database" in text or "malformed" in text or "damaged" in text:
        return (f"{text}: the file is corrupt; restore it from a backup, or move it aside to start an empty "
                "store (its events not yet exported stay in the moved file)")
    if "readonly" in text or "read-only" in text or isinstance(exc, PermissionError):
        return f"{text}: the server must be able to write the file and its folder (for the -wal and -shm files)"
    return text

"""Durable feedback: events the service acknowledged, kept until a training run reads them.

``POST /feedback`` hands a list of events to :meth:`FeedbackStore.append`; ``shoprec
export-feedback`` moves the accepted ones into Parquet batches under ``data/feedback``,
which the ingest stage reads like any other input (:mod:`shoprec.data.sources.feedback`).

Storage is one embedded SQLite file:

* WAL mode with ``synchronous=FULL``: every commit is fsynced to the write-ahead log
  before :meth:`append` returns, so an event acknowledged to a client survives a SIGKILL
  of the server and a power loss. (``synchronous=NORMAL`` in WAL mode survives only the
  process crash: the last commits may still sit in the OS page cache.) WAL also lets
  readers (exports, inspection) run while a worker writes.
* ``busy_timeout``: several server worker processes write the same file; a writer waits
  up to :data:`BUSY_TIMEOUT_MS` for the lock instead of failing at once. Each append is
  one short ``BEGIN IMMEDIATE`` transaction (validation happens before it), so waits are
  milliseconds. Connections are opened per operation, so a store is safe to share
  between threads and to create before a fork.
* exactly-once: every accepted event has an ``event_id`` (the client's idempotency key,
  or a fresh uuid4 hex) with a UNIQUE constraint; a retry of an acknowledged event is
  counted as a duplicate and not stored again (the first write wins; a rejected event
  reserves nothing, so its corrected retry may reuse the id). ``seq`` (``INTEGER PRIMARY
  KEY AUTOINCREMENT``, increasing but with gaps: a duplicate insert uses up a number)
  numbers events in commit order: SQLite has a single writer and assigns ``seq`` inside
  the write lock, so no event can later commit below a ``seq`` an export has already
  seen, which makes "every ``seq`` above the watermark" exact.

Validation is ingestion's own: the events go through
:func:`shoprec.data.validation.table.validate_table` with the ``EVENTS`` contract
(coercion of every column, then the row-level Great Expectations suite), so an event
accepted here passes ingestion unless the catalog changes in between. A rejected event
is written to the ``quarantine`` table with its reason and raw JSON, and reported back
with the field, the rule, the offending value and an example of a valid value. The
first append in a process imports Great Expectations (~5 s); later ones take ~50 ms,
almost all of it per validation rather than per event, which is why the server batches
concurrent requests into one :meth:`FeedbackStore.append_many`.

Before validation, JSON types are strict: a text field holds a JSON string (or null),
``quantity`` a whole number or a string, and no string is longer than
:data:`MAX_CHARS` says; anything else would be stored as its Python repr, or verbatim
at any size. A store whose file is not a sound SQLite database, or cannot be written,
raises :class:`StoreError` naming the file (:meth:`FeedbackStore.check`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from shoprec.data.contracts import EVENT_TYPES, EVENTS
from shoprec.data.sources.base import ROW_COL, SOURCE_COL
from shoprec.data.sources.feedback import BATCH_NAME
from shoprec.data.validation.table import validate_table
from shoprec.echo import shown

BUSY_TIMEOUT_MS = 10_000
SOURCE_NAME = "feedback"
DEFAULT_QUANTITY = 1  # an event without a quantity (or with null) is one unit
NOT_AN_OBJECT = "event: not a JSON object"
EXPORT_COLUMNS = [*EVENTS.names, "event_id"]
MAX_ID_CHARS = 200  # user, item, session and event ids (the API's other id fields share it)
# The longest string each event field may hold (characters); quantity may be a string of at most 20.
MAX_CHARS = {"user_id": MAX_ID_CHARS, "item_id": MAX_ID_CHARS, "event_type": 20, "timestamp": 64,
             "session_id": MAX_ID_CHARS, "query": 200, "quantity": 20, "event_id": MAX_ID_CHARS}
RECORD_CHARS = 4000  # a quarantined event's JSON is kept up to this (a valid event's fields fill at most ~1,100)
RECHECK_SECONDS = 5.0  # readiness probes check the store at most this often

# What a client is told a valid value looks like, per contract field.
EXAMPLES: dict[str, Any] = {
    "user_id": "user-42",
    "item_id": "SKU-1001",
    "event_type": EVENT_TYPES[-1],
    "timestamp": "2024-05-01T12:30:00+00:00",
    "session_id": "session-7",
    "query": "red mug",
    "quantity": 1,
    "event_id": "3f2c9a7e-retry-safe-id",
}

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    {", ".join(f"{name} TEXT NOT NULL" for name in EVENTS.names)},
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


class StoreError(RuntimeError):
    """The feedback store cannot be used: a corrupt or unwritable file (the message names it)."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"feedback store {path}: {problem}")


class FeedbackStore:
    """Accepted feedback events and rejected ones, in the SQLite file ``path``.

    Every SQLite failure leaves as :class:`StoreError`; after one, :meth:`healthy` is
    False until a re-check passes (a server's readiness probe reports it).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._failed_at: float | None = None  # when an operation last failed; None: working
        self._checked_at = time.monotonic()
        with self._guard():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as db:
                db.execute("PRAGMA journal_mode=WAL")  # persistent: stored in the file
                db.executescript(SCHEMA)

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

    def healthy(self) -> bool:
        """Whether the store works, as a readiness probe asks it: at most every RECHECK_SECONDS
        a light check (or, after a failure, a thorough one, which alone clears it) runs;
        in between, the last answer."""
        if time.monotonic() - self._checked_at >= RECHECK_SECONDS:
            self._checked_at = time.monotonic()
            with suppress(StoreError):
                self.check(thorough=self._failed_at is not None)
        return self._failed_at is None

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """SQLite's and the file system's errors as one :class:`StoreError` that names the file."""
        try:
            yield
        except (sqlite3.Error, pd.errors.DatabaseError, OSError) as exc:
            self._failed_at = time.monotonic()
            raise StoreError(self.path, _explain(exc)) from exc

    def append(self, events: list[Any], known_items: set[str] | None) -> dict:
        """Validate and store ``events`` in one transaction; what happened to each.

        ``known_items`` (the catalog's item ids), when given, rejects events for other
        items; None skips that rule (ingestion applies it again against its catalog).
        Returns ``{"accepted": n, "duplicates": n, "rejected": [{"index", "field",
        "reason", "value", "example"}, ...]}``; ``index`` is the event's position in
        ``events``, ``reason`` the rule it broke (the first, in contract order).
        """
        return self.append_many([events], known_items)[0]

    def append_many(self, requests: list[list[Any]], known_items: set[str] | None) -> list[dict]:
        """:meth:`append` for several requests at once, one result each (group commit).

        The events of all requests go through one validation and one transaction, so a
        burst of small requests pays the validation's fixed cost and the commit's fsync
        once (the server coalesces concurrent requests, :mod:`shoprec.serving.batching`). The
        rules are per row, so a request's outcome does not depend on its batch-mates,
        except that of two events with the same ``event_id`` the first one stored wins.
        """
        received_at = _now()
        events = [event for request in requests for event in request]
        owner = [(r, i) for r, request in enumerate(requests) for i in range(len(request))]  # -> (request, index)
        frame, rejected = _rejections(events, known_items)
        bad = {r["index"] for r in rejected}
        rows = [(pos, (_event_id(events[pos]), *frame.loc[pos, EVENTS.names], received_at))
                for pos in frame.index if pos not in bad]
        results = [{"accepted": 0, "duplicates": 0, "rejected": []} for _ in requests]
        for rejection in rejected:
            request, index = owner[rejection["index"]]
            results[request]["rejected"].append(rejection | {"index": index})
        with self._transaction() as db:
            for pos, row in rows:
                cursor = db.execute(
                    f"INSERT INTO events (event_id, {', '.join(EVENTS.names)}, received_at) "
                    f"VALUES ({', '.join('?' * len(row))}) ON CONFLICT (event_id) DO NOTHING",
                    row,
                )
                results[owner[pos][0]]["accepted" if cursor.rowcount else "duplicates"] += 1
            db.executemany(
                "INSERT INTO quarantine (request_index, field, reason, record, received_at) VALUES (?, ?, ?, ?, ?)",
                [
                    (owner[r["index"]][1], r["field"], f"{r['reason']} ({r['value']!r})",
                     shown(_json(events[r["index"]]), RECORD_CHARS), received_at)
                    for r in rejected
                ],
            )
        return results

    def count(self) -> int:
        """Accepted events stored."""
        return self._scalar("SELECT COUNT(*) FROM events")

    def pending(self) -> int:
        """Accepted events no finished export holds yet."""
        return self._scalar(
            "SELECT COUNT(*) FROM events WHERE seq > (SELECT COALESCE(MAX(last_seq), 0) FROM exports WHERE done)"
        )

    def events(self) -> pd.DataFrame:
        """Every accepted event: ``seq``, ``event_id``, the contract columns (text), ``received_at``."""
        with self._connect() as db:
            return pd.read_sql_query("SELECT * FROM events ORDER BY seq", db)

    def quarantined(self) -> pd.DataFrame:
        """Every rejected event: request index, field, reason (with the value), raw JSON."""
        with self._connect() as db:
            return pd.read_sql_query("SELECT * FROM quarantine ORDER BY seq", db)

    def export(self, out_dir: Path) -> Path | None:
        """Write the events above the watermark to ``out_dir/feedback-<first>-<last>.parquet``.

        The range is fixed in the DB first (an ``exports`` row with ``done = 0``), the
        file is written to a temp file, fsynced and renamed, and only then is the range
        marked done, which moves the watermark. A crash before the mark leaves the
        planned range, which the next export writes again under the same name (the same
        rows, replacing any partial result), so no event is lost or exported twice.
        Returns None when nothing is pending.
        """
        out_dir = Path(out_dir)
        with self._transaction() as db:
            planned = db.execute("SELECT first_seq, last_seq FROM exports WHERE NOT done").fetchone()
            if planned is None:
                start = db.execute("SELECT COALESCE(MAX(last_seq), 0) FROM exports").fetchone()[0]
                planned = db.execute("SELECT MIN(seq), MAX(seq) FROM events WHERE seq > ?", (start,)).fetchone()
                if planned[0] is None:
                    return None
                db.execute("INSERT INTO exports (first_seq, last_seq, done) VALUES (?, ?, 0)", planned)
            first, last = planned
            batch = pd.read_sql_query(
                f"SELECT {', '.join(EXPORT_COLUMNS)} FROM events WHERE seq BETWEEN ? AND ? ORDER BY seq",
                db,
                params=(first, last),
            )
        path = out_dir / BATCH_NAME.format(first=first, last=last)
        _write_durably(batch, path)
        with self._transaction() as db:
            db.execute(
                "UPDATE exports SET done = 1, path = ?, exported_at = ? WHERE last_seq = ?", (str(path), _now(), last)
            )
        return path

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


def warm_up(known_items: set[str] | None) -> None:
    """Validate one valid event without storing it: the first validation in a process
    imports Great Expectations and builds its suite (~5 s), which a server does before it
    reports ready rather than in its first client's request."""
    example = _example("event", known_items)
    if _rejections([example], known_items)[1]:
        raise RuntimeError(f"the example event {example} does not pass validation")


def _raw_frame(events: list[Any]) -> pd.DataFrame:
    """The events as a raw contract frame (text; absent or null fields empty, quantity 1).

    The index is the position in ``events``; entries that are not objects are left out.
    """
    rows = {i: {name: _text(e.get(name)) for name in EVENTS.names} for i, e in enumerate(events) if isinstance(e, dict)}
    for row in rows.values():
        row["quantity"] = row["quantity"] or str(DEFAULT_QUANTITY)
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=EVENTS.names, dtype=object)
    return frame.assign(**{SOURCE_COL: SOURCE_NAME, ROW_COL: frame.index.astype("int64")})


def _rejections(events: list[Any], known_items: set[str] | None) -> tuple[pd.DataFrame, list[dict]]:
    """The events that are well-formed objects as a raw frame, and every rejected event in
    request order: first the JSON shape (:func:`_shape_problem`), then ingestion's rules
    (validate_table on EVENTS) for the rest."""
    rejected = []
    for i, e in enumerate(events):
        if (problem := _shape_problem(e)) is not None:
            field, reason, value = problem
            rejected.append(_rejection(i, field, reason, value, known_items))
    bad = {r["index"] for r in rejected}
    frame = _raw_frame([e if i not in bad else None for i, e in enumerate(events)])
    if len(frame):
        ids = frame["item_id"].str.strip()
        # Membership in the catalog equals membership in (catalog ∩ this batch's ids), and the
        # small set keeps the GX in-set check fast; None: every id of the batch counts as known.
        known = ids if known_items is None else pd.Series(sorted(i for i in set(ids) if i in known_items), dtype=object)
        result = validate_table(EVENTS, frame, SOURCE_NAME, known)
        for row, rule in zip(result.quarantine["row"], result.quarantine["rule"]):
            field = _field(rule)
            rejected.append(_rejection(int(row), field, rule, frame.at[int(row), field], known_items))
    return frame, sorted(rejected, key=lambda r: r["index"])


def _shape_problem(event: Any) -> tuple[str, str, Any] | None:
    """(field, reason, value) when ``event`` is not an object of JSON strings within :data:`MAX_CHARS`."""
    if not isinstance(event, dict):
        return "event", NOT_AN_OBJECT, _json(event)
    for name, limit in MAX_CHARS.items():
        value = event.get(name)
        if value is None:
            continue
        whole_number = name == "quantity" and isinstance(value, int) and not isinstance(value, bool)
        if not (isinstance(value, str) or whole_number):
            kind = "a string or a whole number" if name == "quantity" else "a string"
            return name, f"{name}: must be {kind}, not {_json_type(value)}", _json(value)
        if isinstance(value, str) and len(value) > limit:
            return name, f"{name}: longer than {limit} characters ({len(value)})", value
    return None


def _json_type(value: Any) -> str:
    names = {bool: "true/false", int: "a number", float: "a number", list: "a list", dict: "an object"}
    return next((name for kind, name in names.items() if isinstance(value, kind)), type(value).__name__)


def _rejection(index: int, field: str, reason: str, value: str, known_items: set[str] | None) -> dict:
    return {"index": index, "field": field, "reason": reason, "value": shown(value),
            "example": _example(field, known_items)}


def _example(field: str, known_items: set[str] | None) -> Any:
    """A valid value of ``field`` (an item of the catalog when one is known); for ``event``, a valid event."""
    if field == "event":
        return {c.name: _example(c.name, known_items) for c in EVENTS.columns if c.required}
    return min(known_items) if field == "item_id" and known_items else EXAMPLES[field]


def _field(rule: str) -> str:
    """The contract column a rule is about: the one named first in its words."""
    named = {name: rule.find(name) for name in EVENTS.names if name in rule}
    return min(named, key=named.get)


def _event_id(event: dict) -> str:
    given = _text(event.get("event_id")).strip()
    return given or uuid.uuid4().hex


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _explain(exc: BaseException) -> str:
    """What is wrong with the store, and what an operator can do about it."""
    text = str(exc)
    if "not a database" in text or "malformed" in text or "damaged" in text:
        return (f"{text}: the file is corrupt; restore it from a backup, or move it aside to start an empty "
                "store (its events not yet exported stay in the moved file)")
    if "readonly" in text or "read-only" in text or isinstance(exc, PermissionError):
        return f"{text}: the server must be able to write the file and its folder (for the -wal and -shm files)"
    return text


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


def _write_durably(batch: pd.DataFrame, path: Path) -> None:
    """Write ``batch`` (all text) to ``path`` via temp file + fsync + rename + directory fsync."""
    path.parent.mkdir(parents=True, exist_ok=True)
    schema = pa.schema([(c, pa.string()) for c in EXPORT_COLUMNS])
    table = pa.Table.from_pandas(batch, schema=schema, preserve_index=False)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            pq.write_table(table, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)

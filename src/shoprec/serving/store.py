"""The service's durable store: feedback events and impressions behind one interface.

What the service, the CLI and the flows need of a store, whatever the database:

* :meth:`Store.append_events`: feedback events of several requests, validated by
  ingestion's rules (:mod:`shoprec.serving.feedback`) and stored in one transaction (a
  group commit), each event once (its ``event_id``); rejected ones are quarantined;
* :meth:`Store.append_impressions`: what answers showed (:class:`Impression`), written
  by the service's impression writer (:mod:`shoprec.serving.impressions`) in group commits;
* :meth:`Store.recent_rows`: a shopper's events since a time (real-time recommendation);
* :meth:`Store.export_events`, :meth:`Store.export_impressions`: Parquet batches of
  what no finished export holds yet, behind a crash-safe watermark; impressions older
  than the retention are deleted by their export;
* :meth:`Store.check`, :meth:`Store.healthy`, :meth:`Store.close`.

Validation happens here, before a backend sees an event, so every backend stores the
same rows and answers a client alike; a backend only writes and reads. So do the
export files: a backend plans a batch (which rows) and marks it done; writing the
Parquet file in between is shared (:meth:`Store._export`). Two backends, chosen by
``serving.feedback_db`` (:func:`open_store`):

* SQLite (:class:`shoprec.serving.sqlite_store.SqliteStore`): a path or ``sqlite:///path``,
  one file on one host (the default);
* PostgreSQL (:class:`shoprec.serving.postgres_store.PostgresStore`): ``postgresql://...``,
  one database for several replicas of the service on several hosts.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tempfile
import time
from abc import ABC, abstractmethod
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from shoprec.config import store_scheme
from shoprec.data.contracts import EVENTS
from shoprec.data.sources.feedback import BATCH_NAME
from shoprec.echo import shown
from shoprec.serving.feedback import UTC_TEXT, Accepted, record_json, validated

RECHECK_SECONDS = 5.0  # readiness probes check the store at most this often
RECORD_CHARS = 4000  # a quarantined event's JSON is kept up to this (a valid event's fields fill at most ~1,100)
SURFACES = ("recommend", "search", "similar")
EXPORT_COLUMNS = [*EVENTS.names, "event_id"]  # of a feedback batch, all text
RECENT_COLUMNS = [*EXPORT_COLUMNS, "ts", "received_at"]  # of Store.recent_rows
IMPRESSION_BATCH = "impressions-{first}-{last}.parquet"
IMPRESSION_BATCH_PATTERN = re.compile(r"impressions-(\d+)-(\d+)\.parquet")


class StoreError(RuntimeError):
    """The store cannot be used: a corrupt or unwritable file (the message names it and what to do)."""

    def __init__(self, where: Path | str, problem: str) -> None:
        super().__init__(f"feedback store {where}: {problem}")


@dataclass(frozen=True, slots=True)
class Impression:
    """One answer of ``/recommend``, ``/search`` or ``/similar`` as the shopper saw it.

    ``item_ids[i]`` was shown at position ``i`` (0-based, as feedback events give
    ``position``); ``served_at`` is Unix time in seconds.
    """

    request_id: str
    surface: str  # one of SURFACES
    user_id: str  # "" when the request named no shopper (/similar, an anonymous /search)
    session_id: str
    model_version: str
    variant: str
    item_ids: tuple[str, ...]
    query: str  # /search only
    served_at: float


@dataclass(frozen=True)
class ImpressionExport:
    path: Path | None  # the batch written, None when nothing was pending
    count: int  # impressions in it
    expired: int  # impressions deleted from the store for being older than the retention
    expired_files: list[Path]  # exported batches deleted for the same reason


class Store(ABC):
    """Feedback events, quarantined events and impressions; see the module docstring.

    Every database failure leaves as :class:`StoreError`; after one, :meth:`healthy` is
    False until a thorough re-check passes (a server's readiness probe reports it).
    """

    where: Path | str  # what messages name: the file, or the database URL without its password
    remote = False  # its reads wait on a database server (a round trip, or a hang): kept off an event loop

    def __init__(self) -> None:
        self._failed_at: float | None = None  # when an operation last failed; None: working
        self._checked_at = time.monotonic()

    # --- events -------------------------------------------------------------------------------------------------

    def append(self, events: list[Any], known_items: set[str] | None) -> dict:
        """:meth:`append_events` for one request."""
        return self.append_events([events], known_items)[0]

    def append_events(self, requests: list[list[Any]], known_items: set[str] | None) -> list[dict]:
        """Validate and store the events of several requests in one transaction; what happened to each.

        ``known_items`` (the catalog's item ids), when given, rejects events for other
        items; None skips that rule (ingestion applies it again against its catalog).
        Returns per request ``{"accepted": n, "duplicates": n, "unattributed": n,
        "rejected": [{"index", "field", "reason", "value", "example"}, ...]}``: ``index``
        is the event's position in its request, ``reason`` the first rule it broke (in
        contract order); ``unattributed`` counts accepted events whose ``request_id`` is
        not among the stored impressions (stored all the same). The rules are per row, so
        a request's outcome does not depend on its batch-mates, except that of two events
        with the same ``event_id`` the first one stored wins; the batch pays the
        validation's fixed cost and the commit once.
        """
        received_at = now_iso()
        events = [event for request in requests for event in request]
        owner = [(r, i) for r, request in enumerate(requests) for i in range(len(request))]  # -> (request, index)
        accepted, rejected = validated(events, known_items)
        results = [{"accepted": 0, "duplicates": 0, "unattributed": 0, "rejected": []} for _ in requests]
        for rejection in rejected:
            request, index = owner[rejection["index"]]
            results[request]["rejected"].append(rejection | {"index": index})
        quarantined = [(owner[r["index"]][1], r["field"], f"{r['reason']} ({r['value']!r})",
                        shown(record_json(events[r["index"]]), RECORD_CHARS), received_at) for r in rejected]
        for event, (stored, attributed) in zip(accepted, self._insert_events(accepted, quarantined, received_at)):
            result = results[owner[event.index][0]]
            result["accepted" if stored else "duplicates"] += 1
            if stored and attributed is False:
                result["unattributed"] += 1
        return results

    @abstractmethod
    def _insert_events(self, events: list[Accepted], quarantined: list[tuple], received_at: str) -> list[tuple]:
        """Store ``events`` (unless their ``event_id`` is stored) and ``quarantined`` in one
        transaction; per event (stored, attributed): attributed is None without a
        ``request_id``, else whether an impression with that id is stored."""

    @abstractmethod
    def recent_rows(self, user_id: str, since: dt.datetime) -> list[tuple]:
        """The accepted events of ``user_id`` whose ``timestamp`` is at or after ``since``,
        oldest first, as rows of :data:`RECENT_COLUMNS`: the contract columns (text),
        ``event_id``, ``ts`` (the timestamp in UTC, ``UTC_TEXT``) and ``received_at``. Rows,
        not a frame: real-time ``/recommend`` reads them at every request."""

    def recent_events(self, user_id: str, since: dt.datetime) -> pd.DataFrame:
        """:meth:`recent_rows` as a frame."""
        return pd.DataFrame(self.recent_rows(user_id, since), columns=RECENT_COLUMNS, dtype=object)

    def export_events(self, out_dir: Path) -> Path | None:
        """Write the events no finished export holds to one batch in ``out_dir``
        (``feedback-<first>-<last>.parquet``, text columns, an input of ingestion); None
        when nothing is pending. A crash mid-way leaves nothing lost or exported twice."""
        exported = self._export("events", Path(out_dir), BATCH_NAME, _events_table)
        return exported[0] if exported else None

    # --- impressions --------------------------------------------------------------------------------------------

    @abstractmethod
    def append_impressions(self, impressions: list[Impression]) -> None:
        """Store ``impressions`` in one durable transaction (a ``request_id`` stored before is skipped)."""

    @abstractmethod
    def known_requests(self, request_ids: list[str]) -> set[str]:
        """Those of ``request_ids`` that a stored impression has."""

    def export_impressions(self, out_dir: Path, keep_days: int) -> ImpressionExport:
        """Write the impressions no finished export holds to ``impressions-<first>-<last>.parquet``
        in ``out_dir``, then delete what is older than ``keep_days`` days: from the store
        (exported impressions only) and the batches in ``out_dir`` whose newest is."""
        out_dir = Path(out_dir)
        exported = self._export("impressions", out_dir, IMPRESSION_BATCH, _impression_table)
        cutoff = now_iso(time.time() - keep_days * 86400.0)
        expired = self._delete_exported_impressions(cutoff)
        expired_files = [path for path in sorted(out_dir.glob("impressions-*.parquet"))
                         if IMPRESSION_BATCH_PATTERN.fullmatch(path.name) and _newest(path) < cutoff]
        for path in expired_files:
            path.unlink()
        path, count = exported or (None, 0)
        return ImpressionExport(path, count, expired, expired_files)

    @abstractmethod
    def _delete_exported_impressions(self, cutoff: str) -> int:
        """Delete the impressions a finished export holds that were served before ``cutoff``; how many."""

    # --- export -------------------------------------------------------------------------------------------------

    def _export(self, table: str, out_dir: Path, name: str, to_arrow) -> tuple[Path, int] | None:
        """The rows of ``table`` no finished export holds into ``out_dir/name``; (path, rows) or None.

        The backend fixes the batch's rows in the database first (:meth:`_plan`), the
        file is written to a temp file, fsynced and renamed, and only then is the batch
        marked done (:meth:`_finish`). A crash before the mark leaves the planned batch,
        which the next export plans again, the same rows, and writes under the same name
        (replacing any partial result), so no row is lost or exported twice.
        """
        planned = self._plan(table)
        if planned is None:
            return None
        key, batch = planned
        path = out_dir / name.format(first=batch["seq"].iloc[0], last=batch["seq"].iloc[-1])
        write_durably(to_arrow(batch.drop(columns="seq")), path)  # a failure here (the folder) is not the store's
        self._finish(table, key, path)
        return path, len(batch)

    @abstractmethod
    def _plan(self, table: str) -> tuple[Any, pd.DataFrame] | None:
        """The unfinished planned batch of ``table`` (``"events"`` or ``"impressions"``), else a new one
        of every row no export holds: (the batch's key for :meth:`_finish`, its rows: ``seq`` and the
        export columns, by ``seq``); None when there is nothing to export."""

    @abstractmethod
    def _finish(self, table: str, key: Any, path: Path) -> None:
        """Mark the planned batch ``key`` of ``table`` done, written to ``path``."""

    # --- inspection (tests, benchmarks, operators) ----------------------------------------------------------------

    def count(self) -> int:
        """Accepted events stored."""
        return int(self._frame("SELECT COUNT(*) AS n FROM events")["n"].iloc[0])

    def unattributed(self) -> int:
        """Accepted events whose request_id no stored impression had when they arrived."""
        return int(self._frame("SELECT COUNT(*) AS n FROM events WHERE NOT attributed")["n"].iloc[0])

    def events(self) -> pd.DataFrame:
        """Every accepted event: ``seq``, ``event_id``, the contract columns (text), ``received_at``,
        ``ts`` and ``attributed``."""
        return self._frame("SELECT * FROM events ORDER BY seq")

    def quarantined(self) -> pd.DataFrame:
        """Every rejected event: request index, field, reason (with the value), raw JSON."""
        return self._frame("SELECT * FROM quarantine ORDER BY seq")

    def impressions(self) -> pd.DataFrame:
        """Every stored impression: ``seq``, the :class:`Impression` fields (``item_ids`` a list,
        ``served_at`` ISO text)."""
        frame = self._frame("SELECT * FROM impressions ORDER BY seq")
        return frame.assign(item_ids=frame["item_ids"].map(json.loads))

    @abstractmethod
    def pending(self) -> int:
        """Accepted events no finished export holds yet."""

    @abstractmethod
    def _frame(self, sql: str) -> pd.DataFrame:
        """The rows of ``sql`` (a query without parameters)."""

    # --- health -------------------------------------------------------------------------------------------------

    @abstractmethod
    def check(self, thorough: bool = True) -> None:
        """Raise :class:`StoreError` unless the store reads back sound and takes writes;
        a thorough check that passes clears an earlier failure."""

    def healthy(self) -> bool:
        """Whether the store works, as a readiness probe asks it: at most every RECHECK_SECONDS
        a light check (or, after a failure, a thorough one, which alone clears it) runs;
        in between, the last answer."""
        if time.monotonic() - self._checked_at >= RECHECK_SECONDS:
            self._checked_at = time.monotonic()
            with suppress(StoreError):
                self.check(thorough=self._failed_at is not None)
        return self._failed_at is None

    def close(self) -> None:
        """Release what the backend holds open (its connections)."""


def open_store(location: Path | str) -> Store:
    """The store at ``location`` (``serving.feedback_db``): a SQLite file path or ``sqlite:///path``,
    or a ``postgresql://`` URL. Raises :class:`StoreError` naming it if it cannot be opened."""
    scheme, rest = store_scheme(str(location))
    if scheme == "postgresql":
        from shoprec.serving.postgres_store import PostgresStore

        return PostgresStore(rest)
    from shoprec.serving.sqlite_store import SqliteStore

    return SqliteStore(Path(rest))


def now_iso(seconds: float | None = None) -> str:
    """Now, or Unix time ``seconds``, as ISO 8601 text in UTC (``UTC_TEXT``: text order is time order)."""
    moment = dt.datetime.now(dt.timezone.utc) if seconds is None else dt.datetime.fromtimestamp(seconds, dt.timezone.utc)
    return moment.strftime(UTC_TEXT)


IMPRESSION_SCHEMA = pa.schema([
    ("request_id", pa.string()), ("surface", pa.string()), ("user_id", pa.string()), ("session_id", pa.string()),
    ("model_version", pa.string()), ("variant", pa.string()), ("item_ids", pa.list_(pa.string())),
    ("query", pa.string()), ("served_at", pa.timestamp("us", tz="UTC")),
])


def write_durably(table: pa.Table, path: Path) -> None:
    """Write ``table`` to ``path`` via temp file + fsync + rename + directory fsync: a reader
    sees the whole batch or none of it, and a crash after the return loses nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
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


def impression_row(impression: Impression) -> tuple:
    """An impression as the store's text columns (IMPRESSION_SCHEMA's order): item ids JSON, the time ISO."""
    i = impression
    return (i.request_id, i.surface, i.user_id, i.session_id, i.model_version, i.variant, json.dumps(i.item_ids),
            i.query, now_iso(i.served_at))


def _events_table(batch: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(batch[EXPORT_COLUMNS], schema=pa.schema([(c, pa.string()) for c in EXPORT_COLUMNS]),
                                preserve_index=False)


def _impression_table(batch: pd.DataFrame) -> pa.Table:
    """Stored impressions (text) as the typed batch schema: item ids a list, the time a timestamp."""
    typed = batch.assign(item_ids=batch["item_ids"].map(json.loads),
                         served_at=pd.to_datetime(batch["served_at"], utc=True, format="ISO8601"))
    return pa.Table.from_pandas(typed[IMPRESSION_SCHEMA.names], schema=IMPRESSION_SCHEMA, preserve_index=False)


def _newest(path: Path) -> str:
    """The latest ``served_at`` of an impression batch, as the store's text, from the file's statistics."""
    meta = pq.ParquetFile(path).metadata
    column = IMPRESSION_SCHEMA.names.index("served_at")
    newest = max(meta.row_group(g).column(column).statistics.max for g in range(meta.num_row_groups))
    return now_iso(pd.Timestamp(newest).timestamp())

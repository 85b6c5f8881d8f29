"""Real-time ``/recommend``: the list computed at request time from the shopper's history as of now.

The history has three parts: the shopper's training events (the bundle's training split),
the events the service stored through ``/feedback`` since the training cut-off (read from the
store at each request: every worker and replica shares it, where a worker's own memory would
miss what another one took), and the request's ``recent_items`` (what the shopper is looking
at now: an anonymous session, the page they are on). It is scored by
:func:`shoprec.models.recommend.recommend_now`, the path the precomputed lists were computed
with, on the system :func:`shoprec.models.store.load_layout` loads from the bundle: given the
same history and time the two agree (the parity test), so the precomputed list is the fallback
the service answers with past its deadline or on an error.

The settings (``serving.realtime``: on/off, the deadline, the clock) are ``shoprec serve``'s
working params', handed over in ``$SHOPREC_REALTIME`` (:func:`settings`); a plain ``bentoml serve``
uses the bundle's.

The serving clock: every time feature is computed as of the request's time on the data's clock,
``wall time - offset``. ``serving.realtime.clock_offset`` gives the offset in days (0: live data), or
``auto``: the packaging time is the training cut-off, and time runs on from there, for data
whose clock is not today's (the sample's events are from 2024). An event stored with a
timestamp later than that clock's now is not yet part of the history.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from shoprec.config import Params, RealtimeParams, section_from_env
from shoprec.layout import BundleFiles
from shoprec.models.candidates import Events
from shoprec.serving.batching import LoopBatcher
from shoprec.serving.list_cache import ListCache
from shoprec.serving.store import RECENT_COLUMNS

if TYPE_CHECKING:  # TensorFlow: imported by the worker that loads a model, after it has set its thread pools
    from shoprec.models.multistage import MultiStage
    from shoprec.search.index.vectors import VectorIndex


def _utc(time) -> pd.Timestamp:
    """``time`` in UTC (a naive time is taken as UTC)."""
    stamp = pd.Timestamp(time)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


ENV = "SHOPREC_REALTIME"
NO_EVENTS = Events(np.zeros(0, np.int64), np.zeros(0, object), np.zeros(0, np.int64))


def settings(bundle_params: Params) -> RealtimeParams:
    """``serving.realtime`` as ``shoprec serve`` handed it over, else the bundle's."""
    return section_from_env(ENV, bundle_params.serving.realtime, "serving.realtime")


MAX_SCORING_BATCH = 8  # lists per pass: a pass holds the worker's event loop, so this bounds what others wait


class ScoringQueue:
    """A worker's real-time scoring, on its event loop: the lists waiting when a pass starts are computed in
    that pass (:class:`~shoprec.serving.batching.LoopBatcher`), with admission.

    A pass's fixed costs (array set-up, the ranker's layers) are shared by its lists, so under load a list
    costs a fraction of one computed alone; alone, a list is a pass of one on the loop's next turn. Not a
    thread: scoring is many short NumPy calls, and a thread would wait for the GIL after each one that
    releases it while the loop runs Python. A list queued behind ``n`` others is ready in about ``(n + 1)``
    times the recent cost of one (a pass's time over its lists); when that is past the deadline,
    :meth:`admits` says no and the request falls back at once instead of waiting its deadline out (with
    nothing queued it admits whatever the recent cost). A request whose deadline passes while queued is
    cancelled, and a pass skips it, so an overload never piles up work nobody waits for.
    """

    def __init__(self) -> None:
        self.batcher = LoopBatcher(self._pass, MAX_SCORING_BATCH)
        self.cost = 0.0  # seconds per list, a moving average over passes

    @property
    def queued(self) -> int:
        """Lists waiting for a pass (not cancelled)."""
        return len(self.batcher)

    def admits(self, deadline: float) -> bool:
        # nothing queued: always try (the deadline still bounds the wait); else one slow list (a core taken
        # by another process) would leave the cost above the deadline, and nothing admitted would lower it
        return self.queued == 0 or (self.queued + 1) * self.cost <= deadline

    async def __call__(self, compute_many: Callable[[list], list], item):
        """``compute_many([item])[0]``, computed in a pass with the other items waiting for the same function."""
        return await self.batcher((compute_many, item))

    def _pass(self, calls: list[tuple[Callable[[list], list], object]]) -> list:
        """One pass: each function once, on its items in order. When a function's batch fails, its items are
        computed one by one, so that only the item that fails fails (its error is its result)."""
        started = time.perf_counter()
        results: list = [None] * len(calls)
        for compute_many in dict.fromkeys(fn for fn, _ in calls):  # an experiment's two models: one call each
            at = [i for i, (fn, _) in enumerate(calls) if fn == compute_many]  # bound methods: equal, not identical
            try:
                done = compute_many([calls[i][1] for i in at])
            except Exception:
                done = [_alone(compute_many, calls[i][1]) for i in at]
            for i, result in zip(at, done, strict=True):
                results[i] = result
        self.cost = 0.8 * self.cost + 0.2 * (time.perf_counter() - started) / len(calls)
        return results


def _alone(compute_many: Callable[[list], list], item) -> object:
    try:
        return compute_many([item])[0]
    except Exception as exc:  # the caller raises it
        return exc


@dataclass(frozen=True)
class Asked:
    """A real-time request after :meth:`RealTime.look_up`: what scoring needs, and the list if it was cached."""

    user_id: str
    recent_items: tuple[str, ...]
    now: pd.Timestamp  # on the data's clock
    k: int
    exclude_purchased: bool
    diversity: float
    stored: Events  # the shopper's events since the cut-off, from the store
    key: tuple | None  # in the list cache; None: not cached (recent_items, or the cache is off)
    cached: tuple[bool, list[dict]] | None  # (known, items) from the cache


class BadRecentItems(ValueError):
    """A request's ``recent_items`` cannot be used; the message says why, with an example."""


@dataclass
class RealTime:
    system: MultiStage
    cutoff: pd.Timestamp  # the training cut-off: events at or after it come from the store
    offset: pd.Timedelta  # the data's clock is the wall clock minus this
    history: dict[str, Events]  # user -> their training events
    cache: ListCache

    @classmethod
    def load(cls, bundle: BundleFiles, params: Params, clock_offset: str | float, packaged_at: dt.datetime,
             cache_seconds: float = 0.0, index: VectorIndex | None = None) -> "RealTime":
        """The bundle's system and training history; ``packaged_at`` places the ``auto`` clock; a list is
        reused for at most ``cache_seconds`` of the data's clock (:class:`~shoprec.serving.list_cache.ListCache`,
        shared by the server's workers; 0: never). ``index``: the service's index over the bundle's two-tower
        item vectors, which then finds the two-tower candidates (an HNSW graph at catalog scale) instead of an
        exact scan of its own."""
        from shoprec.models.store import cutoffs, load_layout
        from shoprec.serving.bundle import realtime_paths

        for path in realtime_paths(bundle.layout):
            if not path.is_file():
                raise FileNotFoundError(f"bundle lacks {bundle.name(path)}, which real-time /recommend scores with; "
                                        "rebuild it with `shoprec package`, or set serving.realtime.enabled: false")
        cutoff = _utc(cutoffs(bundle.layout.split)[1])
        offset = _utc(packaged_at) - cutoff if clock_offset == "auto" else pd.Timedelta(days=clock_offset)
        train = pd.read_parquet(bundle.layout.split.train, columns=["user_id", "item_id", "event_type", "timestamp"])
        system = load_layout(params, bundle.layout)
        if index is not None:
            if len(index) != system.catalog.n_items:
                raise ValueError(f"the item index holds {len(index):,} vectors for {system.catalog.n_items:,} items")
            system.state.items.index = index
        events = Events.of_frame(train, system.catalog)
        history = {str(user): Events(events.item[rows], events.event_type[rows], events.ns[rows])
                   for user, rows in train.groupby("user_id", sort=False).indices.items()}
        model = hashlib.sha1(bundle.manifest.read_bytes()).hexdigest()  # the bundle's files, by their sha256s
        cache = ListCache.for_server(f"{model} {_utc(packaged_at).isoformat()} {offset}",
                                     pd.Timedelta(seconds=cache_seconds))
        return cls(system, cutoff, offset, history, cache)

    def close(self) -> None:
        self.cache.close()

    def now(self, wall: float) -> pd.Timestamp:
        """The data's time at wall-clock ``wall`` (seconds since the epoch)."""
        return pd.Timestamp(wall, unit="s", tz="UTC") - self.offset

    def warm_up(self, user_id: str) -> None:
        """Score ``user_id``'s training history once, before the first request: the look-ups scoring builds
        on first use (the catalog's row index) are built then, not in a shopper's request."""
        from shoprec.models.recommend import recommend_now

        recommend_now(self.system, self.history.get(user_id, NO_EVENTS), self.cutoff, user_id, k=10)

    def check(self, recent_items: Sequence[str]) -> None:
        """Raises :class:`BadRecentItems` unless every one of ``recent_items`` is a catalog item id (their
        count is bounded by the request's schema: ``serving.realtime.max_recent_items``)."""
        row_of = self.system.catalog.row_of
        unknown = [i for i in recent_items if i not in row_of]
        if unknown:
            raise BadRecentItems(f"recent_items: unknown item_id {unknown[0]!r}: not in the served catalog "
                                 f"(e.g. {self.system.catalog.item_ids[0]!r})")

    def look_up(self, store, user_id: str, recent_items: Sequence[str], wall: float, k: int,
                exclude_purchased: bool, diversity: float) -> Asked:
        """The request as of wall-clock ``wall``: the shopper's history (``store``'s events since the cut-off
        read now) and their list if the cache holds it. Tens of microseconds: the service runs it before
        the scoring queue, so a cached list is answered without queueing for a pass."""
        now = self.now(wall)
        stored_ids, stored = self._stored(store, user_id, now)
        key = None if recent_items or self.cache.max_age <= pd.Timedelta(0) else (
            self._cache_user(user_id, stored_ids), k, exclude_purchased, diversity, stored_ids)
        cached = None if key is None else self.cache.get(key, now)
        return Asked(user_id, tuple(recent_items), now, k, exclude_purchased, diversity, stored, key,
                     None if cached is None else (cached[0], cached[1]))

    def compute_many(self, asks: list[Asked]) -> list[tuple[bool, list[dict]]]:
        """For each request, whether the shopper has a history, and their top ``k``:
        :func:`~shoprec.models.recommend.recommend_many` on their histories as of ``ask.now``, kept in the cache."""
        from shoprec.models.recommend import Request, recommend_many

        requests = [Request(Events.concat([self.history.get(a.user_id, NO_EVENTS), a.stored]), a.now, a.user_id,
                            a.recent_items, a.k, a.exclude_purchased, a.diversity) for a in asks]
        out = []
        for asked, request, items in zip(asks, requests, recommend_many(self.system, requests), strict=True):
            known = len(request.events) > 0
            if asked.key is not None:
                self.cache.put(asked.key, asked.now, (known, items))
            out.append((known, items))
        return out

    def _cache_user(self, user_id: str, stored_ids: tuple) -> str:
        """The user part of a list's cache key: ``""`` for every visitor with nothing behind them (no training
        history, no stored event, no user embedding), whose lists are the same list."""
        known = user_id in self.history or stored_ids or user_id in self.system.state.tower.user_token
        return user_id if known else ""

    def _stored(self, store, user_id: str, now: pd.Timestamp) -> tuple[tuple, Events]:
        """The ids and events of ``user_id``'s stored events since the cut-off that happened before ``now`` (a
        timestamp after the clock's now is not yet part of the history). Plain rows, no frame: this runs at
        every request."""
        rows = store.recent_rows(user_id, self.cutoff.to_pydatetime())
        if not rows:  # most shoppers
            return (), NO_EVENTS
        ns = np.array([_utc_text_ns(r[TS]) for r in rows], np.int64)
        rows = [r for r, arrived in zip(rows, ns < now.value) if arrived]
        row_of = self.system.catalog.row_of
        return tuple(r[EVENT_ID] for r in rows), Events(
            np.array([row_of.get(r[ITEM], -1) for r in rows], np.int64),
            np.array([r[TYPE] for r in rows], object), ns[ns < now.value])


EVENT_ID, ITEM, TYPE, TS = (RECENT_COLUMNS.index(c) for c in ("event_id", "item_id", "event_type", "ts"))
EPOCH, MICROSECOND = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc), dt.timedelta(microseconds=1)


def _utc_text_ns(text: str) -> int:
    """Nanoseconds since the epoch of a stored ``ts`` (``UTC_TEXT``: microseconds, explicit offset)."""
    return (dt.datetime.fromisoformat(text) - EPOCH) // MICROSECOND * 1000

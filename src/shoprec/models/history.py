"""A shopper's recent events, as fixed-width matrices the query tower reads.

Items are written as *tokens*: catalog index + 1, so 0 is free for padding. A row holds
the user's last ``length`` history events, most recent last, left-padded with 0, in three
aligned matrices (:func:`sequences`): the item tokens (all the pooled tower reads), the
event types and each event's age at the query time (what the sequence tower adds).

For training, each example's history holds only events strictly *before* the example's
timestamp (so items bought in the same basket are not leaked into their own context), and
ages are counted back from the example's time; for scoring, the history is everything
before ``now`` and ages are counted back from ``now``: so a feature means the same in both.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

DAY_NS = 86400e9


def nanoseconds(times) -> np.ndarray:
    """UTC nanoseconds of timestamps (tz-aware or naive UTC), whatever their pandas resolution."""
    return pd.DatetimeIndex(times).as_unit("ns").asi8


def utc_ns(time) -> int:
    """UTC nanoseconds of one timestamp (tz-aware or naive UTC): :func:`nanoseconds` without an index per call."""
    return pd.Timestamp(time).value


def window(tokens: np.ndarray, ends: np.ndarray, starts: np.ndarray, length: int, dtype=np.int32) -> np.ndarray:
    """Row r = tokens[max(starts[r], ends[r] - length) : ends[r]], left-padded with 0."""
    idx = ends[:, None] - length + np.arange(length)[None, :]
    valid = idx >= starts[:, None]
    out = np.where(valid, tokens[np.clip(idx, 0, max(len(tokens) - 1, 0))], 0) if len(tokens) else np.zeros(
        (len(ends), length), dtype=dtype
    )
    return out.astype(dtype)


def type_tokens(event_types: np.ndarray, vocabulary: Sequence[str]) -> np.ndarray:
    """Event type -> token: its position in ``vocabulary`` + 1 (0: padding, and any type not in it)."""
    event_types = np.asarray(event_types, dtype=object)
    tokens = np.zeros(len(event_types), np.int32)
    for token, name in enumerate(vocabulary, start=1):  # a few types: a comparison each beats a hash look-up
        tokens[event_types == name] = token
    return tokens


def sequences(tokens: np.ndarray, types: np.ndarray, times_ns: np.ndarray, ends: np.ndarray, starts: np.ndarray,
              now_ns: np.ndarray, length: int) -> dict[str, np.ndarray]:
    """The query tower's history inputs: row r is events ``starts[r]:ends[r]`` (their last ``length``).

    ``history``: item tokens; ``history_type``: :func:`type_tokens`; ``history_age``:
    ``log1p(days from the event to now[r])`` (0 under padding, which the towers mask).
    """
    history = window(tokens, ends, starts, length)
    days = (np.asarray(now_ns, np.int64)[:, None] - window(times_ns, ends, starts, length, np.int64)) / DAY_NS
    return {"history": history, "history_type": window(types, ends, starts, length),
            "history_age": np.where(history > 0, np.log1p(np.maximum(days, 0.0)), 0.0).astype(np.float32)}


def example_bounds(users: np.ndarray, times: np.ndarray, history_users: np.ndarray,
                   history_times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(ends, starts)`` of each example's history for :func:`sequences`.

    ``history_*`` are the history events sorted by (user, time); an example (user, t)
    gets that user's history events with time < t.
    """
    codes = pd.Index(np.unique(np.concatenate([history_users, users])))
    ranks = pd.Index(np.unique(np.concatenate([history_times, times])))
    width = len(ranks) + 1
    key_hist = codes.get_indexer(history_users).astype(np.int64) * width + ranks.get_indexer(history_times)
    key_ex = codes.get_indexer(users).astype(np.int64) * width + ranks.get_indexer(times)
    if np.any(np.diff(key_hist) < 0):
        raise ValueError("history events must be sorted by (user, time)")
    ends = np.searchsorted(key_hist, key_ex, side="left")  # first history event at or after t
    starts = np.searchsorted(key_hist, codes.get_indexer(users).astype(np.int64) * width, side="left")
    return ends, starts


def latest_histories(events: pd.DataFrame, users: np.ndarray, item_index: dict[str, int], vocabulary: Sequence[str],
                     length: int, now: pd.Timestamp) -> dict[str, np.ndarray]:
    """Each user's last ``length`` events in ``events`` (already cut off in time) as of ``now``: :func:`sequences`."""
    ev = events[events["item_id"].isin(item_index.keys())].sort_values(["user_id", "timestamp"], kind="stable")
    tokens = ev["item_id"].map(item_index).to_numpy(dtype=np.int64) + 1
    ev_users = ev["user_id"].to_numpy()
    bounds = pd.Series(np.arange(len(ev))).groupby(ev_users).agg(["min", "max"])
    b = bounds.reindex(users)
    has = b["min"].notna().to_numpy()
    starts = np.where(has, b["min"].fillna(0), 0).astype(np.int64)
    ends = np.where(has, b["max"].fillna(-1) + 1, 0).astype(np.int64)
    now_ns = np.full(len(users), nanoseconds([now])[0])
    return sequences(tokens, type_tokens(ev["event_type"].to_numpy(), vocabulary), nanoseconds(ev["timestamp"]), ends,
                     starts, now_ns, length)

"""A shopper's recent items, as fixed-width integer matrices the towers can pool.

Items are written as *tokens*: catalog index + 1, so 0 is free for padding. A row holds
the user's last ``length`` history events, most recent last, left-padded with 0.

For training, each example's history holds only events strictly *before* the example's
timestamp (so items bought in the same basket are not leaked into their own context);
for scoring, the history is everything before the cut-off.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def window(tokens: np.ndarray, ends: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """Row r = tokens[max(starts[r], ends[r] - length) : ends[r]], left-padded with 0."""
    idx = ends[:, None] - length + np.arange(length)[None, :]
    valid = idx >= starts[:, None]
    out = np.where(valid, tokens[np.clip(idx, 0, max(len(tokens) - 1, 0))], 0) if len(tokens) else np.zeros(
        (len(ends), length), dtype=np.int32
    )
    return out.astype(np.int32)


def example_histories(
    users: np.ndarray, times: np.ndarray, history_users: np.ndarray, history_times: np.ndarray,
    history_tokens: np.ndarray, length: int,
) -> np.ndarray:
    """History before each example.

    ``history_*`` are the history events sorted by (user, time); an example (user, t)
    gets that user's last ``length`` history tokens with time < t.
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
    return window(history_tokens, ends, starts, length)


def latest_histories(events: pd.DataFrame, users: np.ndarray, item_index: dict[str, int], length: int) -> np.ndarray:
    """Each user's last ``length`` item tokens in ``events`` (already cut off in time)."""
    ev = events[events["item_id"].isin(item_index.keys())].sort_values(["user_id", "timestamp"], kind="stable")
    tokens = ev["item_id"].map(item_index).to_numpy(dtype=np.int64) + 1
    ev_users = ev["user_id"].to_numpy()
    bounds = pd.Series(np.arange(len(ev))).groupby(ev_users).agg(["min", "max"])
    b = bounds.reindex(users)
    has = b["min"].notna().to_numpy()
    starts = np.where(has, b["min"].fillna(0), 0).astype(np.int64)
    ends = np.where(has, b["max"].fillna(-1) + 1, 0).astype(np.int64)
    return window(tokens, ends, starts, length)

"""Time-replay evaluation: do lists computed at request time beat lists computed at training time?

Walk the test window in time order. Before each purchase session (an invoice, or a
storefront session with a purchase) of a shopper, reveal what the shop knew at that
moment: the training events plus the shopper's test-window events from *before the
session started* (never the session's own views, clicks and cart of the bought item,
which would make the task trivial; for an invoice, strictly before its time), and ask
for a top-``k`` list:

* ``static``: the list as served today, computed at the training cut-off from the
  training history (a shopper unseen in training gets the new-visitor list);
* ``real_time``: the same scoring path (:mod:`shoprec.models.recommend`) run on the
  revealed history as of the session's start.

Truth is what the session bought. Per request: HitRate@k (any bought item in the top
``k``) and reciprocal rank (1 / position of the first bought item, 0 outside the top ``k``);
the table averages them over requests, overall and by kind of request, with a paired
bootstrap interval of the real-time minus static difference.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from shoprec.evaluation.significance import paired_bootstrap
from shoprec.models.candidates import Events
from shoprec.models.multistage import MultiStage
from shoprec.models.recommend import history_shoppers, ranked

COLUMNS = ["item_id", "event_type", "timestamp"]


def purchase_requests(test: pd.DataFrame) -> pd.DataFrame:
    """One row per purchase session of ``test``, in time order: ``user_id``, ``session``, ``start``, ``bought``
    (frozenset of item ids), ``revealed`` (the shopper's test events before the start). An event without a
    ``session_id`` is its own session."""
    test = test.assign(session=test["session_id"].astype(object).where(
        test["session_id"].notna(), test["user_id"].astype(str) + "@" + test["timestamp"].astype(str)))
    start = test.groupby(["user_id", "session"])["timestamp"].min().rename("start")
    buys = test[test["event_type"] == "purchase"]
    bought = buys.groupby(["user_id", "session"])["item_id"].agg(frozenset).rename("bought")
    frame = pd.concat([start, bought], axis=1, join="inner").reset_index()
    frame = frame.sort_values(["start", "user_id", "session"], kind="stable").reset_index(drop=True)
    before = test[["user_id", "timestamp"]].merge(frame[["user_id", "start"]].reset_index(), on="user_id")
    revealed = before[before["timestamp"] < before["start"]].groupby("index").size()
    frame["revealed"] = revealed.reindex(frame.index).fillna(0).astype(int)
    return frame


def _reciprocal_ranks(lists: list[np.ndarray], truth: list[frozenset], k: int) -> tuple[np.ndarray, np.ndarray]:
    """(hit@k, reciprocal rank within the top k) per request."""
    rr = np.zeros(len(lists))
    for r, (top, bought) in enumerate(zip(lists, truth)):
        hits = [p for p, item in enumerate(top[:k]) if item in bought]
        rr[r] = 1.0 / (hits[0] + 1) if hits else 0.0
    return (rr > 0).astype(float), rr


def static_lists(system: MultiStage, users: np.ndarray, k: int, batch: int = 256) -> dict[str, np.ndarray]:
    """The top ``k`` item ids of each user as of the training cut-off (the precomputed lists)."""
    distinct = np.asarray(sorted(set(users)), dtype=object)
    rows = system.state.inter.rows(distinct)
    out = {}
    for s in range(0, len(distinct), batch):
        for user, (items, _) in zip(distinct[s:s + batch], ranked(system, system.state.at(rows[s:s + batch]))):
            out[user] = system.catalog.item_ids[items[:k]]
    return out


def real_time_lists(system: MultiStage, req: pd.DataFrame, train: pd.DataFrame, test: pd.DataFrame, k: int,
                    batch: int = 128) -> list[np.ndarray]:
    """Top ``k`` item ids per request, from the training events and the test events before its start."""
    events = pd.concat([train[["user_id", *COLUMNS]], test[["user_id", *COLUMNS]]], ignore_index=True)
    by_user = {u: frame for u, frame in events.groupby("user_id", sort=False)}
    empty = events.iloc[:0]
    out: list[np.ndarray] = []
    for s in range(0, len(req), batch):
        chunk = req.iloc[s:s + batch]
        parts = [by_user.get(u, empty) for u in chunk["user_id"]]
        parts = [p[p["timestamp"] < t] for p, t in zip(parts, chunk["start"])]
        keys = np.repeat(np.arange(len(chunk)), [len(p) for p in parts])
        shoppers = history_shoppers(system, Events.of_frame(pd.concat(parts, ignore_index=True), system.catalog), keys, list(chunk["user_id"]),
                                    list(chunk["start"]))
        out.extend(system.catalog.item_ids[items[:k]] for items, _ in ranked(system, shoppers))
    return out


def replay(system: MultiStage, train: pd.DataFrame, test: pd.DataFrame, k: int = 20, resamples: int = 1000,
           seed: int = 42) -> dict:
    """The replay table: per slice, requests, HitRate@k and MRR@k of both systems, and the real-time gain."""
    req = purchase_requests(test)
    static = static_lists(system, req["user_id"].to_numpy(), k)
    truth = list(req["bought"])
    hit_s, rr_s = _reciprocal_ranks([static[u] for u in req["user_id"]], truth, k)
    hit_r, rr_r = _reciprocal_ranks(real_time_lists(system, req, train, test, k), truth, k)
    known = req["user_id"].isin(system.state.inter.user_index.keys()).to_numpy()
    slices = {
        "all": np.ones(len(req), bool),
        "known shopper": known,
        "new shopper": ~known,
        "known, test events revealed": known & (req["revealed"] > 0).to_numpy(),
        "known, nothing new revealed": known & (req["revealed"] == 0).to_numpy(),
    }
    table = {}
    for name, mask in slices.items():
        if not mask.any():
            continue
        row = {"requests": int(mask.sum()),
               f"static_hit@{k}": round(float(hit_s[mask].mean()), 4),
               f"real_time_hit@{k}": round(float(hit_r[mask].mean()), 4),
               f"static_mrr@{k}": round(float(rr_s[mask].mean()), 4),
               f"real_time_mrr@{k}": round(float(rr_r[mask].mean()), 4)}
        row["hit_ratio"] = round(row[f"real_time_hit@{k}"] / row[f"static_hit@{k}"], 3) if row[f"static_hit@{k}"] \
            else None
        row["hit_difference"] = paired_bootstrap(hit_r[mask], hit_s[mask], resamples, 0.95, seed)
        table[name] = row
    return table

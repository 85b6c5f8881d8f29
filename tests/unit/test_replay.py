"""The replay's requests: what is revealed before a purchase is only what happened before its session."""

from __future__ import annotations

import pandas as pd

from shoprec.evaluation.replay import purchase_requests


START = pd.Timestamp("2024-04-16", tz="UTC")


def _event(user, item, kind, minute, session):
    return {"user_id": user, "item_id": item, "event_type": kind, "session_id": session,
            "timestamp": START + pd.Timedelta(minutes=minute)}


def test_a_purchase_sees_earlier_sessions_but_not_its_own():
    test = pd.DataFrame([
        _event("a", "i1", "view", 0, "s1"), _event("a", "i1", "purchase", 5, "s1"),
        _event("a", "i2", "view", 60, "s2"), _event("a", "i2", "add_to_cart", 61, "s2"),
        _event("a", "i2", "purchase", 62, "s2"), _event("a", "i3", "purchase", 62, "s2"),
        _event("b", "i9", "view", 30, "s3"),  # no purchase: not a request
        _event("b", "i4", "purchase", 90, None),  # no session: its own
    ])
    req = purchase_requests(test)
    assert list(req["user_id"]) == ["a", "a", "b"]  # in time order of the sessions' starts
    assert list(req["bought"]) == [frozenset({"i1"}), frozenset({"i2", "i3"}), frozenset({"i4"})]
    assert list((req["start"] - START) / pd.Timedelta(minutes=1)) == [0, 60, 90]  # a session starts at its first event
    assert list(req["revealed"]) == [0, 2, 1]  # s2 sees s1 only; b's buy sees b's earlier view

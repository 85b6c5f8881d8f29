"""Crediting shoppers' clicks, carts and purchases to the answers (impressions) that showed the items.

The rule, in order:

1. an event naming a ``request_id`` whose impression showed the event's item is credited
   to that impression (the shopper came from that answer; no time check, since a client's
   clock and the server's may differ);
2. otherwise the event goes to the shopper's most recent impression that showed the item
   and was served at most ``window`` before the event (not after it). The shopper is the
   event's ``user_id`` matched to impressions' ``user_id``; an impression without a user
   (an anonymous visitor) is matched by ``session_id`` instead;
3. anything else is unattributed (organic) and counts for no variant.

Each event is credited once; its position is the item's place in the credited answer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CREDITED = ("click", "add_to_cart", "purchase")  # views are not outcomes
IMPRESSION_COLUMNS = ("request_id", "surface", "user_id", "session_id", "variant", "item_ids", "served_at")
EVENT_COLUMNS = ("user_id", "item_id", "event_type", "timestamp", "session_id", "quantity", "request_id", "position")


class ReportInputError(ValueError):
    """The logs cannot be reported on; the message names the table, the column and what is expected."""


def require(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ReportInputError(f"{what}: missing column(s) {', '.join(missing)}; expected {', '.join(columns)} "
                               f"(as shoprec export-impressions / export-feedback write them)")


def unit_of(user_id: pd.Series, session_id: pd.Series) -> pd.Series:
    """The randomisation unit: the user id, or ``session:<id>`` for an anonymous visitor."""
    user = user_id.fillna("").astype(str)
    return user.where(user != "", "session:" + session_id.fillna("").astype(str))


def times(values: pd.Series, what: str) -> pd.Series:
    try:
        return pd.to_datetime(values, utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise ReportInputError(f"{what}: not ISO 8601 times ({exc}); e.g. 2024-05-01T12:30:00+00:00") from None


def shown(impressions: pd.DataFrame) -> pd.DataFrame:
    """One row per (impression, shown item): request_id, unit, variant, served_at, item_id, shown_position."""
    lengths = impressions["item_ids"].map(len).to_numpy()
    rows = np.repeat(np.arange(len(impressions)), lengths)
    flat = impressions.iloc[rows]
    return pd.DataFrame({
        "request_id": flat["request_id"].to_numpy(), "unit": flat["unit"].to_numpy(),
        "session_id": flat["session_id"].to_numpy(), "user_id": flat["user_id"].to_numpy(),
        "variant": flat["variant"].to_numpy(), "served_at": flat["served_at"].to_numpy(),
        "item_id": np.concatenate([np.asarray(v, dtype=object) for v in impressions["item_ids"]])
        if len(rows) else np.array([], dtype=object),
        "shown_position": np.concatenate([np.arange(n) for n in lengths]) if len(rows) else np.array([], np.int64),
    })


def attribute(impressions: pd.DataFrame, events: pd.DataFrame, window: pd.Timedelta) -> pd.DataFrame:
    """The credited events (click, add_to_cart, purchase): their columns plus ``credited_request``,
    ``variant``, ``unit`` and ``shown_position``; unattributed events are left out.

    ``impressions`` needs ``unit`` (see :func:`unit_of`) and ``served_at`` as times;
    ``events`` needs ``timestamp`` as times.
    """
    events = events[events["event_type"].isin(CREDITED)].reset_index(drop=True)
    events = events.assign(event_row=np.arange(len(events)))
    rows = shown(impressions)
    out = []
    named = events.merge(rows.drop(columns=["user_id", "session_id"]), on=["request_id", "item_id"], how="inner")
    named = named.drop_duplicates("event_row")  # an answer listing the item twice: its first place
    out.append(named)
    rest = events[~events["event_row"].isin(named["event_row"])]
    for key, rows_of in (("user_id", rows[rows["user_id"] != ""]), ("session_id", rows[rows["user_id"] == ""])):
        if rest.empty or rows_of.empty:
            continue
        left = rest.assign(_key=rest[key].astype(str)).sort_values("timestamp")
        right = rows_of.assign(_key=rows_of[key].astype(str)).rename(columns={"request_id": "_credited"})
        right = right.drop(columns=["user_id", "session_id"]).sort_values("served_at")
        matched = pd.merge_asof(left, right, left_on="timestamp", right_on="served_at", by=["_key", "item_id"],
                                direction="backward", tolerance=window, allow_exact_matches=True)
        matched = matched[matched["_credited"].notna()].drop(columns=["_key", "request_id"])
        out.append(matched.rename(columns={"_credited": "request_id"}))
        rest = rest[~rest["event_row"].isin(matched["event_row"])]
    credited = pd.concat(out, ignore_index=True)
    return credited.rename(columns={"request_id": "credited_request"}).sort_values("event_row", ignore_index=True)

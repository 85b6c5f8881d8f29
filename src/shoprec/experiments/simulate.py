"""The shopper simulator: the sample generator's shoppers, shown what a system serves, do what their tastes say.

One model of shoppers: their tastes are the sample storefront's
(:func:`shoprec.data.sources.sample.generator.shoppers`, the same users the pipeline trained
on when ``ingest.source`` is ``sample``), and a visit is
:func:`shoprec.data.sources.sample.behaviour.react`, a pure function of a random generator
and the lists shown. So the same code runs

* over HTTP (:func:`over_http`): each visit asks a running service for ``/recommend``, or,
  as often as the generator's shoppers search, ``/search`` with the query the generator's
  shopper types for the item they want; the shopper reacts to the answer, and the events
  go back to ``/feedback`` with the answer's ``request_id`` and the item's position
  (browsed-to items without them);
* offline (:func:`offline`): the lists are given (per arm and user, e.g. the evaluate
  stage's ``recommendations.parquet``), which is what many-seed studies need; offline
  visits are recommendation visits only (there are no search result lists to give).

Clock. Visits run on a simulated clock that starts where the sample's data ends
(``start_date + days``, after the last training event) and spans ``days`` days, with the
generator's weekly/hourly profile; a shopper visits ``Poisson(sessions_u x days /
sample_days)`` times (the generator's activity). Feedback events carry simulated times;
the service stamps impressions with its own clock, so over HTTP the report credits
events by their ``request_id`` (attribution rule 1) rather than by time.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from pathlib import Path
from dataclasses import dataclass

import numpy as np
import pandas as pd

from shoprec.config import SampleParams
from shoprec.data.contracts import EVENT_TYPES
from shoprec.data.sources.sample import behaviour
from shoprec.data.sources.sample.generator import shoppers

LIST_LENGTH = 20  # items a visit is shown (the storefront's page)
FEEDBACK_BATCH = 500  # events per POST /feedback (under serving.max_feedback_events' default)


@dataclass(frozen=True)
class Visits:
    """Who visits when: user codes and start times (us since the sample's start), in time order."""

    user: np.ndarray
    t0: np.ndarray


def world(sample: SampleParams) -> behaviour.Shop:
    return shoppers(sample)[1]


def clock_start(sample: SampleParams) -> pd.Timestamp:
    """The simulated clock's zero: the end of the sample's window (after its last event)."""
    return pd.Timestamp(sample.start_date, tz="UTC") + pd.Timedelta(days=sample.days)


def schedule(rng: np.random.Generator, shop: behaviour.Shop, users: np.ndarray, days: int, sample: SampleParams) -> Visits:
    """Visits of ``users`` (codes) over ``days`` days after the sample's window, in time order."""
    rate = shop.users.sessions[users] * days / sample.days
    user = np.repeat(users, rng.poisson(rate))
    t0 = behaviour.session_starts(rng, len(user), days, clock_start(sample)) + sample.days * 86400 * behaviour.US
    order = np.argsort(t0, kind="stable")
    return Visits(user[order], t0[order])


def pick_shoppers(rng: np.random.Generator, n_users: int, n: int) -> np.ndarray:
    if not 1 <= n <= n_users:
        raise ValueError(f"--shoppers {n}: must be 1..{n_users} (ingest.sample.n_users, the shoppers there are)")
    return np.sort(rng.choice(n_users, size=n, replace=False))


def _iso(ts_us: np.ndarray, sample: SampleParams) -> list[str]:
    start = pd.Timestamp(sample.start_date, tz="UTC")
    return list((start + pd.to_timedelta(ts_us, unit="us")).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00"))


def event_rows(events: behaviour.Events, position: np.ndarray, request_ids: np.ndarray, sessions: np.ndarray,
               sample: SampleParams) -> pd.DataFrame:
    """Feedback events as the exported batches hold them (text columns), ``session`` = visit index."""
    order = np.lexsort((events.kind, events.ts_us))
    ev, pos = events.take(order), position[order]
    return pd.DataFrame({
        "user_id": [f"U{u:05d}" for u in ev.user], "item_id": [f"I{i:06d}" for i in ev.item],
        "event_type": np.asarray(EVENT_TYPES, dtype=object)[ev.kind], "timestamp": _iso(ev.ts_us, sample),
        "session_id": sessions[ev.session], "query": "", "quantity": ev.quantity.astype(str),
        "request_id": np.where(pos >= 0, request_ids[ev.session], ""),
        "position": np.where(pos >= 0, pos.astype(str), ""),
    })


def offline(shop: behaviour.Shop, lists: dict[str, dict[str, list[str]]], share: float, n_shoppers: int,
            seed: int, days: int, sample: SampleParams) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Impressions and feedback events of an experiment run without a server.

    ``lists[variant][user_id]`` is what that arm shows the user (its first LIST_LENGTH items);
    ``variant`` ``champion`` gets ``1 - share`` of the shoppers, the other one ``share``
    (a seeded coin per shopper). Shoppers are drawn among the users every arm has a list for.
    """
    rng = np.random.default_rng(seed)
    names = sorted(lists, key=lambda v: v != "champion")
    common = sorted(set.intersection(*(set(v) for v in lists.values())))
    codes = np.array([int(u[1:]) for u in common])
    users = np.sort(codes[pick_shoppers(rng, len(codes), n_shoppers)])
    arm = {u: names[int(rng.random() < share)] if len(names) > 1 else names[0] for u in users}
    visits = schedule(rng, shop, users, days, sample)
    shown = np.full((len(visits.user), LIST_LENGTH), -1, np.int64)
    variants = np.array([arm[u] for u in visits.user], dtype=object)
    for row, (u, variant) in enumerate(zip(visits.user, variants)):
        items = lists[variant][f"U{u:05d}"][:LIST_LENGTH]
        shown[row, :len(items)] = [int(i[1:]) for i in items]
    wants = behaviour.intents(rng, shop, visits.user, search_share=0.0)  # offline lists are recommendations
    events, position = behaviour.react(rng, shop, wants, shown, visits.t0)
    request_ids = np.array([f"s{seed}-{v}" for v in range(len(visits.user))], dtype=object)
    impressions = pd.DataFrame({
        "request_id": request_ids, "surface": "recommend", "user_id": [f"U{u:05d}" for u in visits.user],
        "session_id": request_ids, "model_version": variants, "variant": variants,
        "item_ids": [[f"I{i:06d}" for i in row if i >= 0] for row in shown], "query": "",
        "served_at": pd.to_datetime(_iso(visits.t0, sample), utc=True, format="ISO8601"),
    })
    return impressions, event_rows(events, position, request_ids, request_ids, sample)


def _post(url: str, body: dict, timeout: float = 30.0) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return json.load(answer)


def over_http(url: str, shop: behaviour.Shop, n_shoppers: int, seed: int, days: int, sample: SampleParams) -> dict:
    """Visits against the service at ``url``: ask, react, send feedback; a summary of what happened."""
    rng = np.random.default_rng(seed)
    users = pick_shoppers(rng, len(shop.users.sessions), n_shoppers)
    visits = schedule(rng, shop, users, days, sample)
    wants = behaviour.intents(rng, shop, visits.user)
    url = url.rstrip("/")
    rows, variants, surfaces = [], {}, {"recommend": 0, "search": 0}
    for v, (u, t0) in enumerate(zip(visits.user, visits.t0)):
        session, surface = f"sim{seed}-{v}", "search" if wants.search[v] else "recommend"
        ask = {"user_id": f"U{u:05d}", "k": LIST_LENGTH, "session_id": session}
        answer = _post(f"{url}/{surface}", ask | ({"query": wants.query(v)} if wants.search[v] else {}))
        variants[answer["variant"]] = variants.get(answer["variant"], 0) + 1
        surfaces[surface] += 1
        codes = [int(item["item_id"][1:]) for item in answer["items"]]
        shown = np.full((1, LIST_LENGTH), -1, np.int64)
        shown[0, :len(codes)] = codes
        events, position = behaviour.react(rng, shop, wants.take(np.array([v])), shown, np.array([t0]))
        rows.append(event_rows(events, position, np.array([answer["request_id"]], dtype=object),
                               np.array([session], dtype=object), sample))
    events = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    receipts = {"accepted": 0, "duplicates": 0, "unattributed": 0, "rejected": 0}
    for start in range(0, len(events), FEEDBACK_BATCH):
        batch = events.iloc[start:start + FEEDBACK_BATCH]
        payload = [{k: v for k, v in row.items() if v != ""} | {"event_id": f"sim{seed}-{start + i}-{uuid.uuid4().hex[:8]}"}
                   for i, row in enumerate(batch.to_dict("records"))]
        receipt = _post(f"{url}/feedback", {"events": payload})
        for key in receipts:
            receipts[key] += len(receipt[key]) if key == "rejected" else receipt[key]
    return summary(events, len(visits.user), n_shoppers, seed, days, sample) | {
        "surfaces": surfaces, "variants": variants, "feedback": receipts}


def summary(events: pd.DataFrame, n_visits: int, n_shoppers: int, seed: int, days: int, sample: SampleParams) -> dict:
    """Counts of a simulated run: visits, events by type, list-led clicks and purchases."""
    start = clock_start(sample)
    led = events[events["request_id"] != ""] if len(events) else events
    by_type = events["event_type"].value_counts().to_dict() if len(events) else {}
    return {
        "seed": seed, "shoppers": n_shoppers, "visits": n_visits, "days": days,
        "clock": [start.isoformat(), (start + pd.Timedelta(days=days)).isoformat()],
        "events": {t: int(by_type.get(t, 0)) for t in EVENT_TYPES},
        "from_lists": {t: int((led["event_type"] == t).sum()) if len(led) else 0 for t in EVENT_TYPES},
        "ctr": float((led["event_type"] == "click").sum() / n_visits) if n_visits else None,
    }


def evaluated_lists(recommendations: Path, systems: list[str]) -> dict[str, dict[str, list[str]]]:
    """The evaluate stage's lists (``recommendations.parquet``, view ``all``): system -> user -> item ids by rank."""
    frame = pd.read_parquet(recommendations, filters=[("view", "==", "all"), ("rank", "<=", LIST_LENGTH)])
    missing = sorted(set(systems) - set(frame["system"].unique()))
    if missing:
        raise ValueError(f"{recommendations}: no lists of {missing}; it has {sorted(frame['system'].unique())}")
    frame = frame[frame["system"].isin(systems)].sort_values(["system", "user_id", "rank"])
    return {s: g.groupby("user_id")["item_id"].agg(list).to_dict() for s, g in frame.groupby("system")}

"""One shopper's final list with a reason per item: what the CLI and the service return.

Every list goes through one path, :func:`answers`: the shopper's candidates ranked by the
ranker (:meth:`MultiStage.rank_shoppers`), purchases left out when asked, MMR, reasons.
:func:`recommend` asks it for a training user as of the training cut-off (the lists the
bundle precomputes); :func:`recommend_now` for a shopper's history as of a request's time,
with what they did a second ago (real-time); given the same history and time the two
agree to the last digit, which a test checks.

Explanations come from the same shopper state the ranker used:

* an item the shopper bought before: "you bought this N times";
* an item they clicked or carted: "you added this to your cart" / "you clicked this";
* otherwise the nearest anchor in the two-tower item space: an item they are looking at
  now ("because you just viewed X"), else one they bought ("because you bought X"), else
  one they looked at ("because you looked at X");
* a shopper with no history (cold start): "popular in <category>".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from shoprec.models.candidates import Events, Shoppers, build_shoppers, row_entries, row_values
from shoprec.models.diversity import mmr
from shoprec.models.history import utc_ns
from shoprec.models.multistage import MultiStage

Ask = tuple[int, bool, float]  # a list's k, exclude_purchased and diversity

_SIGNAL_PHRASES = {"add_to_cart": "you added this to your cart", "click": "you clicked this", "view": "you viewed this"}


def explain(system: MultiStage, shoppers: Shoppers, pos: int, items: np.ndarray) -> list[str]:
    """Reasons for ``items`` in the list of shopper ``pos`` of ``shoppers``."""
    catalog, item_emb = system.catalog, system.state.items.item_emb
    if not shoppers.known[pos]:
        return [_popular(catalog, i) for i in items]
    bought, signal = row_values(shoppers.purchased, pos, items), row_values(shoppers.weighted, pos, items)
    weights = system.cfg.interactions.weights
    recent = shoppers.recent[pos]
    bought_items, _ = row_entries(shoppers.purchased, pos)
    if len(recent):
        anchors, verb = recent, "just viewed"
    elif len(bought_items):
        anchors, verb = bought_items, "bought"
    else:
        looked, weight = row_entries(shoppers.weighted, pos)
        anchors, verb = looked[weight != 0], "looked at"
    nearest = anchors[np.argmax(item_emb[items] @ item_emb[anchors].T, axis=1)] if len(anchors) else None
    out = []
    for at, i in enumerate(items):
        if bought[at] > 0:
            times = int(bought[at])
            out.append(f"you bought this {times} time{'s' if times > 1 else ''} before")
        elif signal[at] > 0:
            strongest = min(weights, key=lambda t: abs(weights[t] - signal[at]))  # the event type behind the weight
            out.append(_SIGNAL_PHRASES.get(strongest, "you looked at this before"))
        elif nearest is not None:
            out.append(f"because you {verb} {catalog.titles[nearest[at]]}")
        else:
            out.append(_popular(catalog, i))
    return out


def _popular(catalog, item: int) -> str:
    return f"popular in {catalog.categories[item]}" if catalog.categories[item] else "popular right now"


def ranked(system: MultiStage, shoppers: Shoppers) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per shopper: their candidates best first and their p(purchase)."""
    cands, pred = system.rank_shoppers(shoppers)
    order = np.lexsort((cands.item, -pred["purchase"], cands.user_pos))  # by shopper, then best first
    bounds = np.searchsorted(cands.user_pos[order], np.arange(shoppers.n + 1))
    items, scores = cands.item[order], pred["purchase"][order]
    return [(items[a:b], scores[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def without_purchases(shoppers: Shoppers, pos: int, items: np.ndarray, scores: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """``items`` minus what shopper ``pos`` bought (the evaluation's ``new`` view)."""
    keep = row_values(shoppers.purchased, pos, items) == 0
    return items[keep], scores[keep]


def answers(system: MultiStage, shoppers: Shoppers, asks: Sequence[Ask]) -> list[list[dict]]:
    """Top ``k`` with reasons for each shopper of ``shoppers``, ranked in one pass; ``asks[r]`` is shopper
    r's ``(k, exclude_purchased, diversity)``. A shopper's list does not depend on who else is in the pass."""
    return [_answer(system, shoppers, pos, items, scores, *ask)
            for pos, ((items, scores), ask) in enumerate(zip(ranked(system, shoppers), asks, strict=True))]


def _answer(system: MultiStage, shoppers: Shoppers, pos: int, items: np.ndarray, scores: np.ndarray, k: int,
            exclude_purchased: bool, diversity: float) -> list[dict]:
    if exclude_purchased:
        items, scores = without_purchases(shoppers, pos, items, scores)
    chosen = mmr(scores, system.state.items.item_emb[items], diversity, k)
    items, scores = items[chosen], scores[chosen]
    return [
        {"item_id": str(system.catalog.item_ids[i]), "title": str(system.catalog.titles[i]),
         "category": str(system.catalog.categories[i]), "price": float(system.catalog.price[i]), "score": float(s),
         "explanation": why}
        for i, s, why in zip(items, scores, explain(system, shoppers, pos, items))
    ]


def recommend(system: MultiStage, user_id: str, k: int, exclude_purchased: bool = False,
              diversity: float = 0.0) -> list[dict]:
    """Top ``k`` for ``user_id`` as of the training cut-off (unknown users get the cold-start list)."""
    return answers(system, system.state.at(system.state.inter.rows([user_id])), [(k, exclude_purchased, diversity)])[0]


def history_shoppers(system: MultiStage, events: Events, keys: np.ndarray, user_ids: Sequence[str | None],
                     now: Sequence[pd.Timestamp], recent: Sequence[Iterable[str]] | None = None) -> Shoppers:
    """Shoppers ``0..n-1`` as of their ``now``: shopper ``keys[j]`` did event ``j``. ``recent`` item
    ids not in the catalog are ignored (an item added after packaging has no vector yet)."""
    cfg, row_of = system.cfg, system.catalog.row_of
    rows = None if recent is None else [np.array([row_of[i] for i in r if i in row_of], np.int64) for r in recent]
    return build_shoppers(events, keys, np.array([u or "" for u in user_ids], dtype=object),
                          np.array([utc_ns(t) for t in now], np.int64),
                          system.catalog, cfg.interactions.weights, cfg.interactions.history_types,
                          system.state.tower, cfg.retrieval.history_length, rows)


def recommend_now(system: MultiStage, events: Events, now: pd.Timestamp,
                  user_id: str | None = None, recent_items: Sequence[str] = (), k: int = 20,
                  exclude_purchased: bool = False, diversity: float = 0.0) -> list[dict]:
    """Real-time top ``k`` for a shopper whose history as of ``now`` is ``events``.

    ``events``: all before ``now``, in the order they happened: the training history plus what
    arrived since packaging (:meth:`Events.of` makes them from ``(item_id, event_type, time)``). ``now`` is the
    request's time on the data's clock, which every time feature ("days since", the day of
    week) is computed as of: the wall time for live data, the wall time minus a fixed offset
    for data whose clock is not today's (the sample's events are from 2024). ``user_id`` picks the two-tower's user embedding
    (None or unknown: the cold-start one). ``recent_items``: items the shopper is looking
    at now (an anonymous session, the page they are on), most recent last.
    """
    return recommend_many(system, [Request(events, now, user_id, tuple(recent_items), k, exclude_purchased,
                                           diversity)])[0]


@dataclass(frozen=True)
class Request:
    """One real-time list to compute: :func:`recommend_now`'s arguments."""

    events: Events
    now: pd.Timestamp
    user_id: str | None
    recent_items: tuple[str, ...]
    k: int
    exclude_purchased: bool
    diversity: float


def recommend_many(system: MultiStage, requests: Sequence[Request]) -> list[list[dict]]:
    """:func:`recommend_now` for several shoppers in one pass: each list is the one it computes alone (the
    shoppers are scored side by side, never mixed), at a fraction of the cost per list, since a pass costs
    about as much in fixed overheads (array set-up, the ranker's layers) for a few shoppers as for one."""
    events = Events.concat([r.events for r in requests])
    keys = np.repeat(np.arange(len(requests)), [len(r.events) for r in requests])
    shoppers = history_shoppers(system, events, keys, [r.user_id for r in requests], [r.now for r in requests],
                                [r.recent_items for r in requests])
    return answers(system, shoppers, [(r.k, r.exclude_purchased, r.diversity) for r in requests])

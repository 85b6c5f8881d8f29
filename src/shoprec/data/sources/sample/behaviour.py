"""Shoppers and their sessions: who looks at what, when, and how far down the funnel.

Tastes. Each shopper has a category taste ``t ~ Dirichlet(ALPHA * w)`` (``w`` the
category weights, so a few categories dominate each shopper), three favourite brands,
two favourite colours and a price level ``z_u ~ N(0, 0.8)``. Affinity to an item is

    a(u, i) = 1.5 [brand_i in favs] + 1.0 [colour_i in favs] - 0.6 (z_i - z_u)^2

Tastes do not change over the window, so a shopper's past predicts their future.

Choice. A session picks a category from ``t`` (or, 15% of the time, from ``w``), then
each viewed item is the best of ``CANDIDATES`` items drawn by Zipf popularity, scored
``a + Gumbel``: items are chosen with probability close to ``pop * exp(a)``, so
popularity and taste both matter. In a search session (the shopper wants one item,
and types a query built from it, see :mod:`queries`) the first view is the wanted
item and later views favour items sharing its noun and colour.

Funnel. view -> click -> add_to_cart -> purchase with logistic rates that rise with
affinity (and for the wanted item); quantity is 1, or 2-6 for a third of consumable
purchases. Each consumable purchase is re-bought after Gamma-distributed gaps (mean
the category's ``cycle_days``) while the shopper keeps the habit.

Return visits. A session that ends without a purchase is a mission left open: with
probability :data:`RETURN_CARTED` (a cart was left) or :data:`RETURN_BROWSED` (views and
clicks only) the shopper comes back after a gap ``g ~ Gamma(RETURN_GAP_SHAPE,
RETURN_GAP_HOURS / RETURN_GAP_SHAPE)`` hours from its last event, views again each item
of the mission with probability ``REVISIT[deepest stage reached]`` (the deepest-engaged
item always), then ``Poisson(RETURN_ALTERNATIVES)`` close alternatives (same category,
favouring that item's noun and colour), all through the funnel with every logit raised by
:data:`RETURN_LIFT` and the items carted before counting as wanted:

    P(back) = RETURN_CARTED if carted else RETURN_BROWSED;  logit_step += RETURN_LIFT (+ wanted terms if carted)

Purchases in return visits are re-bought like any other. Return visits come from a random
stream of their own (see :func:`simulate`), so every other event is the same with or without
them.

Time. Session days follow ``w(d) = weekly(d) * (1 + TREND d / days) * (1 + bump(d))``,
a Gaussian promotion bump centred at 60% of the window; hours peak at lunch and evening.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from shoprec.data.contracts import EVENT_TYPES
from shoprec.data.sources.sample import queries, vocab
from shoprec.data.sources.sample.catalog import Catalog

ALPHA = 6.0  # total Dirichlet concentration of a shopper's category taste (low: focused shoppers)
EXPLORE = 0.15
CANDIDATES = 6
MEAN_EXTRA_VIEWS = 3.0
SEARCH_SHARE = 0.45
TREND = 0.35
BUMP_HEIGHT, BUMP_WIDTH_DAYS = 0.8, 3.0
WEEKDAY = np.array([0.9, 0.9, 0.95, 1.0, 1.05, 1.25, 1.2])  # Monday .. Sunday
HOUR = np.array([1, 0.6, 0.4, 0.3, 0.3, 0.4, 0.8, 1.5, 2, 2.3, 2.5, 2.8,
                 3.2, 3.0, 2.6, 2.5, 2.6, 2.9, 3.4, 4.0, 4.3, 3.8, 2.8, 1.8])
REPEATS = 4  # most re-purchases one purchase can spawn
KEEP_HABIT = 0.65  # chance a shopper re-buys once more
SESSIONS_PER_CHUNK = 200_000
US = 1_000_000  # microseconds per second
PURCHASE = EVENT_TYPES.index("purchase")
RETURN_CARTED = 0.35  # chance a left cart brings the shopper back: carts are often left to decide later, a third resumed
RETURN_BROWSED = 0.15  # chance a session of views/clicks without a cart is resumed: missions are researched over visits
RETURN_GAP_HOURS, RETURN_GAP_SHAPE = 29.0, 2.0  # mean and shape of the Gamma gap: median ~1 day, 90% within ~2.4 days
REVISIT = np.array([0.3, 0.5, 0.9])  # chance an item last viewed / clicked / carted is viewed again on return
RETURN_ALTERNATIVES = 1.5  # mean new views on return: a close alternative or two to compare with
RETURN_LIFT = 0.7  # logit lift at each funnel step on return: the odds double for a shopper back on a mission
ORGANIC = 0.5  # chance a wanted item a shown list did not lead to is found by browsing (react)


@dataclass(frozen=True)
class Users:
    taste_cdf: np.ndarray  # [user, category] cumulative category taste
    fav_brands: np.ndarray  # [user, 3]
    fav_colours: np.ndarray  # [user, 2]
    price_z: np.ndarray
    sessions: np.ndarray  # sessions each shopper starts in the window


@dataclass
class Events:
    """Event columns as codes; ``session`` indexes the session tables."""

    user: np.ndarray
    item: np.ndarray
    kind: np.ndarray
    ts_us: np.ndarray  # microseconds since the window start
    session: np.ndarray
    quantity: np.ndarray

    @staticmethod
    def concat(parts: list[Events]) -> Events:
        return Events(*(np.concatenate([getattr(p, f) for p in parts]) for f in Events.__dataclass_fields__))

    def take(self, index: np.ndarray) -> Events:
        return Events(*(getattr(self, f)[index] for f in Events.__dataclass_fields__))


def make_users(rng: np.random.Generator, cat: Catalog, n_users: int, n_sessions: int) -> Users:
    """Tastes and session counts (``multinomial`` over log-normal activity: a few heavy shoppers).

    Categories the catalogue lacks (tiny catalogues) get no taste, so every session
    has items to look at.
    """
    present = np.bincount(cat.category, minlength=len(vocab.CATEGORIES)) > 0
    weights = np.where(present, [c.weight for c in vocab.CATEGORIES], 0.0)
    weights /= weights.sum()
    taste = np.where(present, rng.dirichlet(ALPHA * np.maximum(weights, 1e-9), size=n_users), 0.0)
    taste = (1 - EXPLORE) * taste / taste.sum(1, keepdims=True) + EXPLORE * weights
    brand_pop = np.bincount(cat.brand[cat.brand >= 0], minlength=len(vocab.BRANDS)) + 1.0
    # Three distinct brands per shopper, drawn by brand frequency: Gumbel top-k.
    keys = np.log(brand_pop) + rng.gumbel(size=(n_users, len(brand_pop)))
    fav_brands = np.argpartition(-keys, 3, axis=1)[:, :3]
    fav_colours = rng.choice(len(vocab.COLOURS), size=(n_users, 2))
    activity = rng.lognormal(0.0, 1.0, n_users)
    sessions = rng.multinomial(n_sessions, activity / activity.sum())
    return Users(np.cumsum(taste, axis=1), fav_brands, fav_colours, rng.normal(0, 0.8, n_users), sessions)


def _affinity(users: Users, cat: Catalog, u: np.ndarray, i: np.ndarray) -> np.ndarray:
    brand = (users.fav_brands[u] == cat.brand[i][..., None]).any(-1)
    colour = (users.fav_colours[u] == cat.colour[i][..., None]).any(-1)
    return 1.5 * brand + 1.0 * colour - 0.6 * (cat.price_z[i] - users.price_z[u]) ** 2


def session_starts(rng: np.random.Generator, n: int, days: int, start: pd.Timestamp) -> np.ndarray:
    """Start times (us since window start) drawn from the weekly x trend x bump x hour profile."""
    d = np.arange(days)
    bump = BUMP_HEIGHT * np.exp(-0.5 * ((d - round(0.6 * days)) / BUMP_WIDTH_DAYS) ** 2)
    w = WEEKDAY[(start.dayofweek + d) % 7] * (1 + TREND * d / days) * (1 + bump)
    day = rng.choice(days, size=n, p=w / w.sum())
    hour = rng.choice(24, size=n, p=HOUR / HOUR.sum())
    return ((day * 24 + hour) * 3600 + rng.random(n) * 3600).astype(np.int64) * US


class Shop:
    """Samples item choices for sessions; holds the per-category popularity tables."""

    def __init__(self, cat: Catalog, users: Users):
        self.cat, self.users = cat, users
        self.order, self.starts = cat.by_category()
        self.cum = np.concatenate([[0.0], np.cumsum(cat.popularity[self.order])])
        self.consumable_cycle = np.array([c.cycle_days for c in vocab.CATEGORIES])

    def draw(self, rng: np.random.Generator, c: np.ndarray, k: int) -> np.ndarray:
        """``k`` items per row from category ``c[row]``, in proportion to popularity."""
        lo, hi = self.cum[self.starts[c]], self.cum[self.starts[c + 1]]
        target = lo[:, None] + rng.random((len(c), k)) * (hi - lo)[:, None]
        pos = np.searchsorted(self.cum, target, side="right") - 1
        pos = np.clip(pos, self.starts[c][:, None], self.starts[c + 1][:, None] - 1)
        return self.order[pos]

    def choose(self, rng: np.random.Generator, u: np.ndarray, c: np.ndarray,
               bonus_of: Callable[[np.ndarray], np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Best of :data:`CANDIDATES` by affinity (+ ``bonus_of(candidates)``) + Gumbel; returns item, affinity."""
        cand = self.draw(rng, c, CANDIDATES)
        aff = _affinity(self.users, self.cat, u[:, None], cand)
        score = aff + rng.gumbel(size=cand.shape) + (bonus_of(cand) if bonus_of else 0.0)
        best = score.argmax(1)
        rows = np.arange(len(u))
        return cand[rows, best], aff[rows, best]


def _emit(u: np.ndarray, item: np.ndarray, session: np.ndarray,
          stages: list[tuple[np.ndarray | None, np.ndarray, np.ndarray | int]]) -> Events:
    """Events for funnel stages view, click, add_to_cart, purchase (in that order).

    Each stage is ``(mask or None for all, timestamps, quantity)`` over the same rows.
    """
    parts = []
    for code, (mask, ts, qty) in enumerate(stages):
        m = np.ones(len(u), bool) if mask is None else mask
        parts.append(Events(u[m], item[m], np.full(m.sum(), code, np.int8), ts[m], session[m],
                            np.broadcast_to(np.asarray(qty, np.int64), len(u))[m]))
    return Events.concat(parts)


def _sigmoid(logit: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-logit))


def _funnel(rng: np.random.Generator, shop: Shop, s_of_view: np.ndarray, u: np.ndarray, item: np.ndarray,
            aff: np.ndarray, wanted: np.ndarray, t_view: np.ndarray, lift: float = 0.0) -> Events:
    """Events for a batch of views: each view, then click / cart / purchase while the funnel continues.

    ``lift`` raises every step's logit (return visits, :data:`RETURN_LIFT`).
    """
    n = len(item)
    click = rng.random(n) < _sigmoid(-1.3 + 0.8 * aff + 1.6 * wanted + lift)
    cart = click & (rng.random(n) < _sigmoid(-1.9 + 0.8 * aff + 0.8 * wanted + lift))
    buy = cart & (rng.random(n) < _sigmoid(0.4 + 0.5 * aff + lift))
    consumable = shop.consumable_cycle[shop.cat.category[item]] > 0
    multi = rng.random(n) < np.where(consumable, 0.35, 0.04)
    qty = np.where(multi, np.where(consumable, rng.integers(2, 7, n), 2), 1)
    t_click = t_view + rng.integers(3, 20, n) * US
    t_cart = t_click + rng.integers(10, 90, n) * US
    t_buy = t_cart + rng.integers(30, 400, n) * US
    return _emit(u, item, s_of_view, [(None, t_view, 1), (click, t_click, 1), (cart, t_cart, qty), (buy, t_buy, qty)])


def _more_views(rng: np.random.Generator, shop: Shop, u: np.ndarray, c: np.ndarray, want: np.ndarray,
                searching: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A session's views after its first: in a search session, items sharing the wanted item's noun and colour
    are favoured."""
    cat = shop.cat
    bonus = np.where(searching, 1.0, 0.0)[:, None]
    return shop.choose(
        rng, u, c,
        lambda cand: bonus * (1.5 * (cat.noun[cand] == cat.noun[want][:, None])
                              + 0.7 * ((cat.colour[cand] == cat.colour[want][:, None]) & (cat.colour[cand] >= 0))),
    )


def _repeats(rng: np.random.Generator, shop: Shop, bought: Events, first_session: int,
             end_us: int) -> tuple[Events, np.ndarray]:
    """Re-purchase sessions for consumable purchases; returns their events and start times."""
    cycle = shop.consumable_cycle[shop.cat.category[bought.item]]
    src = bought.take(np.flatnonzero(cycle > 0))
    cycle = cycle[cycle > 0]
    gaps = rng.gamma(4.0, cycle[:, None] / 4.0, size=(len(cycle), REPEATS)) * 86400 * US
    when = src.ts_us[:, None] + np.cumsum(gaps, axis=1).astype(np.int64)
    alive = np.cumprod(rng.random(when.shape) < KEEP_HABIT, axis=1).astype(bool) & (when < end_us - 3600 * US)
    row, _ = np.nonzero(alive)
    n = len(row)
    t0 = when[alive]
    session = first_session + np.arange(n)
    click = rng.random(n) < 0.5
    t1 = t0 + rng.integers(5, 60, n) * US
    t2 = t1 + rng.integers(5, 60, n) * US
    t3 = t2 + rng.integers(20, 200, n) * US
    u, item, qty = src.user[row], src.item[row], src.quantity[row]
    return _emit(u, item, session, [(None, t0, 1), (click, t1, 1), (None, t2, qty), (None, t3, qty)]), t0


def return_visits(rng: np.random.Generator, shop: Shop, events: Events, n_sessions: int,
                  end_us: int) -> tuple[Events, np.ndarray]:
    """Return visits to the sessions ``0 .. n_sessions - 1`` of ``events`` that bought nothing (see the module
    docstring), numbered from ``n_sessions``, with the re-purchases of what they buy; returns their events and
    start times."""
    touched = pd.DataFrame({"session": events.session, "item": events.item, "kind": events.kind,
                            "ts": events.ts_us, "user": events.user})
    per = touched.groupby("session").agg(deepest=("kind", "max"), last=("ts", "max"), user=("user", "first"))
    left = per[per["deepest"] < PURCHASE]
    carted = left["deepest"].to_numpy() == PURCHASE - 1
    back = rng.random(len(left)) < np.where(carted, RETURN_CARTED, RETURN_BROWSED)
    left = left[back]
    n = len(left)
    gap = rng.gamma(RETURN_GAP_SHAPE, RETURN_GAP_HOURS / RETURN_GAP_SHAPE, n) * 3600 * US
    t0 = left["last"].to_numpy() + gap.astype(np.int64)
    # The mission: each item touched in the left session, its deepest stage and first touch.
    mission = (touched[touched["session"].isin(left.index)]
               .groupby(["session", "item"], as_index=False).agg(stage=("kind", "max"), ts=("ts", "min"))
               .sort_values(["session", "stage", "ts"], ascending=[True, False, True], kind="stable"))
    r = np.searchsorted(left.index.to_numpy(), mission["session"].to_numpy())
    anchor_row = np.diff(r, prepend=-1) != 0  # a session's first row: its deepest-engaged item
    anchor = mission["item"].to_numpy()[anchor_row]
    stage = mission["stage"].to_numpy()
    again = mission[anchor_row | (rng.random(len(mission)) < REVISIT[stage])]
    r_again = np.searchsorted(left.index.to_numpy(), again["session"].to_numpy())
    u = left["user"].to_numpy()
    n_alt = rng.poisson(RETURN_ALTERNATIVES, n)
    r_alt = np.repeat(np.arange(n), n_alt)
    alt, alt_aff = _more_views(rng, shop, u[r_alt], shop.cat.category[anchor[r_alt]], anchor[r_alt],
                               np.ones(len(r_alt), bool))
    item = np.concatenate([again["item"].to_numpy(), alt])
    r_view = np.concatenate([r_again, r_alt])
    aff = np.concatenate([_affinity(shop.users, shop.cat, u[r_again], again["item"].to_numpy()), alt_aff])
    wanted = np.concatenate([again["stage"].to_numpy() == PURCHASE - 1, np.zeros(len(alt), bool)])
    order = np.argsort(r_view, kind="stable")  # re-views first, deepest-engaged first, then alternatives
    item, r_view, aff, wanted = item[order], r_view[order], aff[order], wanted[order]
    head = np.searchsorted(r_view, r_view)
    csum = np.cumsum(rng.exponential(45.0, len(r_view)) * US)
    t_view = t0[r_view] + (csum - csum[head]).astype(np.int64)
    visits = _funnel(rng, shop, n_sessions + r_view, u[r_view], item, aff, wanted, t_view, RETURN_LIFT)
    bought = visits.take(np.flatnonzero((visits.kind == PURCHASE) & (visits.ts_us < end_us)))
    rebought, rebought_starts = _repeats(rng, shop, bought, n_sessions + n, end_us)
    return Events.concat([visits, rebought]), np.concatenate([t0, rebought_starts])


def simulate_chunk(rng: np.random.Generator, shop: Shop, users: np.ndarray, first_session: int,
                   days: int, start: pd.Timestamp) -> tuple[Events, np.ndarray, np.ndarray]:
    """All sessions of a block of shoppers, numbered from ``first_session``.

    Returns the events, the query spec rows of this chunk's sessions (``-1`` rows for
    sessions without a search) and the sessions' start times.
    """
    cat = shop.cat
    u = np.repeat(users, shop.users.sessions[users])
    n = len(u)
    c = (shop.users.taste_cdf[u] < rng.random(n)[:, None]).sum(1)
    c = np.minimum(c, shop.users.taste_cdf.shape[1] - 1)
    t0 = session_starts(rng, n, days, start)
    search = rng.random(n) < SEARCH_SHARE
    n_views = 1 + rng.poisson(MEAN_EXTRA_VIEWS, n)

    first, first_aff = shop.choose(rng, u, c)
    specs = np.full((n, 7), -1, dtype=np.int32)
    specs[search] = queries.sample_specs(rng, cat, first[search], queries.sample_session_kinds(rng, int(search.sum())))

    # Views laid out session by session; each session's first view is its first choice.
    s_view = np.repeat(np.arange(n), n_views)
    head = np.concatenate([[0], np.cumsum(n_views)[:-1]])
    is_rest = np.ones(len(s_view), bool)
    is_rest[head] = False
    s_rest = s_view[is_rest]
    rest, rest_aff = _more_views(rng, shop, u[s_rest], c[s_rest], first[s_rest], search[s_rest])
    item, aff = np.empty(len(s_view), np.int64), np.empty(len(s_view))
    item[head], item[is_rest], aff[head], aff[is_rest] = first, rest, first_aff, rest_aff
    csum = np.cumsum(rng.exponential(45.0, len(s_view)) * US)
    t_view = t0[s_view] + (csum - csum[head][s_view]).astype(np.int64)  # first view at the session start
    wanted = ~is_rest & search[s_view]
    events = _funnel(rng, shop, first_session + s_view, u[s_view], item, aff, wanted, t_view)
    end_us = days * 86400 * US
    bought = events.take(np.flatnonzero(events.kind == PURCHASE))
    again, again_starts = _repeats(rng, shop, bought, first_session + n, end_us)
    specs = np.concatenate([specs, np.full((len(again_starts), 7), -1, np.int32)])
    events = Events.concat([events, again])
    return events.take(np.flatnonzero(events.ts_us < end_us)), specs, np.concatenate([t0, again_starts])


def simulate(rng: np.random.Generator, shop: Shop, days: int, start: pd.Timestamp,
             returns: np.random.Generator | None) -> tuple[Events, np.ndarray]:
    """Every shopper's sessions, generated in blocks of about :data:`SESSIONS_PER_CHUNK` sessions.

    Then the :func:`return_visits` to them, drawn from ``returns`` only (``None``: none), so
    the other sessions' events are the same draws with or without them. Sessions are then
    renumbered in order of their start time (so session ids grow with time, as a web server would hand them out); returns the events and the
    session query specs indexed by the new numbers.
    """
    cum = np.cumsum(shop.users.sessions)
    bounds = np.unique(np.searchsorted(cum, np.arange(SESSIONS_PER_CHUNK, cum[-1], SESSIONS_PER_CHUNK)))
    parts, specs, starts = [], [], []
    numbered = 0
    for block in np.split(np.arange(len(cum)), bounds):
        events, block_specs, block_starts = simulate_chunk(rng, shop, block, numbered, days, start)
        parts.append(events)
        specs.append(block_specs)
        starts.append(block_starts)
        numbered += len(block_starts)
    if returns is not None:
        back, back_starts = return_visits(returns, shop, Events.concat(parts), numbered, days * 86400 * US)
        parts.append(back.take(np.flatnonzero(back.ts_us < days * 86400 * US)))
        specs.append(np.full((len(back_starts), 7), -1, np.int32))  # a return visit comes back to the cart, no query
        starts.append(back_starts)
    events = Events.concat(parts)
    order = np.argsort(np.concatenate(starts), kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    events.session = rank[events.session]
    return events, np.concatenate(specs)[order]


@dataclass(frozen=True)
class Intents:
    """What shoppers arrive wanting, before anything is shown (one row per visit; see :func:`intents`)."""

    user: np.ndarray
    category: np.ndarray
    first: np.ndarray  # the item a visit starts from: in a search visit, the wanted one the query describes
    first_affinity: np.ndarray
    search: np.ndarray  # bool: the visit is a search
    n_views: np.ndarray
    specs: np.ndarray  # query spec rows (:mod:`queries`), -1 rows for visits without a search

    def take(self, rows: np.ndarray) -> Intents:
        return Intents(*(getattr(self, f)[rows] for f in Intents.__dataclass_fields__))

    def query(self, visit: int) -> str:
        """The text a searching visitor types (see :func:`queries.render`)."""
        return queries.render(self.specs[visit])


def intents(rng: np.random.Generator, shop: Shop, u: np.ndarray, search_share: float = SEARCH_SHARE) -> Intents:
    """The generator's session start for visits of shoppers ``u``: a category from the shopper's taste, the
    number of items they will look at, the first one (:meth:`Shop.choose`) and, for a ``search_share`` of the
    visits, the query they type for it (:func:`queries.sample_specs`)."""
    n = len(u)
    c = np.minimum((shop.users.taste_cdf[u] < rng.random(n)[:, None]).sum(1), shop.users.taste_cdf.shape[1] - 1)
    search = rng.random(n) < search_share
    n_views = 1 + rng.poisson(MEAN_EXTRA_VIEWS, n)
    first, first_aff = shop.choose(rng, u, c)
    specs = np.full((n, 7), -1, dtype=np.int32)
    specs[search] = queries.sample_specs(rng, shop.cat, first[search], queries.sample_session_kinds(rng, int(search.sum())))
    return Intents(u, c, first, first_aff, search, n_views, specs)


def react(rng: np.random.Generator, shop: Shop, visits: Intents, shown: np.ndarray, t0: np.ndarray
          ) -> tuple[Events, np.ndarray]:
    """What the shoppers of ``visits`` do in sessions starting at ``t0`` (us) when a list ``shown`` is put before them.

    ``shown[s]`` holds item codes by position (``-1`` pads a short list): recommendations, or
    the results of the visit's query. The session is the generator's: the first item of
    :func:`intents`, then more chosen like the generator's later views (favouring the wanted
    item's noun and colour in a search), and the funnel of :func:`_funnel` (the searched
    item is the wanted one). The list changes how those items are reached: position ``p``
    is examined with probability ``1 / log2(p + 2)`` (the position bias nDCG assumes), and
    a wanted item examined in the list is viewed from it; a wanted item the list missed
    (or showed where the shopper did not look) is still found by browsing with probability
    :data:`ORGANIC`. Items the shopper does not want are passed over, so a list helps
    exactly as much as it holds what the shopper's true tastes would pick.

    Returns the events (``session`` = the visit's row) and per event the position in the
    list it came from (``-1``: found by browsing). A pure function of ``rng``'s state.
    """
    n, k = shown.shape
    s_view = np.repeat(np.arange(n), visits.n_views)
    head = np.concatenate([[0], np.cumsum(visits.n_views)[:-1]])
    is_rest = np.ones(len(s_view), bool)
    is_rest[head] = False
    s_rest = s_view[is_rest]
    rest, rest_aff = _more_views(rng, shop, visits.user[s_rest], visits.category[s_rest], visits.first[s_rest],
                                 visits.search[s_rest])
    item, aff = np.empty(len(s_view), np.int64), np.empty(len(s_view))
    item[head], item[is_rest], aff[head], aff[is_rest] = visits.first, rest, visits.first_affinity, rest_aff
    examined = rng.random((n, k)) < 1 / np.log2(np.arange(k) + 2)
    hit = (shown[s_view] == item[:, None]) & examined[s_view]
    position = np.where(hit.any(1), hit.argmax(1), -1)
    keep = (position >= 0) | (rng.random(len(item)) < ORGANIC)
    csum = np.cumsum(rng.exponential(45.0, len(s_view)) * US)
    t_view = t0[s_view] + (csum - csum[head][s_view]).astype(np.int64)
    views = np.flatnonzero(keep)
    wanted = (~is_rest & visits.search[s_view])[views]
    events = _funnel(rng, shop, views, visits.user[s_view][views], item[views], aff[views], wanted, t_view[views])
    return Events(events.user, events.item, events.kind, events.ts_us, s_view[events.session], events.quantity), \
        position[events.session]

"""Stage one of serving: candidates and the features the ranker scores them on.

One code path for every list: a *shopper* is a history of events as of a time ``now``
(:class:`Shoppers`, built by :func:`build_shoppers`), whether that is a training user at
the training cut-off (the evaluation, the precomputed lists) or a visitor at request
time with the events they did a second ago (real-time scoring). What is known about
items (:class:`ItemStats`: co-purchase, EASE, popularity) is fixed when the models are
trained. For a shopper ``u`` the candidate set is

    C(u) = top-N two-tower items  U  items u interacted with  U  top-N co-purchase items,

co-purchase being EASE's learned item-item regression ``x_u B`` (see baselines), ``x_u``
the items u bought plus the items they are looking at right now (``recent``). Retrieval
brings what is new and relevant (content included), history brings repeat buys (the
strongest single signal in retail), co-purchase brings complements. The two-tower query
vector is recomputed from the shopper's history by the trained query tower
(:mod:`shoprec.models.query_tower`), so fresh events move it. Nothing is scored over the whole
catalog: the two-tower top-N comes from ``ItemStats.index`` (an exact scan, or in the service at
catalog scale the HNSW graph of :mod:`shoprec.search.index.vectors`), EASE scores only the items it
models (those bought), and every feature is read for the candidate pairs alone.

Per (u, i) pair the ranker sees (``NUMERIC`` names them, in order): the two-tower cosine
and its rank among u's candidates, the co-purchase scores (cosine item-kNN ``x_u S`` and EASE ``x_u B``), the user's purchase count of the item, days since
the user last touched it, the strongest signal they gave it, the item's overall and
recent popularity, its price relative to the user's median purchase price, the user's
activity, the share of the user's history in the item's category, how habitual the item
is (``item_repeat_rate``: share of its buyers who bought it again) and the user is
(``user_repeat_share``: share of their bought items bought again), and days since the
user's last event (every "days" as of ``now``); the item's rank among the user's own candidates by EASE score,
purchase count, recency and co-purchase score (``log1p(rank)``: pooled over all users, a
pointwise model otherwise sees only absolute values, while the metric ranks within a
user); plus content
vectors: the item's MiniLM text embedding and the signal-weighted mean of the user's
history's text embeddings. Content vectors, not the two-tower vectors, because the
ranker is trained on a replay two-tower and served with the final one: the two are
trained separately, so their coordinates mean different things, while the frozen
language model's space is the same in both (only the two-tower *score* crosses over).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shoprec.models.baselines import EASE
from shoprec.models.catalog import Catalog
from shoprec.models.history import DAY_NS, nanoseconds, sequences, type_tokens, utc_ns
from shoprec.models.interactions import Interactions, build_interactions
from shoprec.models.query_tower import QueryTowerWeights
from shoprec.search.index.vectors import ExactIndex, VectorIndex
from shoprec.topk import top_k

NUMERIC = (
    "two_tower_score", "two_tower_rank", "copurchase_score", "ease_score", "log_purchases", "log_days_since",
    "has_interacted", "strongest_signal", "log_popularity", "log_recent_popularity", "log_price_ratio",
    "log_user_purchases", "category_share", "item_repeat_rate", "user_repeat_share", "log_user_days_idle",
    "ease_rank", "purchases_rank", "recency_rank", "copurchase_rank",
)
NEVER_DAYS = 3650.0  # "days since" for items the user never touched


@dataclass
class ItemStats:
    """What scoring knows about items: fixed at the training cut-off, shared by every shopper."""

    copurchase: sp.csr_matrix  # item x item cosine over purchases
    ease: EASE
    popularity: np.ndarray
    recent_popularity: np.ndarray
    item_repeat_rate: np.ndarray  # (buyers who bought again + 0.1) / (buyers + 1)
    item_emb: np.ndarray  # [n_items, d]
    index: VectorIndex  # top-N two-tower items of a query vector: exact, or the service's HNSW graph at catalog scale


@dataclass
class Shoppers:
    """A batch of shoppers, each from their own history as of their own ``now`` (one row each)."""

    known: np.ndarray  # has at least one event on a catalog item
    weighted: sp.csr_matrix  # strongest signal per item
    purchased: sp.csr_matrix  # purchase events per item
    days_since: sp.csr_matrix  # days since the last event on the item (+1, so an entry is never 0)
    anchors: sp.csr_matrix  # 1 on items bought or being looked at now: the co-purchase scores' input
    recent: list[np.ndarray]  # per row: the items being looked at now (``recent_items``), in order
    median_price: np.ndarray  # of the shopper's purchase events (0: none)
    purchases: np.ndarray
    repeat_share: np.ndarray  # (items bought again + 0.1) / (items bought + 1)
    days_idle: np.ndarray  # days since the shopper's last event
    category_share: np.ndarray  # [n, n_categories]
    user_text: np.ndarray  # [n, d_text]: normalised signal-weighted mean of history text embeddings
    query: np.ndarray  # [n, d]: the two-tower query vector from the history

    @property
    def n(self) -> int:
        return len(self.known)

    def take(self, idx: np.ndarray) -> "Shoppers":
        return Shoppers(self.known[idx], self.weighted[idx], self.purchased[idx], self.days_since[idx],
                        self.anchors[idx], [self.recent[i] for i in idx], self.median_price[idx],
                        self.purchases[idx], self.repeat_share[idx], self.days_idle[idx],
                        self.category_share[idx], self.user_text[idx], self.query[idx])


@dataclass
class UserState:
    """Everything the candidate stage knows as of the training cut-off: the item statistics and every
    training user (plus, in the last row, a visitor with no history) as a shopper at the cut-off."""

    inter: Interactions
    items: ItemStats
    shoppers: Shoppers  # rows: inter's users, then the empty history
    tower: QueryTowerWeights

    def at(self, rows: np.ndarray) -> Shoppers:
        """Shoppers of matrix ``rows``; -1 (unseen user) gets the empty history."""
        return self.shoppers.take(np.where(rows >= 0, rows, self.inter.n_users))


def item_stats(events: pd.DataFrame, inter: Interactions, cutoff: pd.Timestamp, weights: dict[str, float],
               item_emb: np.ndarray, recent_days: int, ease_lambda: float, ease_max_items: int) -> ItemStats:
    """Item statistics of the events before ``cutoff`` (``inter`` is their matrix)."""
    bought = inter.purchased.copy()
    bought.data[:] = 1.0
    norms = np.sqrt(np.asarray(bought.sum(axis=0)).ravel())
    inv = sp.diags(1.0 / np.maximum(norms, 1e-9))
    copurchase = (inv @ (bought.T @ bought) @ inv).tocsr()
    copurchase.setdiag(0.0)
    copurchase.eliminate_zeros()
    recent = events[events["timestamp"] >= cutoff - pd.Timedelta(days=recent_days)]
    return ItemStats(
        copurchase=copurchase,
        ease=EASE(inter, ease_lambda, ease_max_items),
        popularity=inter.item_popularity(),
        recent_popularity=build_interactions(recent, inter.item_ids, weights).item_popularity(),
        item_repeat_rate=(_count(inter.purchased >= 2, 0) + 0.1) / (_count(inter.purchased >= 1, 0) + 1.0),
        item_emb=item_emb,
        index=ExactIndex(item_emb),
    )


@dataclass(frozen=True)
class Events:
    """Events as scoring reads them: catalog rows (-1: an item not in the catalog), event types and
    UTC nanoseconds, one entry per event. Arrays, so that a service holding a shopper's history
    hands it over without building a frame per request."""

    item: np.ndarray  # int64
    event_type: np.ndarray  # object (str)
    ns: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.item)

    @classmethod
    def of_frame(cls, frame: pd.DataFrame, catalog: Catalog) -> Events:
        """The ``item_id``, ``event_type`` and ``timestamp`` columns of ``frame``."""
        return cls(catalog.rows.get_indexer(frame["item_id"]).astype(np.int64),
                   frame["event_type"].to_numpy(dtype=object), nanoseconds(frame["timestamp"]))

    @classmethod
    def of(cls, triples, catalog: Catalog) -> Events:
        """``(item_id, event_type, time)`` triples (times tz-aware or naive UTC)."""
        frame = pd.DataFrame(list(triples), columns=["item_id", "event_type", "timestamp"])
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
        return cls.of_frame(frame, catalog)

    @classmethod
    def concat(cls, parts: list[Events]) -> Events:
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("item", "event_type", "ns")))


def build_shoppers(events: Events, keys: np.ndarray, user_ids: np.ndarray, now_ns: np.ndarray, catalog: Catalog,
                   weights: dict[str, float], history_types: list[str], tower: QueryTowerWeights,
                   history_length: int, recent: list[np.ndarray] | None = None) -> Shoppers:
    """Shoppers ``0..n-1`` (``n = len(user_ids)``): shopper ``keys[j]`` did event ``j`` of ``events``.

    ``now_ns[r]`` (UTC nanoseconds, :func:`utc_ns`) is shopper r's clock (every "days since" and the day
    of week); their events must be before it. ``user_ids[r]`` picks the query tower's user embedding (unknown: the
    cold-start one). ``recent[r]`` (catalog rows) are items r is looking at now: they count as
    views at ``now``, close r's query-tower history and join the co-purchase input.
    """
    n, n_items = len(user_ids), catalog.n_items
    recent = recent if recent is not None else [np.zeros(0, np.int64)] * n
    item = events.item
    ok = item >= 0
    rk = np.repeat(np.arange(n), [len(r) for r in recent]).astype(np.int64)
    ritem = np.concatenate([np.asarray(r, np.int64) for r in recent]) if n else np.zeros(0, np.int64)
    key = np.concatenate([np.asarray(keys, np.int64)[ok], rk])
    item = np.concatenate([item[ok], ritem])
    etype = np.concatenate([events.event_type[ok], np.full(len(rk), "view", object)])
    ts = np.concatenate([events.ns[ok], now_ns[rk]])
    w = np.zeros(len(etype), np.float32)  # a type without a weight: 0
    for name, weight in weights.items():
        w[etype == name] = weight
    buy = etype == "purchase"
    in_history = np.arange(len(key)) >= len(key) - len(rk)
    for name in history_types:
        in_history |= etype == name
    age = (now_ns[key] - ts) / DAY_NS
    pair, inv = np.unique(key * n_items + item, return_inverse=True)
    r, c = pair // n_items, pair % n_items
    strongest = np.full(len(pair), -np.inf, np.float32)
    np.maximum.at(strongest, inv, w)
    newest = np.full(len(pair), np.inf)
    np.minimum.at(newest, inv, age)
    buys = np.bincount(inv, weights=buy, minlength=len(pair)).astype(np.float32)
    weighted, days_since = _rows(n, n_items, r, c, strongest), _rows(n, n_items, r, c, (newest + 1.0).astype(np.float32))
    bought = buys > 0
    purchased = _rows(n, n_items, r[bought], c[bought], buys[bought])
    anchor = np.unique(np.concatenate([rk * n_items + ritem, pair[bought]]))
    anchors = _rows(n, n_items, anchor // n_items, anchor % n_items, np.ones(len(anchor), np.float32))
    known = np.bincount(key, minlength=n) > 0
    idle = np.full(n, NEVER_DAYS)
    np.minimum.at(idle, key, age)
    cats = np.bincount(key * catalog.n_categories + catalog.category_idx[item],
                       minlength=n * catalog.n_categories).reshape(n, catalog.n_categories).astype(np.float32)
    per_user = lambda values: np.bincount(r, weights=values, minlength=n).astype(np.float32)  # noqa: E731
    return Shoppers(
        known=known, weighted=weighted, purchased=purchased, days_since=days_since, anchors=anchors,
        recent=[np.asarray(x, np.int64) for x in recent],
        median_price=_medians(key[buy], catalog.price[item[buy]].astype(np.float64), n).astype(np.float32),
        purchases=per_user(buys),
        repeat_share=(per_user(buys >= 2) + 0.1) / (per_user(buys >= 1) + 1.0),
        days_idle=idle.astype(np.float32),
        category_share=cats / np.maximum(cats.sum(axis=1, keepdims=True), 1.0),
        user_text=_normalise(np.asarray(weighted @ catalog.text_emb, dtype=np.float32)),
        query=_query(tower, key, item, type_tokens(etype, list(weights)), ts, in_history, user_ids, now_ns,
                     history_length),
    )


def _rows(n: int, n_items: int, r: np.ndarray, c: np.ndarray, values: np.ndarray) -> sp.csr_matrix:
    """An ``n x n_items`` matrix of ``values`` at distinct pairs ``(r, c)`` sorted by row, then column:
    built as CSR directly (a COO conversion per matrix costs more than the rest of a shopper)."""
    indptr = np.concatenate([[0], np.cumsum(np.bincount(r, minlength=n))]).astype(np.int32)
    return sp.csr_matrix((values, c.astype(np.int32), indptr), shape=(n, n_items))


def _medians(keys: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Per key ``0..n-1`` the median of its ``values`` (mean of the two middle ones when even; 0: none)."""
    order = np.lexsort((values, keys))
    keys, values = keys[order], values[order]
    starts, ends = np.searchsorted(keys, np.arange(n)), np.searchsorted(keys, np.arange(n), side="right")
    has = ends > starts
    lo, hi = np.where(has, (starts + ends - 1) // 2, 0), np.where(has, (starts + ends) // 2, 0)
    return np.where(has, (values[lo] + values[hi]) / 2, 0.0) if len(values) else np.zeros(n)


def _query(tower: QueryTowerWeights, key: np.ndarray, item: np.ndarray, etype: np.ndarray, ts: np.ndarray,
           history: np.ndarray, user_ids: np.ndarray, now_ns: np.ndarray, length: int) -> np.ndarray:
    """Query vectors: each shopper's last ``length`` history events (time order, stable; ``etype``: type
    tokens), their day of week."""
    key, item, etype, ts = key[history], item[history], etype[history], ts[history]
    order = np.lexsort((ts, key))
    sorted_keys = key[order]
    n = len(user_ids)
    starts = np.searchsorted(sorted_keys, np.arange(n), side="left")
    ends = np.searchsorted(sorted_keys, np.arange(n), side="right")
    inputs = sequences(item[order] + 1, etype[order], ts[order], ends, starts, now_ns, length)
    return tower.embed(tower.tokens(user_ids), (now_ns // int(DAY_NS) + 3) % 7, **inputs)  # 1970-01-01: a Thursday


def build_user_state(
    events: pd.DataFrame, catalog: Catalog, weights: dict[str, float], cutoff: pd.Timestamp,
    tower: QueryTowerWeights, item_emb: np.ndarray, history_types: list[str], history_length: int,
    recent_days: int = 30, ease_lambda: float = 200.0, ease_max_items: int = 20_000,
) -> UserState:
    """Aggregate ``events`` (all before ``cutoff``) into a :class:`UserState`."""
    inter = build_interactions(events, catalog.item_ids, weights)
    users = np.append(inter.user_ids, "")
    keys = events["user_id"].map(inter.user_index).to_numpy(dtype=np.float64)
    known = ~np.isnan(keys)
    shoppers = build_shoppers(Events.of_frame(events[known], catalog), keys[known].astype(np.int64), users,
                              np.full(len(users), utc_ns(cutoff)), catalog, weights, history_types, tower,
                              history_length)
    return UserState(inter, item_stats(events, inter, cutoff, weights, item_emb, recent_days, ease_lambda,
                                       ease_max_items), shoppers, tower)


def _count(mask: sp.spmatrix, axis: int) -> np.ndarray:
    return np.asarray(mask.sum(axis=axis), dtype=np.float32).ravel()


def _rank_within_user(user_pos: np.ndarray, values: np.ndarray) -> np.ndarray:
    """0-based rank of each pair among its user's pairs, largest value first (``user_pos`` sorted)."""
    order = np.lexsort((-values, user_pos))
    first = np.searchsorted(user_pos[order], user_pos[order], side="left")
    ranks = np.empty(len(values), dtype=np.float32)
    ranks[order] = np.arange(len(values)) - first
    return ranks


def row_entries(m: sp.csr_matrix, row: int) -> tuple[np.ndarray, np.ndarray]:
    """The columns (sorted) and values of row ``row`` of ``m`` as :func:`_rows` builds it (scipy's row indexing
    costs ~10x this, a dense row as much as the catalog is long)."""
    a, b = m.indptr[row], m.indptr[row + 1]
    return m.indices[a:b], m.data[a:b]


def row_values(m: sp.csr_matrix, row: int, cols: np.ndarray) -> np.ndarray:
    """``m[row, cols]`` (0 where ``m`` has no entry), by binary search in the row's columns."""
    indices, data = row_entries(m, row)
    return _look_up(indices, data, cols, m.dtype)


def _look_up(keys: np.ndarray, values: np.ndarray, wanted: np.ndarray, dtype) -> np.ndarray:
    """The value of each ``wanted`` key among sorted distinct ``keys`` (0 where it is not one)."""
    if not len(keys):
        return np.zeros(len(wanted), dtype)
    at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    return np.where(keys[at] == wanted, values[at], 0).astype(dtype)


def _values_at(m: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``m[rows, cols]`` (0 where ``m`` has no entry) by binary search in ``m``'s (row, column) keys
    (``m`` as :func:`_rows` builds it: sorted, no duplicates): a fraction of the cost of scipy's fancy indexing."""
    width = np.int64(m.shape[1])
    keys = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr)) * width + m.indices
    return _look_up(keys, m.data, np.asarray(rows, np.int64) * width + cols, m.dtype)


def _product_at(x: sp.csr_matrix, s: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``(x @ s)[rows, cols]``. When the rows of ``s`` that ``x``'s entries pick hold fewer entries than ``s`` is
    wide (a shopper's few anchors in a large catalog), without forming ``x @ s``: those rows scaled, sorted by
    (row, column) and summed, where scipy's product allocates a workspace as long as the catalog (milliseconds
    at a million items). Otherwise (many anchors in a small, dense co-purchase matrix) scipy's product, whose
    workspace is then the smaller cost: its accumulation takes each entry once, the sort ``log`` times more.
    Both sum in the product's dtype and scipy's order: the same values, ties included."""
    width = np.int64(s.shape[1])
    starts = s.indptr[x.indices]
    lengths = s.indptr[x.indices + 1] - starts  # not np.diff(s.indptr): that is as long as the catalog
    if lengths.sum() >= width:
        product = (x @ s).tocsr()
        product.sum_duplicates()  # sorted columns, one entry each: the keys _values_at searches
        return _values_at(product, rows, cols)
    picked = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
    keys = np.repeat(np.repeat(np.arange(x.shape[0], dtype=np.int64), np.diff(x.indptr)), lengths) * width
    keys += s.indices[picked]
    summed, at = np.unique(keys, return_inverse=True)
    dtype = np.result_type(x.dtype, s.dtype)
    values = np.zeros(len(summed), dtype)
    np.add.at(values, at, (np.repeat(x.data, lengths) * s.data[picked]).astype(dtype))
    return _look_up(summed, values, np.asarray(rows, np.int64) * width + cols, dtype)


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)


@dataclass
class Candidates:
    user_pos: np.ndarray  # the pair's shopper (row of the Shoppers scored)
    item: np.ndarray  # catalog index
    numeric: np.ndarray  # [n_pairs, len(NUMERIC)]


def candidates(items: ItemStats, shoppers: Shoppers, catalog: Catalog, n_retrieval: int,
               n_copurchase: int) -> Candidates:
    """Candidate pairs of ``shoppers`` (by shopper, then item) and their numeric features, computed on the
    candidates only: nothing here is catalog-wide but EASE's row over the items it models, so a shopper
    costs the same at a million items when ``items.index`` is an HNSW graph."""
    n, n_items = shoppers.n, catalog.n_items
    known = shoppers.known
    retrieved, _ = items.index.search(shoppers.query, n_retrieval)
    ease = items.ease.column_scores(shoppers.anchors)  # [n, modelled items]
    co_cols, co_scores = top_k(ease, n_copurchase)
    co_user = np.repeat(np.arange(n), co_cols.shape[1])[co_scores.ravel() > 0]
    hist = shoppers.weighted
    hist_user, signal = np.repeat(np.arange(n), np.diff(hist.indptr)), hist.data > 0
    keys = np.unique(np.concatenate([
        np.repeat(np.arange(n), retrieved.shape[1]) * n_items + retrieved.ravel(),
        co_user * n_items + items.ease.cols[co_cols[co_scores > 0]],
        hist_user[signal] * n_items + hist.indices[signal],
    ]))
    u, i = keys // n_items, keys % n_items
    hist_w, bought, days = (_values_at(m, u, i) for m in (shoppers.weighted, shoppers.purchased, shoppers.days_since))
    days = np.where(days > 0, days - 1.0, NEVER_DAYS)
    co = _product_at(shoppers.anchors, items.copurchase, u, i)
    tt_pairs = np.einsum("pd,pd->p", shoppers.query[u], items.item_emb[i])
    col = items.ease.col_of[i]
    ease_pairs = np.where(col >= 0, ease[u, np.maximum(col, 0)] if ease.size else 0.0, 0.0).astype(np.float32)
    median = shoppers.median_price[u]
    price_ratio = catalog.price[i] / np.maximum(median, 1e-3)
    numeric = np.column_stack([
        tt_pairs,
        np.log1p(_rank_within_user(u, tt_pairs)),
        co,
        ease_pairs,
        np.log1p(bought),
        np.log1p(days),
        (hist_w > 0).astype(np.float32),
        hist_w,
        np.log1p(items.popularity[i]),
        np.log1p(items.recent_popularity[i]),
        np.where(median > 0, np.log(np.maximum(price_ratio, 1e-3)), 0.0),
        np.log1p(shoppers.purchases[u]),
        shoppers.category_share[u, catalog.category_idx[i]],
        items.item_repeat_rate[i],
        shoppers.repeat_share[u] * known[u],
        np.log1p(np.where(known[u], shoppers.days_idle[u], NEVER_DAYS)),
        np.log1p(_rank_within_user(u, ease_pairs)),
        np.log1p(_rank_within_user(u, bought)),
        np.log1p(_rank_within_user(u, -days)),
        np.log1p(_rank_within_user(u, co)),
    ]).astype(np.float32)
    return Candidates(user_pos=u, item=i, numeric=numeric)

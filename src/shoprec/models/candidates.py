"""Stage one of serving: candidates and the features the ranker scores them on.

For a user ``u`` as of a cut-off, the candidate set is

    C(u) = top-N two-tower items  U  items u interacted with  U  top-N co-purchase items,

co-purchase being EASE's learned item-item regression ``x_u B`` (see baselines). Retrieval
brings what is new and relevant (content included), history brings repeat buys (the
strongest single signal in retail), co-purchase brings complements.

Per (u, i) pair the ranker sees (``NUMERIC`` names them, in order): the two-tower cosine
and its rank, the co-purchase scores (cosine item-kNN ``x_u S`` and EASE ``x_u B``), the user's purchase count of the item, days since
the user last touched it, the strongest signal they gave it, the item's overall and
recent popularity, its price relative to the user's median purchase price, the user's
activity, the share of the user's history in the item's category, how habitual the item
is (``item_repeat_rate``: share of its buyers who bought it again) and the user is
(``user_repeat_share``: share of their bought items bought again), and days since the
user's last event; the item's rank among the user's own candidates by EASE score,
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
from shoprec.models.interactions import Interactions, build_interactions
from shoprec.topk import top_k

NUMERIC = (
    "two_tower_score", "two_tower_rank", "copurchase_score", "ease_score", "log_purchases", "log_days_since",
    "has_interacted", "strongest_signal", "log_popularity", "log_recent_popularity", "log_price_ratio",
    "log_user_purchases", "category_share", "item_repeat_rate", "user_repeat_share", "log_user_days_idle",
    "ease_rank", "purchases_rank", "recency_rank", "copurchase_rank",
)
NEVER_DAYS = 3650.0  # "days since" for items the user never touched


@dataclass
class UserState:
    """Everything the candidate stage knows about users as of one cut-off."""

    inter: Interactions
    days_since: sp.csr_matrix  # days since last event (+1, so an entry is never 0)
    copurchase: sp.csr_matrix  # item x item cosine over purchases
    ease: EASE
    popularity: np.ndarray
    recent_popularity: np.ndarray
    user_median_price: np.ndarray
    user_purchases: np.ndarray
    item_repeat_rate: np.ndarray  # (buyers who bought again + 0.1) / (buyers + 1)
    user_repeat_share: np.ndarray  # (items bought again + 0.1) / (items bought + 1)
    user_days_idle: np.ndarray  # days since the user's last event
    category_share: np.ndarray  # [n_users, n_categories]
    query_emb: np.ndarray  # [n_users, d]
    user_text: np.ndarray  # [n_users, d_text]: normalised signal-weighted mean of history text embeddings
    cold_query_emb: np.ndarray  # [d]: unknown user, empty history
    item_emb: np.ndarray  # [n_items, d]

    def user_texts(self, rows: np.ndarray) -> np.ndarray:
        """History text vectors of matrix ``rows``; zeros for unseen users."""
        return self.user_text[np.maximum(rows, 0)] * (rows >= 0)[:, None]

    def queries(self, rows: np.ndarray) -> np.ndarray:
        """Query embeddings of matrix ``rows``; -1 (unseen user) gets the cold-start vector."""
        return np.where((rows >= 0)[:, None], self.query_emb[np.maximum(rows, 0)], self.cold_query_emb[None, :])


def build_user_state(
    events: pd.DataFrame, catalog: Catalog, weights: dict[str, float], cutoff: pd.Timestamp,
    query_emb_for, item_emb: np.ndarray, recent_days: int = 30, ease_lambda: float = 200.0,
    ease_max_items: int = 20_000,
) -> UserState:
    """Aggregate ``events`` (all before ``cutoff``) into a :class:`UserState`.

    ``query_emb_for(user_ids)`` returns two-tower query embeddings for users in matrix order.
    """
    inter = build_interactions(events, catalog.item_ids, weights)
    ev = events[events["item_id"].isin(inter.item_index.keys())]
    rows = ev["user_id"].map(inter.user_index).to_numpy()
    cols = ev["item_id"].map(inter.item_index).to_numpy()
    age = ((cutoff - ev["timestamp"]).dt.total_seconds() / 86400.0).to_numpy()
    newest = pd.DataFrame({"r": rows, "c": cols, "a": age}).groupby(["r", "c"], sort=False)["a"].min()
    days_since = sp.csr_matrix(
        (newest.to_numpy() + 1.0, (newest.index.get_level_values(0), newest.index.get_level_values(1))),
        shape=inter.weighted.shape, dtype=np.float32,
    )
    bought = inter.purchased.copy()
    bought.data[:] = 1.0
    norms = np.sqrt(np.asarray(bought.sum(axis=0)).ravel())
    inv = sp.diags(1.0 / np.maximum(norms, 1e-9))
    copurchase = (inv @ (bought.T @ bought) @ inv).tocsr()
    copurchase.setdiag(0.0)
    copurchase.eliminate_zeros()
    recent = events[events["timestamp"] >= cutoff - pd.Timedelta(days=recent_days)]
    recent_pop = build_interactions(recent, catalog.item_ids, weights).item_popularity()
    buys = ev[ev["event_type"] == "purchase"]
    price = pd.Series(catalog.price, index=catalog.item_ids)
    median_price = buys.assign(p=buys["item_id"].map(price)).groupby("user_id")["p"].median()
    cat_counts = sp.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, catalog.category_idx[cols])),
        shape=(inter.n_users, catalog.n_categories),
    ).toarray()
    return UserState(
        inter=inter,
        days_since=days_since,
        copurchase=copurchase,
        ease=EASE(inter, ease_lambda, ease_max_items),
        popularity=inter.item_popularity(),
        recent_popularity=recent_pop,
        user_median_price=median_price.reindex(inter.user_ids).fillna(0.0).to_numpy(np.float32),
        user_purchases=np.asarray(inter.purchased.sum(axis=1)).ravel(),
        item_repeat_rate=(_count(inter.purchased >= 2, 0) + 0.1) / (_count(inter.purchased >= 1, 0) + 1.0),
        user_repeat_share=(_count(inter.purchased >= 2, 1) + 0.1) / (_count(inter.purchased >= 1, 1) + 1.0),
        user_days_idle=_row_min(days_since) - 1.0,
        category_share=cat_counts / np.maximum(cat_counts.sum(axis=1, keepdims=True), 1.0),
        query_emb=query_emb_for(inter.user_ids),
        user_text=_normalise(np.asarray(inter.weighted @ catalog.text_emb, dtype=np.float32)),
        cold_query_emb=query_emb_for(np.array([""], dtype=object))[0],
        item_emb=item_emb,
    )


def _count(mask: sp.spmatrix, axis: int) -> np.ndarray:
    return np.asarray(mask.sum(axis=axis), dtype=np.float32).ravel()


def _row_min(m: sp.csr_matrix) -> np.ndarray:
    """Smallest stored value per row (rows are never empty here: every user has an event)."""
    return np.minimum.reduceat(m.data, m.indptr[:-1]) if m.nnz else np.zeros(m.shape[0], np.float32)


def _rank_within_user(user_pos: np.ndarray, values: np.ndarray) -> np.ndarray:
    """0-based rank of each pair among its user's pairs, largest value first (``user_pos`` sorted)."""
    order = np.lexsort((-values, user_pos))
    first = np.searchsorted(user_pos[order], user_pos[order], side="left")
    ranks = np.empty(len(values), dtype=np.float32)
    ranks[order] = np.arange(len(values)) - first
    return ranks


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)


@dataclass
class Candidates:
    user_pos: np.ndarray  # position of the pair's user in the requested rows
    item: np.ndarray  # catalog index
    numeric: np.ndarray  # [n_pairs, len(NUMERIC)]


def candidates(state: UserState, catalog: Catalog, rows: np.ndarray, n_retrieval: int, n_copurchase: int) -> Candidates:
    """Candidate pairs and numeric features for user ``rows`` (matrix rows, -1 = cold user)."""
    tt = state.queries(rows) @ state.item_emb.T
    known = rows >= 0
    safe = np.maximum(rows, 0)
    hist_w = state.inter.weighted[safe].toarray() * known[:, None]
    bought = state.inter.purchased[safe].toarray() * known[:, None]
    co = np.asarray(((bought > 0).astype(np.float32) @ state.copurchase))
    ease = state.ease.item_scores(state.ease.history[safe]) * known[:, None]
    pick = np.zeros_like(tt, dtype=bool)
    np.put_along_axis(pick, top_k(tt, n_retrieval)[0], True, axis=1)
    co_top = np.zeros_like(pick)
    np.put_along_axis(co_top, top_k(ease, n_copurchase)[0], True, axis=1)
    pick |= (co_top & (ease > 0)) | (hist_w > 0)
    u, i = np.nonzero(pick)
    tt_rank = np.argsort(np.argsort(-tt, axis=1, kind="stable"), axis=1, kind="stable")
    days = state.days_since[safe].toarray() * known[:, None]
    days = np.where(days > 0, days - 1.0, NEVER_DAYS)
    price_ratio = catalog.price[i] / np.maximum(state.user_median_price[safe[u]], 1e-3)
    numeric = np.column_stack([
        tt[u, i],
        np.log1p(tt_rank[u, i]),
        co[u, i],
        ease[u, i],
        np.log1p(bought[u, i]),
        np.log1p(days[u, i]),
        (hist_w[u, i] > 0).astype(np.float32),
        hist_w[u, i],
        np.log1p(state.popularity[i]),
        np.log1p(state.recent_popularity[i]),
        np.where(state.user_median_price[safe[u]] > 0, np.log(np.maximum(price_ratio, 1e-3)), 0.0),
        np.log1p(state.user_purchases[safe[u]] * known[u]),
        state.category_share[safe[u], catalog.category_idx[i]] * known[u],
        state.item_repeat_rate[i],
        state.user_repeat_share[safe[u]] * known[u],
        np.log1p(np.where(known[u], state.user_days_idle[safe[u]], NEVER_DAYS)),
        np.log1p(_rank_within_user(u, ease[u, i])),
        np.log1p(_rank_within_user(u, bought[u, i])),
        np.log1p(_rank_within_user(u, -days[u, i])),
        np.log1p(_rank_within_user(u, co[u, i])),
    ]).astype(np.float32)
    return Candidates(user_pos=u, item=i, numeric=numeric)

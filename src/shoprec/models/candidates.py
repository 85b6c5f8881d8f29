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
activity, and the share of the user's history in the item's category; plus content
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

from shoprec.evaluation.topk import top_k
from shoprec.models.baselines import EASE
from shoprec.models.catalog import Catalog
from shoprec.models.interactions import Interactions, build_interactions

NUMERIC = (
    "two_tower_score", "two_tower_rank", "copurchase_score", "ease_score", "log_purchases", "log_days_since",
    "has_interacted", "strongest_signal", "log_popularity", "log_recent_popularity", "log_price_ratio",
    "log_user_purchases", "category_share",
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
        category_share=cat_counts / np.maximum(cat_counts.sum(axis=1, keepdims=True), 1.0),
        query_emb=query_emb_for(inter.user_ids),
        user_text=_normalise(np.asarray(inter.weighted @ catalog.text_emb, dtype=np.float32)),
        cold_query_emb=query_emb_for(np.array([""], dtype=object))[0],
        item_emb=item_emb,
    )


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
    np.put_along_axis(pick, top_k(tt, n_retrieval), True, axis=1)
    co_top = np.zeros_like(pick)
    np.put_along_axis(co_top, top_k(ease, n_copurchase), True, axis=1)
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
    ]).astype(np.float32)
    return Candidates(user_pos=u, item=i, numeric=numeric)

"""Strong simple baselines. A learned model that loses to these is a defect.

Each baseline maps a batch of user rows to a dense score matrix over the catalog
(``score(rows) -> [len(rows), n_items]``); users unseen in train (row -1) get the
popularity scores. The evaluation and the service take the top-K of those scores.

* Popularity: ``s_i = sum_u X_ui`` over the strongest-signal matrix (each shopper
  counts once per item).
* Own history (repeat-buy): the user's own purchase counts first, popularity to fill:
  ``s_ui = P_ui + pop_i / (max(pop) + 1)``; since ``P_ui >= 1`` for bought items and the
  popularity term is below 1, bought items always come first, ordered by count, ties by
  popularity.
* Item-kNN: cosine similarity between item columns of the binary matrix,
  ``S = D^-1/2 X^T X D^-1/2`` (zero diagonal; with ``neighbours > 0`` only that many kept per item), and
  ``s_u = x_u S``.
* EASE (Steck, 2019): the closed-form item-item regression
  ``B = argmin ||X - XB||^2 + lambda ||B||^2  s.t. diag(B) = 0``, solved by
  ``P = (X^T X + lambda I)^-1``, ``B_ij = -P_ij / P_jj`` (``B_jj = 0``); ``s_u = x_u B``.
  The inverse is ``n x n``, so EASE is fitted on the ``max_items`` most popular items, and only on
  items someone bought: an item no one bought has a zero column in ``X``, so ``X^T X + lambda I``
  is block-diagonal with it alone in its block, and its row and column of ``B`` are zero. Leaving
  it out changes no score and keeps the inverse the size of what was bought, not of the catalog.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import scipy.sparse as sp

from shoprec.models.interactions import Interactions


class Scorer(Protocol):
    name: str

    def score(self, rows: np.ndarray) -> np.ndarray: ...


def _binary(m: sp.csr_matrix) -> sp.csr_matrix:
    b = m.copy()
    b.data = np.ones_like(b.data)
    return b


class Popularity:
    name = "popularity"

    def __init__(self, inter: Interactions):
        pop = inter.item_popularity()
        self.scores = (pop / max(pop.max(), 1e-9)).astype(np.float32)

    def score(self, rows: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.scores, (len(rows), len(self.scores))).copy()


class _UserMatrixScorer:
    """Shared plumbing: score known users by ``history[rows] @ model``, cold users by popularity."""

    def __init__(self, inter: Interactions, history: sp.csr_matrix):
        self.history = history
        self.popularity = Popularity(inter)

    def item_scores(self, history_rows: sp.csr_matrix) -> np.ndarray:
        raise NotImplementedError

    # popularity enters known users' scores at this scale: it only breaks ties and fills
    # items the model gives no score
    tie_break = 1e-4

    def score(self, rows: np.ndarray) -> np.ndarray:
        out = self.popularity.score(rows)
        known = rows >= 0
        if known.any():
            scores = self.item_scores(self.history[rows[known]])
            out[known] = scores + self.tie_break * out[known]
        return out


class OwnHistory(_UserMatrixScorer):
    name = "own_history"

    def __init__(self, inter: Interactions):
        super().__init__(inter, inter.purchased)

    tie_break = 1.0 / (1.0 + 1e-3)  # popularity scores are in [0, 1]: below one purchase

    def item_scores(self, history_rows: sp.csr_matrix) -> np.ndarray:
        return history_rows.toarray()


class ItemKNN(_UserMatrixScorer):
    name = "itemknn"

    def __init__(self, inter: Interactions, neighbours: int = 0):
        super().__init__(inter, _binary(inter.purchased))
        x = self.history
        norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel())
        inv = sp.diags(1.0 / np.maximum(norms, 1e-9))
        sim = (inv @ (x.T @ x) @ inv).tocsr()
        sim.setdiag(0.0)
        sim.eliminate_zeros()
        self.sim = _keep_top_per_row(sim, neighbours) if neighbours > 0 else sim

    def item_scores(self, history_rows: sp.csr_matrix) -> np.ndarray:
        return np.asarray((history_rows @ self.sim).todense())


class EASE(_UserMatrixScorer):
    name = "ease"

    def __init__(self, inter: Interactions, lam: float = 200.0, max_items: int = 20_000):
        super().__init__(inter, _binary(inter.purchased))
        pop = np.asarray(self.history.sum(axis=0)).ravel()
        bought = np.flatnonzero(pop > 0)
        self.cols = np.sort(bought[np.argsort(-pop[bought], kind="stable")[:max_items]])  # the modelled items
        self.col_of = np.full(inter.n_items, -1, np.int64)  # item -> its column in ``b`` (-1: not modelled)
        self.col_of[self.cols] = np.arange(len(self.cols))
        x = self.history[:, self.cols]
        gram = (x.T @ x).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += lam
        p = np.linalg.inv(gram)
        b = -p / np.diag(p)[None, :]
        b[np.diag_indices_from(b)] = 0.0
        self.b = b.astype(np.float32)
        self.n_items = inter.n_items

    def column_scores(self, history_rows: sp.csr_matrix) -> np.ndarray:
        """``x_u B`` over the modelled items only (``[n, len(cols)]``; every other item scores 0)."""
        if len(self.cols) == self.n_items:  # every item modelled: no column slice
            return np.asarray(history_rows @ self.b, dtype=np.float32)
        rows = history_rows.tocsr()
        col = self.col_of[rows.indices]
        keep = col >= 0  # the slice x[:, cols] by re-numbering the few stored entries (scipy's slice costs more)
        row = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))
        indptr = np.concatenate([[0], np.cumsum(np.bincount(row[keep], minlength=rows.shape[0]))])
        sliced = sp.csr_matrix((rows.data[keep], col[keep], indptr), shape=(rows.shape[0], len(self.cols)))
        return np.asarray(sliced @ self.b, dtype=np.float32)

    def item_scores(self, history_rows: sp.csr_matrix) -> np.ndarray:
        if len(self.cols) == self.n_items:
            return self.column_scores(history_rows)
        out = np.zeros((history_rows.shape[0], self.n_items), dtype=np.float32)
        out[:, self.cols] = self.column_scores(history_rows)
        return out


def _keep_top_per_row(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the ``k`` largest entries of each row (the item's nearest neighbours)."""
    m = m.tocsr()
    indptr, indices, data = [0], [], []
    for r in range(m.shape[0]):
        start, end = m.indptr[r], m.indptr[r + 1]
        vals = m.data[start:end]
        if len(vals) > k:
            keep = np.argpartition(-vals, k)[:k]
            indices.append(m.indices[start:end][keep])
            data.append(vals[keep])
        else:
            indices.append(m.indices[start:end])
            data.append(vals)
        indptr.append(indptr[-1] + len(data[-1]))
    return sp.csr_matrix(
        (np.concatenate(data) if data else [], np.concatenate(indices) if indices else [], indptr), shape=m.shape
    )

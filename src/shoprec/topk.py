"""The k best of a list of scores: one rule for every ranked list in shoprec.

Best score first; among equal scores the lower index, both in the order and in the cut:
of the items tied at the k-th score, the lowest-indexed ones that fill the k slots are
kept, so the same scores always give the same list (``argpartition`` alone cuts such a
tie arbitrarily).

Cost per row of N scores: the k-th largest score ``t`` by ``np.partition`` (O(N)), a mask
of the scores above ``t`` plus a running count of the ties at ``t``, then a sort of the
k kept items (O(k log k)).
"""

from __future__ import annotations

import numpy as np


def best_first(indices: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort each row by score descending, ties by lower index (a lexicographic sort on k items)."""
    order = np.lexsort((indices, -scores), axis=1)
    return (np.take_along_axis(indices, order, axis=1).astype(np.int64),
            np.take_along_axis(scores, order, axis=1).astype(np.float32))


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``min(k, N)`` best columns of each row of ``scores`` [rows, N] and their scores, best first."""
    n, total = scores.shape
    k = min(k, total)
    if k == 0 or n == 0:
        return np.empty((n, 0), np.int64), np.empty((n, 0), np.float32)
    t = np.partition(scores, total - k, axis=1)[:, total - k, None]
    above = scores > t
    tied = scores == t
    room = k - above.sum(axis=1, keepdims=True)
    keep = above | (tied & (np.cumsum(tied, axis=1, dtype=np.int32) <= room))
    indices = np.nonzero(keep)[1].reshape(n, k)
    return best_first(indices, np.take_along_axis(scores, indices, axis=1))


def top_rows(rows: np.ndarray, scores: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` best of ``rows`` by ``scores`` (aligned), best first, equal scores by lower row.

    ``rows`` must be increasing (as ``np.flatnonzero`` gives them), so that lower position means lower row.
    """
    best, _ = top_k(np.asarray(scores)[None, :], n)
    return rows[best[0]]

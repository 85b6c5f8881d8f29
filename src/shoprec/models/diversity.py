"""Maximal marginal relevance (Carbonell & Goldstein, 1998) re-ranking.

Greedy: with relevance ``r_i`` scaled to [0, 1] over the candidates and ``S`` the set
chosen so far, pick

    argmax_i  (1 - w) r_i - w max_{j in S} cos(e_i, e_j)

until ``k`` items are chosen. ``w = 0`` is the plain relevance order; larger ``w`` trades
relevance for lists that do not repeat the same kind of product.
"""

from __future__ import annotations

import numpy as np


def mmr(scores: np.ndarray, embeddings: np.ndarray, weight: float, k: int) -> np.ndarray:
    """Positions into ``scores`` of the ``k`` chosen candidates, in order."""
    k = min(k, len(scores))
    if weight <= 0 or k == 0:
        return np.argsort(-scores, kind="stable")[:k]
    span = scores.max() - scores.min()
    rel = (scores - scores.min()) / span if span > 0 else np.ones_like(scores)
    sims = embeddings @ embeddings.T
    chosen: list[int] = []
    max_sim = np.full(len(scores), -np.inf)
    available = np.ones(len(scores), dtype=bool)
    for _ in range(k):
        penalty = np.where(np.isfinite(max_sim), max_sim, 0.0)
        value = np.where(available, (1 - weight) * rel - weight * penalty, -np.inf)
        best = int(np.argmax(value))
        chosen.append(best)
        available[best] = False
        max_sim = np.maximum(max_sim, sims[best])
    return np.asarray(chosen)

"""Top-K ranking metrics, written out so each formula can be checked by hand.

For one user with ranked list ``r_1..r_K`` and ground-truth set ``T``
(``rel_i = 1`` when ``r_i`` is in ``T``):

* Recall@K   = sum_i rel_i / min(K, |T|)      (the denominator caps at K, so a perfect
  list scores 1 even when the user bought more than K items);
* HitRate@K  = 1 if any rel_i else 0;
* nDCG@K     = DCG / IDCG with DCG = sum_i rel_i / log2(i + 1) and
  IDCG = sum_{i=1..min(K,|T|)} 1 / log2(i + 1)  (binary gains);
* MAP@K      = (1 / min(K, |T|)) * sum_i rel_i * Precision@i.

Users with an empty truth set are skipped by the caller; metrics are averaged over
the users that remain. Beyond accuracy:

* coverage@K: share of the catalog that appears in at least one user's top-K;
* diversity@K (intra-list): mean pairwise ``1 - cos(e_a, e_b)`` between the items of a
  list, with item embeddings ``e`` (L2-normalised);
* novelty@K: mean of ``-log2 p(i)`` over recommended items, ``p(i)`` the item's share of
  training interactions (rarer items are more novel).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

KS = (10, 20, 50, 100)


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2))


def user_metrics(ranked: Sequence, truth: set, k: int) -> dict[str, float]:
    """Recall, HitRate, nDCG and MAP at ``k`` for one user (truth must be non-empty)."""
    top = list(ranked[:k])
    rel = np.fromiter((item in truth for item in top), dtype=float, count=len(top))
    denom = min(k, len(truth))
    hits = rel.sum()
    disc = _discounts(k)
    dcg = float((rel * disc[: len(rel)]).sum())
    idcg = float(disc[:denom].sum())
    precision_at_i = np.cumsum(rel) / np.arange(1, len(rel) + 1) if len(rel) else rel
    return {
        f"recall@{k}": hits / denom,
        f"hitrate@{k}": float(hits > 0),
        f"ndcg@{k}": dcg / idcg,
        f"map@{k}": float((precision_at_i * rel).sum()) / denom,
    }


def ranking_metrics(
    lists: Mapping[object, Sequence], truth: Mapping[object, set], ks: Iterable[int] = KS
) -> dict[str, float]:
    """Mean per-user metrics over users with non-empty truth; a user with no list scores 0."""
    users = [u for u, t in truth.items() if t]
    out: dict[str, float] = {"users": float(len(users))}
    for k in ks:
        sums: dict[str, float] = {}
        for u in users:
            for name, value in user_metrics(lists.get(u, ()), truth[u], k).items():
                sums[name] = sums.get(name, 0.0) + value
        out.update({name: total / max(len(users), 1) for name, total in sums.items()})
    return out


def coverage(lists: Mapping[object, Sequence], catalog_size: int, k: int) -> float:
    seen = {item for ranked in lists.values() for item in ranked[:k]}
    return len(seen) / catalog_size if catalog_size else 0.0


def intra_list_diversity(lists: Mapping[object, Sequence[int]], embeddings: np.ndarray, k: int) -> float:
    """Mean pairwise cosine distance within each list; lists hold row indices of ``embeddings``."""
    values = []
    for ranked in lists.values():
        idx = np.asarray(ranked[:k], dtype=int)
        if len(idx) < 2:
            continue
        e = embeddings[idx]
        sims = e @ e.T
        n = len(idx)
        values.append(1.0 - (sims.sum() - np.trace(sims)) / (n * (n - 1)))
    return float(np.mean(values)) if values else 0.0


def novelty(lists: Mapping[object, Sequence[int]], item_share: np.ndarray, k: int) -> float:
    """Mean self-information ``-log2 p(i)`` of recommended items (``p`` floored at 1e-9)."""
    idx = [i for ranked in lists.values() for i in ranked[:k]]
    if not idx:
        return 0.0
    return float(np.mean(-np.log2(np.maximum(item_share[np.asarray(idx, dtype=int)], 1e-9))))


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve by the rank-sum (Mann-Whitney U) identity, ties averaged."""
    labels = np.asarray(labels, dtype=bool)
    n_pos, n_neg = labels.sum(), (~labels).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = np.asarray(scores)[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def log_loss(labels: np.ndarray, probs: np.ndarray, eps: float = 1e-7) -> float:
    p = np.clip(np.asarray(probs, dtype=float), eps, 1 - eps)
    y = np.asarray(labels, dtype=float)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))

"""Recall@K on slices of users and items, to see where a system wins or loses.

* ``activity:<bucket>``: users by their number of train purchases (0, 1-2, 3-9, 10+);
* ``popularity:<bucket>``: truth items by train popularity: ``head`` items carry the
  first 50% of interaction mass, ``torso`` the next 30%, ``tail`` the rest (a user's
  truth is restricted to the bucket, users with none there skipped);
* ``cold_items``: test purchases of items with no train event at all (content-only
  placement; id-based systems cannot rank them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from shoprec.evaluation.metrics import ranking_metrics

ACTIVITY = ((0, 0, "0"), (1, 2, "1-2"), (3, 9, "3-9"), (10, np.inf, "10+"))


def popularity_buckets(item_ids: np.ndarray, popularity: np.ndarray) -> dict[str, str]:
    order = np.argsort(-popularity, kind="stable")
    mass = np.cumsum(popularity[order]) / max(popularity.sum(), 1e-9)
    labels = np.where(mass <= 0.5, "head", np.where(mass <= 0.8, "torso", "tail"))
    labels[0] = "head"  # the single most popular item is head even if it alone passes 50%
    return dict(zip(item_ids[order], labels))


def slice_recalls(
    lists: Mapping[str, Sequence], truth: Mapping[str, set], cold_truth: Mapping[str, set],
    purchases: Mapping[str, int], item_bucket: Mapping[str, str], k: int = 20,
) -> dict[str, float]:
    out: dict[str, float] = {}

    def recall(sub_truth: dict) -> None | float:
        sub_truth = {u: t for u, t in sub_truth.items() if t}
        return round(ranking_metrics(lists, sub_truth, (k,))[f"recall@{k}"], 6) if sub_truth else None

    for low, high, name in ACTIVITY:
        value = recall({u: t for u, t in truth.items() if low <= purchases.get(u, 0) <= high})
        if value is not None:
            out[f"activity:{name}"] = value
    for bucket in ("head", "torso", "tail"):
        value = recall({u: {i for i in t if item_bucket.get(i) == bucket} for u, t in truth.items()})
        if value is not None:
            out[f"popularity:{bucket}"] = value
    value = recall(dict(cold_truth))
    if value is not None:
        out["cold_items"] = value
    return out

"""Lists built from the sample shoppers' true tastes (an oracle) and from popularity alone, for simulated
experiments whose better arm is known in advance (the simulator's tests and the experiment flow's)."""

from __future__ import annotations

import numpy as np

from shoprec.config import SampleParams
from shoprec.data.sources.sample import behaviour
from shoprec.experiments import simulate

SAMPLE = SampleParams(seed=3, n_items=600, n_users=1500, n_events=40_000, days=60)


def tastes(shop: behaviour.Shop, users: np.ndarray) -> np.ndarray:
    """How likely each shopper is to want each item: sum over categories of taste x pop x exp(affinity), normalised
    within the category (the generator's choice rule, without its candidate sampling)."""
    taste = np.diff(np.concatenate([np.zeros((len(users), 1)), shop.users.taste_cdf[users]], axis=1), axis=1)
    items = np.arange(shop.cat.n)
    weight = shop.cat.popularity * np.exp(behaviour._affinity(shop.users, shop.cat, users[:, None], items[None, :]))
    category = shop.cat.category
    totals = np.stack([weight[:, category == c].sum(1) for c in range(taste.shape[1])], axis=1)
    return taste[:, category] * weight / np.maximum(totals[:, category], 1e-12)


def lists_of(scores: np.ndarray, users: np.ndarray) -> dict[str, list[str]]:
    top = np.argsort(-scores, axis=1)[:, :simulate.LIST_LENGTH]
    return {f"U{u:05d}": [f"I{i:06d}" for i in row] for u, row in zip(users, top)}


def oracle_and_popularity(shop: behaviour.Shop) -> dict[str, dict[str, list[str]]]:
    """``tastes``: each shopper's 20 likeliest wants; ``popularity``: the 20 most popular items for everyone."""
    users = np.arange(len(shop.users.sessions))
    popular = np.broadcast_to(shop.cat.popularity, (len(users), shop.cat.n))
    return {"popularity": lists_of(popular, users), "tastes": lists_of(tastes(shop, users), users)}

"""Baselines on a tiny hand-made interaction log, checked against their definitions."""

import numpy as np
import pandas as pd
import pytest

from shoprec.evaluation.lists import recommend_batches
from shoprec.models.baselines import EASE, ItemKNN, OwnHistory, Popularity
from shoprec.models.interactions import build_interactions
from shoprec.topk import top_k

WEIGHTS = {"view": 0.1, "click": 0.3, "add_to_cart": 0.6, "purchase": 1.0}


def _events(rows):
    return pd.DataFrame(rows, columns=["user_id", "item_id", "event_type"])


@pytest.fixture
def inter():
    ev = _events(
        [
            ("u1", "a", "purchase"), ("u1", "a", "purchase"), ("u1", "b", "purchase"),
            ("u2", "a", "purchase"), ("u2", "c", "purchase"),
            ("u3", "b", "purchase"), ("u3", "c", "view"), ("u3", "c", "view"),
        ]
    )
    return build_interactions(ev, np.array(["a", "b", "c", "d"]), WEIGHTS)


def test_interactions_keep_strongest_signal_and_purchase_counts(inter):
    w = inter.weighted.toarray()
    assert w[inter.user_index["u3"], inter.item_index["c"]] == pytest.approx(0.1)  # two views count once
    assert inter.purchased.toarray()[inter.user_index["u1"], inter.item_index["a"]] == 2
    assert inter.n_items == 4 and inter.n_users == 3


def test_popularity_counts_each_shopper_once(inter):
    s = Popularity(inter).score(np.array([0]))[0]
    # a: u1, u2 -> 2; b: u1, u3 -> 2; c: 1 + 0.1; d: 0
    assert s[0] == s[1] == 1.0 and s[2] == pytest.approx(0.55) and s[3] == 0.0


def test_own_history_ranks_bought_items_by_count_then_popularity(inter):
    rows = inter.rows(["u1", "unknown"])
    scores = OwnHistory(inter).score(rows)
    assert list(top_k(scores, 4)[0][0]) == [0, 1, 2, 3]  # a (2 buys), b (1 buy), then popularity
    assert rows[1] == -1 and list(top_k(scores, 2)[0][1]) == [0, 1]  # cold user: popularity


def test_itemknn_scores_cosine_neighbours(inter):
    s = ItemKNN(inter).score(inter.rows(["u2"]))[0]
    # u2 bought a, c; binary purchase columns: a=(1,1,0) b=(1,0,1) c=(0,1,0)
    # cos(a,b)=1/2, cos(c,b)=0 -> b scores 0.5 (+ tie-break), d only the tie-break
    assert s[1] == pytest.approx(0.5, abs=1e-3)
    assert s[3] < 1e-3


def test_ease_matches_closed_form(inter):
    lam = 0.5
    ease = EASE(inter, lam=lam)
    x = (inter.purchased.toarray() > 0).astype(float)
    p = np.linalg.inv(x.T @ x + lam * np.eye(4))
    b = -p / np.diag(p)
    np.fill_diagonal(b, 0.0)
    # d was never bought: its row and column of the full B are zero, so EASE models a, b, c only
    np.testing.assert_allclose(b[3], 0.0, atol=1e-12)
    np.testing.assert_allclose(b[:, 3], 0.0, atol=1e-12)
    assert list(ease.cols) == [0, 1, 2] and list(ease.col_of) == [0, 1, 2, -1]
    np.testing.assert_allclose(ease.b, b[:3, :3], rtol=1e-4, atol=1e-5)
    rows = inter.rows(["u1", "u2", "u3"])
    np.testing.assert_allclose(ease.item_scores(ease.history[rows]), x @ b, rtol=1e-4, atol=1e-5)


def test_new_view_masks_train_purchases(inter):
    rows = inter.rows(["u1"])
    (_, top), = list(recommend_batches(OwnHistory(inter), rows, 2, inter.purchased[rows]))
    assert set(top[0]) == {2, 3}

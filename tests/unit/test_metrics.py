"""Ranking metrics against cases computed by hand."""

import math

import numpy as np
import pytest

from shoprec.evaluation.metrics import auc, coverage, intra_list_diversity, log_loss, novelty, ranking_metrics, user_metrics


def test_user_metrics_by_hand():
    # hits at ranks 1 and 3, truth has 3 items, K = 4
    m = user_metrics(["a", "x", "b", "y"], {"a", "b", "c"}, 4)
    assert m["recall@4"] == pytest.approx(2 / 3)
    assert m["hitrate@4"] == 1.0
    dcg = 1 / math.log2(2) + 1 / math.log2(4)
    idcg = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert m["ndcg@4"] == pytest.approx(dcg / idcg)
    assert m["map@4"] == pytest.approx((1 / 1 + 2 / 3) / 3)


def test_recall_denominator_caps_at_k():
    truth = {str(i) for i in range(10)}
    m = user_metrics(["0", "1"], truth, 2)
    assert m["recall@2"] == 1.0 and m["ndcg@2"] == pytest.approx(1.0) and m["map@2"] == pytest.approx(1.0)


def test_ranking_metrics_averages_users_with_truth_and_zero_for_missing_lists():
    lists = {"u1": ["a"], "u3": ["z"]}
    truth = {"u1": {"a"}, "u2": {"b"}, "u3": set()}
    m = ranking_metrics(lists, truth, ks=(1,))
    assert m["users"] == 2
    assert m["recall@1"] == pytest.approx(0.5)


def test_beyond_accuracy_metrics():
    lists = {"u1": [0, 1], "u2": [0, 2]}
    assert coverage(lists, catalog_size=4, k=2) == pytest.approx(0.75)
    emb = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    # u1: identical items (distance 0), u2: orthogonal items (distance 1)
    assert intra_list_diversity(lists, emb, k=2) == pytest.approx(0.5)
    share = np.array([0.5, 0.25, 0.25])
    assert novelty(lists, share, k=2) == pytest.approx((1 + 2 + 1 + 2) / 4)


def test_auc_and_log_loss():
    assert auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert auc(np.array([0, 1]), np.array([0.5, 0.5])) == pytest.approx(0.5)
    assert log_loss(np.array([1, 0]), np.array([0.5, 0.5])) == pytest.approx(math.log(2))

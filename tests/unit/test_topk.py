"""The one top-k rule: best score first, ties by lower index, in the order and in the cut."""

from __future__ import annotations

import numpy as np
import pytest

from shoprec.topk import top_k, top_rows


def test_ties_at_the_cut_keep_the_lowest_indices():
    scores = np.array([[0.5, 0.9, 0.5, 0.5, 0.1, 0.5]])
    indices, values = top_k(scores, 3)
    assert indices.tolist() == [[1, 0, 2]] and values[0].tolist() == pytest.approx([0.9, 0.5, 0.5])


def test_matches_a_full_stable_sort_on_random_scores_with_many_ties():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=(50, 40)).astype(np.float32)  # few distinct values: ties everywhere
    scores[3] = -np.inf  # a fully masked row
    for k in (1, 7, 40, 100):
        want = np.argsort(-scores, axis=1, kind="stable")[:, :min(k, 40)]
        np.testing.assert_array_equal(top_k(scores, k)[0], want)


def test_empty_and_zero():
    assert top_k(np.zeros((2, 5)), 0)[0].shape == (2, 0)
    assert top_k(np.zeros((0, 5)), 3)[0].shape == (0, 0)


def test_top_rows_names_rows_not_positions():
    rows = np.array([3, 8, 9, 20])
    assert top_rows(rows, np.array([0.2, 0.7, 0.7, 0.1]), 2).tolist() == [8, 9]
    assert top_rows(rows[:0], np.array([]), 5).tolist() == []

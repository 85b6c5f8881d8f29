"""Serving ANN indexes: exact top-k against a numpy reference, HNSW recall, persistence, selection."""

from __future__ import annotations

import numpy as np
import pytest
from vectors import clustered_unit_vectors, perturbed_queries, recall_at_k

from shoprec.search.index.vectors import (
    ExactIndex,
    FaissIndex,
    FilteredSearch,
    build_index,
)


def reference_top_k(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Full sort of every score row by (score descending, index ascending)."""
    scores = queries @ vectors.T
    ids = np.broadcast_to(np.arange(len(vectors)), scores.shape)
    order = np.lexsort((ids, -scores), axis=1)[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


@pytest.fixture(scope="module")
def catalog() -> np.ndarray:
    return clustered_unit_vectors(20_000, clusters=200, seed=7)


@pytest.fixture(scope="module")
def queries(catalog) -> np.ndarray:
    return perturbed_queries(catalog, 300, seed=8)


@pytest.fixture(scope="module")
def hnsw(catalog) -> FaissIndex:
    return FaissIndex(catalog)  # the serving defaults: m 32, ef_construction 80, ef_search 256


@pytest.mark.parametrize("k", [1, 10, 499, 500, 800])
def test_exact_matches_numpy_reference_with_ties_and_k_beyond_catalog(k):
    # Small integer vectors: every dot product is exact in float32, so many scores tie
    # and the tie order (lower index first) is checked, not left to rounding.
    rng = np.random.default_rng(0)
    vectors = rng.integers(-2, 3, size=(500, 8)).astype(np.float32)
    queries = rng.integers(-2, 3, size=(40, 8)).astype(np.float32)
    indices, scores = ExactIndex(vectors).search(queries, k)
    want_indices, want_scores = reference_top_k(vectors, queries, k)
    assert indices.dtype == np.int64 and scores.dtype == np.float32
    assert indices.shape == (40, min(k, 500))
    np.testing.assert_array_equal(indices, want_indices)
    np.testing.assert_array_equal(scores, want_scores)


def test_exact_batches_larger_than_one_score_chunk_match_reference():
    # 2,000 items x 17,000 queries exceeds one chunk of the score matrix (2^25 scores).
    rng = np.random.default_rng(1)
    vectors = rng.integers(-2, 3, size=(2_000, 8)).astype(np.float32)
    queries = rng.integers(-2, 3, size=(17_000, 8)).astype(np.float32)
    indices, scores = ExactIndex(vectors).search(queries, 20)
    rows = np.r_[0:50, 16_750:16_800, 16_950:17_000]
    want_indices, want_scores = reference_top_k(vectors, queries[rows], 20)
    np.testing.assert_array_equal(indices[rows], want_indices)
    np.testing.assert_array_equal(scores[rows], want_scores)


def test_hnsw_recall_at_100_against_exact(catalog, queries, hnsw):
    truth, _ = ExactIndex(catalog).search(queries, 100)
    found, scores = hnsw.search(queries, 100)
    assert found.shape == (300, 100) and found.dtype == np.int64 and scores.dtype == np.float32
    assert recall_at_k(found, truth) >= 0.95
    # Scores are the items' inner products with the query, best first.
    np.testing.assert_allclose(scores, np.einsum("nd,nkd->nk", queries, catalog[found]), atol=1e-5)
    assert (np.diff(scores, axis=1) <= 0).all()


def test_hnsw_save_load_round_trip_and_rebuild_are_identical(catalog, queries, hnsw, tmp_path):
    want = hnsw.search(queries, 50)
    loaded = FaissIndex.load(hnsw.save(tmp_path / "items.faiss"))
    assert loaded.ef_search == hnsw.ef_search == 256 and len(loaded) == len(catalog)
    rebuilt = FaissIndex(catalog)  # single-threaded build: the same graph again
    for index in (loaded, rebuilt):
        got = index.search(queries, 50)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize("ef_search", [128, 1])  # a list shorter than k is widened to k for the call
def test_hnsw_k_beyond_catalog_returns_every_item_without_padding(ef_search):
    vectors = clustered_unit_vectors(60, clusters=5, seed=3)
    queries = perturbed_queries(vectors, 4, seed=4)
    indices, scores = FaissIndex(vectors, m=8, ef_search=ef_search).search(queries, 100)
    want_indices, want_scores = reference_top_k(vectors, queries, 100)
    assert indices.shape == (4, 60)
    np.testing.assert_array_equal(np.sort(indices, axis=1), np.tile(np.arange(60), (4, 1)))
    np.testing.assert_array_equal(indices, want_indices)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)


def test_auto_picks_exact_below_threshold_and_faiss_at_it():
    vectors = clustered_unit_vectors(200, clusters=10, seed=5)
    assert isinstance(build_index(vectors[:199], "auto", threshold=200), ExactIndex)
    assert isinstance(build_index(vectors, "auto", threshold=200), FaissIndex)
    assert isinstance(build_index(vectors, "exact", threshold=10), ExactIndex)
    assert isinstance(build_index(vectors[:5], "faiss"), FaissIndex)


def test_unknown_kind_names_the_choices():
    with pytest.raises(ValueError, match=r"unknown index kind 'hnsw'; expected one of exact, faiss, auto"):
        build_index(np.eye(4, dtype=np.float32), kind="hnsw")


def _allowed_top(vectors: np.ndarray, query: np.ndarray, allowed: np.ndarray, k: int) -> np.ndarray:
    rows = np.flatnonzero(allowed)
    return rows[reference_top_k(vectors[rows], query[None, :], k)[0][0]]


def test_filtered_search_is_exact_without_an_index_or_with_few_allowed_items(catalog, queries, hnsw):
    rng = np.random.default_rng(3)
    plain, with_index = FilteredSearch(catalog), FilteredSearch(catalog, hnsw, exact_below=2_000)
    everything = np.ones(len(catalog), bool)
    few = rng.random(len(catalog)) < 0.05  # ~1,000 allowed: scored exactly even with the index
    for q in queries[:20]:
        np.testing.assert_array_equal(plain.top(q, everything, 50), reference_top_k(catalog, q[None, :], 50)[0][0])
        np.testing.assert_array_equal(plain.top(q, few, 50), _allowed_top(catalog, q, few, 50))
        np.testing.assert_array_equal(with_index.top(q, few, 50), _allowed_top(catalog, q, few, 50))
    assert len(plain.top(queries[0], np.zeros(len(catalog), bool), 50)) == 0


def test_filtered_search_over_hnsw_keeps_only_allowed_items_and_finds_most_of_the_exact_ones(catalog, queries, hnsw):
    rng = np.random.default_rng(4)
    search = FilteredSearch(catalog, hnsw, exact_below=0)  # always the index, over-fetched by 1 / allowed share
    allowed = rng.random(len(catalog)) < 0.5
    found = [search.top(q, allowed, 50) for q in queries[:100]]
    assert all(allowed[f].all() and len(f) == len(set(f)) for f in found)
    recall = np.mean([len(set(f) & set(_allowed_top(catalog, q, allowed, 50))) / 50 for f, q in zip(found, queries)])
    assert recall >= 0.9, recall
    assert np.mean([len(f) for f in found]) >= 45  # ~k kept after the filter
    capped = FilteredSearch(catalog, hnsw, exact_below=0, max_fetch=60)
    sparse = rng.random(len(catalog)) < 0.1  # would want 500 candidates, gets 60: fewer than k survive
    np.testing.assert_array_equal(capped.top(queries[0], sparse, 50), _allowed_top(catalog, queries[0], sparse, 50))
    retried = FilteredSearch(catalog, hnsw, exact_below=0, max_fetch=200).top(queries[1], sparse, 50)  # 200, then 800
    assert len(retried) == 50 and sparse[retried].all()
    assert len(set(retried) & set(_allowed_top(catalog, queries[1], sparse, 50))) >= 45


def test_filtered_search_answers_exactly_when_the_filter_excludes_the_query_neighbourhood(catalog, queries, hnsw):
    q = queries[0]
    near = reference_top_k(catalog, q[None, :], 3000)[0][0]
    allowed = np.ones(len(catalog), bool)
    allowed[near] = False  # 85% allowed, but none of the 3,000 items the graph would return
    found = FilteredSearch(catalog, hnsw, exact_below=0).top(q, allowed, 50)
    np.testing.assert_array_equal(found, _allowed_top(catalog, q, allowed, 50))
    with pytest.raises(ValueError, match="the index holds 20,000 vectors, the catalog 100"):
        FilteredSearch(catalog[:100], hnsw)

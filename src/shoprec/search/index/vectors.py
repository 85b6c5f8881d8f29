"""Nearest-neighbour search by inner product: the item index of /similar and the semantic search leg.

The score
    Item and user towers emit L2-normalised vectors, so for a query ``q`` and item ``v``
    ``score(q, v) = q · v = |q| |v| cos θ = cos θ``: maximum inner product search *is*
    cosine search, and on the unit sphere also Euclidean search, since
    ``|q - v|² = 2 - 2 q · v`` is decreasing in the score. Both indexes return the raw
    inner product, best first (ties broken by the lower catalog row).

Why exact below a threshold
    Exact top-k is one float32 matrix product (``n x d`` by ``d x N``) and an
    ``O(N)`` selection (:mod:`shoprec.topk`): for a catalog of 5k x 64 that is 320k multiply-adds,
    microseconds, with perfect recall and nothing to build, tune or ship. The cost grows
    linearly with ``N`` (at 1M items a query reads all 256 MB of vectors), so past
    ``threshold`` items an approximate index pays for itself.

Why HNSW
    A hierarchical navigable small-world graph links every item to ``m`` near neighbours
    on level 0 and to fewer, longer-range ones on sparser upper levels (an item reaches
    level ``l`` with probability ``~ m^-l``). A query greedily descends from the top
    entry point, so it makes ``O(log N)`` hops and scores a few thousand vectors instead
    of ``N``. ``ef_construction`` is the candidate list while linking (graph quality,
    build time); ``ef_search`` is the candidate list while querying, which trades
    latency for recall at query time without rebuilding the graph (a search for more than
    ``ef_search`` items widens the list to ``k`` for that call). No training step, unlike
    IVF/PQ, so the catalog can simply be re-indexed when it changes.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from shoprec.topk import best_first, top_k, top_rows

KINDS = ("exact", "faiss", "auto")

# Scores per matrix product in ExactIndex (queries are chunked): ~128 MB of float32 at a time.
_SCORE_BUDGET = 1 << 25


def _as_matrix(x: np.ndarray, name: str, dim: int | None = None) -> np.ndarray:
    out = np.ascontiguousarray(x, dtype=np.float32)
    if out.ndim != 2 or (dim is not None and out.shape[1] != dim):
        want = f"[n, {dim}]" if dim is not None else "[n, d]"
        raise ValueError(f"{name} must be a {want} matrix, got shape {out.shape}")
    return out


def _catalog(vectors: np.ndarray) -> np.ndarray:
    out = _as_matrix(vectors, "vectors")
    if len(out) == 0:
        raise ValueError("cannot index an empty catalog")
    return out


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")


class ExactIndex:
    """Brute-force top-k: ``scores = Q Vᵀ`` and a linear-time selection per row."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = _catalog(vectors)

    def __len__(self) -> int:
        return len(self.vectors)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(indices [n, k] int64, scores [n, k] float32)``, best first; ``k > N`` gives all N."""
        _check_k(k)
        queries = _as_matrix(queries, "queries", self.vectors.shape[1])
        k = min(k, len(self.vectors))
        chunk = max(1, _SCORE_BUDGET // len(self.vectors))
        parts = [top_k(queries[i:i + chunk] @ self.vectors.T, k) for i in range(0, len(queries), chunk)]
        if not parts:
            return np.empty((0, k), np.int64), np.empty((0, k), np.float32)
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


class FaissIndex:
    """faiss HNSW (flat storage) with the inner-product metric.

    Determinism: faiss inserts vectors into the graph in parallel in an unspecified
    order (faiss wiki, "Threads and asynchronous calls": HNSW ``add`` is not
    reproducible with several threads; search is). The build therefore runs with one
    OpenMP thread, so the same vectors always give the same graph and the same answers;
    the cost is build time, which is paid offline: ``save`` the index and ``load`` it at
    serving start. Searches keep all threads (each query is searched independently).
    """

    def __init__(self, vectors: np.ndarray, m: int = 32, ef_construction: int = 80, ef_search: int = 256) -> None:
        vectors = _catalog(vectors)
        index = faiss.IndexHNSWFlat(vectors.shape[1], m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            index.add(vectors)
        finally:
            faiss.omp_set_num_threads(threads)
        self._index = index
        self.ef_search = ef_search

    def __len__(self) -> int:
        return self._index.ntotal

    @property
    def ef_search(self) -> int:
        return self._index.hnsw.efSearch

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        self._index.hnsw.efSearch = value

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(indices [n, k] int64, scores [n, k] float32)``, best first; ``k > N`` gives all N.

        HNSW pads with ``-1`` when it scores fewer than ``k`` items (always when
        ``k > N``; also when its candidate list is shorter than ``k``, or part of the graph
        is unreachable). ``k`` is capped at ``N``, the list widened to ``k``, and any row
        still padded (a safety net: a graph cut off from its entry point) is answered
        exactly from the index's own flat storage, so every row holds ``k`` real items.
        """
        _check_k(k)
        queries = _as_matrix(queries, "queries", self._index.d)
        k = min(k, self._index.ntotal)
        # a candidate list shorter than k leaves slots empty, which the exact fallback below would fill
        # at the cost of a full scan: widen it for this call instead (per-call parameters: thread-safe)
        wide = faiss.SearchParametersHNSW(efSearch=k) if k > self.ef_search else None
        scores, indices = self._index.search(queries, k, params=wide)
        padded = (indices < 0).any(axis=1)
        if padded.any():
            flat = faiss.downcast_index(self._index.storage)
            scores[padded], indices[padded] = flat.search(queries[padded], k)
        return best_first(indices, scores)

    def save(self, path: Path | str) -> Path:
        """Graph, vectors and ``ef_search`` in faiss's own format."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self._index, str(path))
        return path

    @classmethod
    def load(cls, path: Path | str) -> FaissIndex:
        index = faiss.read_index(str(path))
        if not isinstance(index, faiss.IndexHNSWFlat) or index.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise ValueError(f"{path} is not an inner-product IndexHNSWFlat")
        out = cls.__new__(cls)
        out._index = index
        return out


VectorIndex = ExactIndex | FaissIndex  # what ``search(queries, k)`` is asked of


def build_index(
    vectors: np.ndarray,
    kind: str = "auto",
    threshold: int = 50_000,
    m: int = 32,
    ef_construction: int = 80,
    ef_search: int = 256,
) -> VectorIndex:
    """The index for a catalog: ``exact``, ``faiss``, or ``auto`` (exact below ``threshold`` items).

    ``ef_search`` 256 is the smallest of 64/128/256 that keeps recall@100 >= 0.95 for every
    catalog size ``auto`` hands to HNSW (``bench/bench_ann.py``, clustered synthetic set:
    0.97 at 50k, 0.99 at 1M; 128 gives 0.93 at 50k-100k), at a p99 under 1 ms at 1M items.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown index kind {kind!r}; expected one of {', '.join(KINDS)}")
    if kind == "exact" or (kind == "auto" and len(vectors) < threshold):
        return ExactIndex(vectors)
    return FaissIndex(vectors, m=m, ef_construction=ef_construction, ef_search=ef_search)


class FilteredSearch:
    """Top-k by inner product among the items a filter allows, on a catalog of any size.

    Search filters (price, colour, category) are known only with the query, so the index
    cannot be cut in advance. Two regimes, as vector databases do:

    * *few allowed items* (at most ``exact_below``, ``serving.ann_exact_subset``): score
      exactly those rows, which costs what they are, however large the catalog;
    * *many allowed items*: ask the ANN index for ``k / f`` candidates, ``f`` the allowed
      share of the catalog (at most ``max_fetch``), and keep the allowed ones. With the
      allowed items spread independently of the query, the expected number kept is ``k``.
      Filters and queries correlate (a product's variants share a price band), so fewer
      may survive: one more try asks for four times as many, and if fewer than half of
      ``k`` survive even then (the query's neighbourhood is excluded), the allowed items
      are scored exactly after all, so a filtered search is never left with next to
      nothing it could have had.

    Without an ANN index (small catalogs) every search is exact.
    """

    def __init__(self, vectors: np.ndarray, index: VectorIndex | None = None,
                 exact_below: int = 0, max_fetch: int = 2_000) -> None:
        if index is not None and len(index) != len(vectors):
            raise ValueError(f"the index holds {len(index):,} vectors, the catalog {len(vectors):,}")
        self.vectors = vectors
        self.index = index
        self.exact_below = exact_below
        self.max_fetch = max_fetch

    def top(self, query: np.ndarray, allowed: np.ndarray, k: int) -> np.ndarray:
        """Indices of the best ``k`` allowed items for one query vector, best first."""
        rows = np.flatnonzero(allowed)
        if self.index is not None and len(rows) > self.exact_below:
            fetch = max(k, min(self.max_fetch, int(np.ceil(k * len(allowed) / len(rows)))))
            for wider in (1, 4):
                found = self.index.search(query[None, :], min(len(allowed), wider * fetch))[0][0]
                kept = found[allowed[found]][:k]
                if len(kept) == min(k, len(rows)):
                    return kept
            if 2 * len(kept) >= min(k, len(rows)):
                return kept
        return top_rows(rows, self._scores(query, rows), k)

    def _scores(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Exact scores of ``rows``: copying a few rows is cheaper than scoring them all, not so for many."""
        if 4 * len(rows) < len(self.vectors):
            return self.vectors[rows] @ query
        return (self.vectors @ query)[rows]

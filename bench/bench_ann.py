"""ANN index benchmark on a synthetic catalog: build time, memory, per-request latency, recall@k.

The catalog is ``--items`` clustered unit vectors in 64 d, shaped like product embeddings:
``--clusters`` category centres on the sphere with uneven (log-normal) sizes, each item its
centre plus isotropic Gaussian noise, renormalised. Queries are perturbed catalog items
(a user vector near what the user bought). Latency is one query at a time, as a request
would arrive; recall@k of the HNSW index is measured against the exact index on the same
queries. No Online Retail data is involved.

    python bench/bench_ann.py [--items 1000000] [--queries 2000] [--ef-search 64 128 256]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from shoprec.search.ann import ExactIndex, FaissIndex


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def clustered_unit_vectors(n: int, dim: int = 64, clusters: int = 2000, spread: float = 0.1,
                           seed: int = 0) -> np.ndarray:
    """A mixture of Gaussians on the unit sphere, float32 ``[n, dim]``.

    ``spread`` is the per-dimension noise, so an item sits at cosine ``~1/sqrt(1 + dim spread²)``
    from its centre (0.78 for the defaults): clusters are tight but items stay distinct.
    """
    rng = np.random.default_rng(seed)
    centres = _unit(rng.standard_normal((clusters, dim), dtype=np.float32))
    sizes = rng.lognormal(0.0, 1.0, clusters)
    members = rng.choice(clusters, size=n, p=sizes / sizes.sum())
    return _unit(centres[members] + spread * rng.standard_normal((n, dim), dtype=np.float32))


def perturbed_queries(vectors: np.ndarray, n: int, noise: float = 0.05, seed: int = 1) -> np.ndarray:
    """``n`` random catalog rows plus per-dimension Gaussian ``noise``, renormalised."""
    rng = np.random.default_rng(seed)
    rows = vectors[rng.choice(len(vectors), size=n, replace=False)]
    return _unit(rows + noise * rng.standard_normal(rows.shape, dtype=np.float32))


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each row's true top-k that the approximate top-k contains."""
    return float(np.mean([len(np.intersect1d(f, t)) / len(t) for f, t in zip(found, truth)]))


def one_at_a_time(index: ExactIndex | FaissIndex, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Latencies in ms of single-query searches (after a warm-up) and the indices they returned."""
    for q in queries[:10]:
        index.search(q[None], k)
    ms, found = [], []
    for q in queries:
        start = time.perf_counter()
        indices, _ = index.search(q[None], k)
        ms.append((time.perf_counter() - start) * 1000.0)
        found.append(indices[0])
    return np.asarray(ms), np.stack(found)


def timed(build):
    start = time.perf_counter()
    out = build()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--clusters", type=int, default=2000)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--m", type=int, default=32)
    parser.add_argument("--ef-construction", type=int, default=80)
    parser.add_argument("--ef-search", type=int, nargs="+", default=[64, 128, 256])
    args = parser.parse_args()

    vectors = clustered_unit_vectors(args.items, clusters=args.clusters)
    queries = perturbed_queries(vectors, args.queries)
    mb = 1 << 20
    rows = []

    exact, build_s = timed(lambda: ExactIndex(vectors))
    ms, truth = one_at_a_time(exact, queries, args.k)
    rows.append(("exact", "-", build_s, vectors.nbytes / mb, ms, 1.0))

    hnsw, build_s = timed(lambda: FaissIndex(vectors, m=args.m, ef_construction=args.ef_construction))
    with tempfile.TemporaryDirectory() as tmp:
        size = hnsw.save(Path(tmp) / "hnsw.faiss").stat().st_size / mb
    for ef in args.ef_search:
        hnsw.ef_search = ef
        ms, found = one_at_a_time(hnsw, queries, args.k)
        rows.append((f"faiss HNSW m={args.m} efC={args.ef_construction}", ef, build_s, size, ms,
                     recall_at_k(found, truth)))

    print(f"\n{args.items:,} items x {vectors.shape[1]} d, {args.clusters:,} clusters, "
          f"{args.queries:,} single queries, k={args.k}\n")
    print(f"| index | ef_search | build s | memory MB | p50 ms | p99 ms | recall@{args.k} |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, ef, build_s, size, ms, recall in rows:
        print(f"| {name} | {ef} | {build_s:.1f} | {size:.0f} | {np.percentile(ms, 50):.2f} "
              f"| {np.percentile(ms, 99):.2f} | {recall:.4f} |")


if __name__ == "__main__":
    main()

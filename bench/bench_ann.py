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
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "helpers"))
from vectors import clustered_unit_vectors, perturbed_queries, recall_at_k  # noqa: E402

from shoprec.search.index.vectors import ExactIndex, FaissIndex  # noqa: E402


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

"""Search on a grown catalog, in process: the semantic leg's HNSW against exact search, and whole searches.

    python bench/bench_load.py --root . --items 1000000 --endpoints search --keep   # prints the grown bundle
    python bench/bench_search_scale.py --bundle /tmp/shoprec-load-XXXX/scaled-bundle [--n 300] [--ef-search 256 1024]

The bundle is loaded as the server loads it (``ServingModel.load``: with ``serving.ann``
choosing HNSW for the catalog size, the semantic leg is a ``FilteredSearch`` over
``serving/semantic.faiss``). Queries are two or three consecutive words of the trained
items' titles (fixed seed, as in ``bench_load.py``), encoded once by the bundle's query
encoder. For each query, with no filter and with the price cap of "under 20":

* recall@100 of the semantic leg's top 100 (HNSW, post-filtered) against the exact top
  100 among the same allowed items (one product with every item vector), and the share of
  the exact top 100's *products* it finds (a grown bundle's variant is titled "<its
  product's title> no. N", so stripping that suffix names the product);
* p50 / p99 of the semantic leg, exact and HNSW, in the same run;
* p50 / p99 of the whole search (``SearchEngine.search``: parse, encode, BM25, semantic
  leg, fusion), with the query vectors cached so the figure is the catalog's share, and
  how many of its top 10 the same search with an exact semantic leg returns too.

On a grown bundle the item recall of the semantic leg is a pessimistic figure: each
trained item has ~200 variants around it (``NOISE`` in ``scale_bundle.py``), almost
equally far from a query, and which 100 of them are the exact top 100 is close to a coin
toss; the products found and the mean score of the top 100 (index against exact) say
how much is really lost.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

import shoprec  # noqa: F401  (legacy Keras switch before TensorFlow)
from bench_load import title_query
from shoprec.search.index.vectors import FilteredSearch
from shoprec.serving.model import ServingModel

K = 100


def percentiles(ms: list[float]) -> str:
    return f"p50 {np.percentile(ms, 50):7.2f} ms  p99 {np.percentile(ms, 99):7.2f} ms"


def queries_from_titles(titles: list[str], n: int, seed: int = 0) -> list[str]:
    """``n`` queries as ``bench_load.py`` writes them (title windows, fixed seed)."""
    rng, words = np.random.default_rng(seed), [t.lower().split() for t in titles]
    return [title_query(words, rng) for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True, help="a serving bundle (grown by scale_bundle.py)")
    parser.add_argument("--n", type=int, default=300, help="queries")
    parser.add_argument("--trained-items", type=int, default=5000, help="queries come from the first N titles")
    parser.add_argument("--ef-search", type=int, nargs="*", default=[],
                        help="also measure the semantic leg at these HNSW ef_search values (default: the bundle's)")
    args = parser.parse_args()

    start = time.perf_counter()
    model = ServingModel.load(args.bundle)
    engine = model.engine
    print(f"loaded {len(engine.item_ids):,} items in {time.perf_counter() - start:.0f} s; "
          f"semantic leg index: {type(engine.semantic_search.index).__name__}")
    queries = queries_from_titles([str(t) for t in engine.titles[: args.trained_items]], args.n)
    vectors = engine.semantic.query_vectors(np.asarray(engine.embed([engine.text_to_embed(q) for q in queries])))
    product = pd.factorize(pd.Series(engine.titles).str.replace(r" no\. \d+$", "", regex=True))[0]
    exact = FilteredSearch(engine.semantic.item_vectors)
    masks = {"no filter": np.ones(len(engine.item_ids), bool), "under 20": engine.prices <= 20.0}
    index = engine.semantic_search.index
    served_ef = index.ef_search
    for ef in [*args.ef_search, served_ef]:
        index.ef_search = ef
        for name, allowed in masks.items():
            recall, products, score_ratio, t_exact, t_ann = [], [], [], [], []
            for q in vectors:
                t0 = time.perf_counter()
                truth = exact.top(q, allowed, K)
                t1 = time.perf_counter()
                found = engine.semantic_search.top(q, allowed, K)
                t2 = time.perf_counter()
                t_exact.append((t1 - t0) * 1e3)
                t_ann.append((t2 - t1) * 1e3)
                recall.append(len(set(found) & set(truth)) / len(truth))
                products.append(len(set(product[found]) & set(product[truth])) / len(set(product[truth])))
                score_ratio.append((exact.vectors[found] @ q).mean() / (exact.vectors[truth] @ q).mean())
            print(f"ef_search {ef:>5}, semantic leg, {name:<9} ({allowed.mean():.0%} of items allowed): "
                  f"recall@{K} {np.mean(recall):.3f}, products found {np.mean(products):.3f}, mean score of the "
                  f"top {K} {np.mean(score_ratio):.4f} x exact; exact {percentiles(t_exact)}; index "
                  f"{percentiles(t_ann)}; ratio p50 {np.percentile(t_ann, 50) / np.percentile(t_exact, 50):.3f}")
    served = engine.semantic_search
    for suffix in ("", " under 20"):
        for q in queries[:5]:  # warm-up
            engine.search(q + suffix)
        ms, agree = [], []
        for q in queries:
            t0 = time.perf_counter()
            top = [i["item_id"] for i in engine.search(q + suffix)["items"]]
            ms.append((time.perf_counter() - t0) * 1e3)
            engine.semantic_search = exact
            try:
                again = {i["item_id"] for i in engine.search(q + suffix)["items"]}
            finally:
                engine.semantic_search = served
            agree.append(len(set(top) & again) / max(len(top), 1))
        print(f"whole search{suffix or ' (no filter)':<12} {len(ms)} queries  {percentiles(ms)}; "
              f"top 10 shared with an exact semantic leg {np.mean(agree):.3f}")


if __name__ == "__main__":
    main()

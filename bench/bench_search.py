"""Search latency in process, query encoding included: p50 / p99 per query, per query encoder.

Runs on the models of the last ``dvc repro`` under ``--root`` (default: this repository);
the queries are the labelled ones of ``data/clean/query_labels.parquet``, or a fixed
list when the source has none (Online Retail). Each query is timed end to end through
``SearchEngine.search`` (parse, spelling, MiniLM, intent, BM25, semantic, fusion,
filters), once anonymous and once for a known shopper (two-tower personalisation).
The encoding cache is off, so every query is encoded. Both query encoders run in the
same process, the float MiniLM first as the baseline, then the int8 one the service
uses (``search.query_encoder``), and the last lines give int8 / float.

    python bench/bench_search.py [--root PATH] [--n 300]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

import shoprec  # noqa: F401  (legacy Keras switch before TensorFlow)
from shoprec.config import load_params
from shoprec.layout import Layout
from shoprec.search.store import load_layout_engine

FALLBACK_QUERIES = ("red heart", "lunch bag", "christmas decoration", "cake stand", "vintage mug under 5",
                    "candel holdr", "white metal lantern", "pink paper napkins")


def timings(engine, queries: list[str], user: str | None) -> np.ndarray:
    for q in queries[:5]:  # warm-up: traces the tokenizer's (and float MiniLM's) graph
        engine.search(q, user)
    out = []
    for q in queries:
        start = time.perf_counter()
        engine.search(q, user)
        out.append((time.perf_counter() - start) * 1000.0)
    return np.asarray(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("."))
    parser.add_argument("--n", type=int, default=300)
    args = parser.parse_args()
    layout = Layout(args.root)
    params = load_params(args.root / "params.yaml")
    labels_path = args.root / "data/clean/query_labels.parquet"
    labels = pd.read_parquet(labels_path) if labels_path.exists() else pd.DataFrame({"query": []})
    queries = list(labels["query"].drop_duplicates()[: args.n]) or list(FALLBACK_QUERIES) * 20
    user = str(pd.read_parquet(layout.split.train, columns=["user_id"])["user_id"].iloc[0])
    figures: dict[tuple[str, str], tuple[float, float]] = {}
    for encoder in ("float", "int8"):
        search = params.search.model_copy(update={"query_encoder": encoder, "query_cache": 0})
        engine = load_layout_engine(params.model_copy(update={"search": search}), layout)
        for name, who in (("anonymous", None), ("personalised", user)):
            ms = timings(engine, queries, who)
            figures[encoder, name] = np.percentile(ms, 50), np.percentile(ms, 99)
            print(f"{encoder:<6} {name:<13} {len(ms)} queries  p50 {figures[encoder, name][0]:6.1f} ms  "
                  f"p99 {figures[encoder, name][1]:6.1f} ms")
    for name in ("anonymous", "personalised"):
        (f50, f99), (i50, i99) = figures["float", name], figures["int8", name]
        print(f"int8 / float  {name:<13} p50 {i50 / f50:.2f}  p99 {i99 / f99:.2f}")


if __name__ == "__main__":
    main()

"""Benchmark: the time-replay go/no-go of real-time recommendations (shoprec.evaluation.replay).

Runs on a repository after ``dvc repro`` (at least through ``train_ranking``): before each
purchase session of the test window, the static list (as precomputed at the training
cut-off) and the real-time one (same scoring path, on the history revealed up to the
session's start) are asked for a top-20; prints HitRate@20 and MRR@20 per slice and the
paired bootstrap interval of the HitRate difference, and writes the table as JSON.

Run: PYTHONPATH=src .venv/bin/python bench/bench_replay.py --root <repo after dvc repro> [--out replay.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from shoprec.config import load_params
from shoprec.evaluation.replay import replay
from shoprec.layout import Layout
from shoprec.models.store import load_layout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("."), help="repository after dvc repro")
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--out", type=Path, help="write the table as JSON here")
    args = parser.parse_args()
    layout = Layout(args.root)
    params = load_params(args.root / "params.yaml")
    system = load_layout(params, layout)
    train, test = pd.read_parquet(layout.split.train), pd.read_parquet(layout.split.test)
    start = time.perf_counter()
    table = replay(system, train, test, args.k, params.gate.resamples, params.seed)
    seconds = time.perf_counter() - start
    k = args.k
    print(f"| requests | slice | static Hit@{k} | real-time Hit@{k} | ratio | difference [95% CI] "
          f"| static MRR@{k} | real-time MRR@{k} |")
    print("|---:|---|---:|---:|---:|---|---:|---:|")
    for name, row in table.items():
        d = row["hit_difference"]
        print(f"| {row['requests']} | {name} | {row[f'static_hit@{k}']:.3f} | {row[f'real_time_hit@{k}']:.3f} "
              f"| {row['hit_ratio']} | {d['difference']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}] "
              f"| {row[f'static_mrr@{k}']:.3f} | {row[f'real_time_mrr@{k}']:.3f} |")
    print(f"replayed in {seconds:.0f} s")
    if args.out:
        args.out.write_text(json.dumps(table, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Benchmark: the whole pipeline (`dvc repro`) on the shared UCI Online Retail copy.

Prints Recall/nDCG@20 of every system in both views, and the wall time per stage.
Run: .venv/bin/python bench/bench_online_retail.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "helpers"))
from repo_copy import REPO, copy_repo  # noqa: E402

from shoprec.config import load_params  # noqa: E402
from shoprec.evaluation.gate import decide  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "online_retail" / "online_retail.csv.gz"


def main() -> None:
    if not DATA.exists():
        sys.exit(f"skipped: {DATA} not found")
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    with tempfile.TemporaryDirectory() as tmp:
        root = copy_repo(Path(tmp), {"ingest.source": "online_retail", "ingest.path": str(DATA)})
        stages = ["ingest", "validate", "split", "finetune_text", "embed_items", "train_retrieval", "train_ranking",
                  "evaluate"]
        timings = {}
        for stage in stages:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "dvc", "repro", "--single-item", stage], cwd=root, check=True,
                           stdout=subprocess.DEVNULL)
            timings[stage] = time.perf_counter() - start
        metrics = json.loads((root / "reports" / "metrics.json").read_text())
        params = load_params(root / "params.yaml")
        decision = decide(metrics, pd.read_parquet(root / "reports" / "recommendations.parquet"),
                          pd.read_parquet(root / "data" / "split" / "test_truth.parquet"), params.gate, params.seed)
    print(f"{'system':<12} {'R@20 all':>9} {'nDCG@20 all':>12} {'R@20 new':>9} {'nDCG@20 new':>12}")
    for system, views in metrics.items():
        a, n = views["all"], views["new"]
        print(f"{system:<12} {a['recall@20']:>9.3f} {a['ndcg@20']:>12.3f} {n['recall@20']:>9.3f} {n['ndcg@20']:>12.3f}")
    print("gate:", decision["reason"])
    print("wall time per stage (s):", {k: round(v, 1) for k, v in timings.items()},
          f"total {sum(timings.values()):.0f} s")


if __name__ == "__main__":
    main()

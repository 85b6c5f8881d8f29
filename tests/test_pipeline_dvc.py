"""`dvc repro` for real, in a scratch copy of the repository, on a small sample storefront."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
from repo_copy import SMALL_SAMPLE as SMALL  # noqa: F401  (re-exported for other pipeline tests)

STAGES = ("ingest", "validate", "split", "embed_items", "train_retrieval", "train_ranking", "evaluate", "gate")
SYSTEMS = {"popularity", "own_history", "itemknn", "ease", "two_tower", "shoprec"}


def dvc(root, *args):
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True)


def test_first_run_runs_every_stage_and_second_run_nothing(pipeline_run):
    for stage in STAGES:
        assert f"Running stage '{stage}'" in pipeline_run.first.stdout, pipeline_run.first.stderr[-2000:]
    second = dvc(pipeline_run.root, "repro")
    gate = json.loads((pipeline_run.root / "reports/gate.json").read_text())
    # a refused gate fails the run again (it is the only stage that "changes" nothing and still exits 1)
    assert (second.returncode == 0) == gate["passed"]
    assert "Running stage" not in second.stdout or (not gate["passed"] and "'gate'" in second.stdout)


def test_data_stages_keep_rows_and_cut_in_time(pipeline_run):
    repo = pipeline_run.root
    report = json.loads((repo / "data/clean/validation.json").read_text())
    for table in report["tables"].values():
        assert table["raw_rows"] == table["clean_rows"] + table["quarantined_rows"]
    split = json.loads((repo / "data/split/split.json").read_text())
    train = pd.read_parquet(repo / "data/split/train.parquet")
    test = pd.read_parquet(repo / "data/split/test.parquet")
    assert train["timestamp"].max() < pd.Timestamp(split["test_start"]) <= test["timestamp"].min()
    assert set(test["user_id"]) <= set(train["user_id"])


def test_metrics_recommendations_and_gate(pipeline_run):
    repo = pipeline_run.root
    gate = json.loads((repo / "reports/gate.json").read_text())
    assert (pipeline_run.first.returncode == 0) == gate["passed"], pipeline_run.first.stderr[-2000:]
    assert gate["best_baseline"] in {"popularity", "own_history", "itemknn", "ease"} and gate["reason"]
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    assert SYSTEMS | {"gate"} == set(metrics)
    assert metrics["gate"] == gate
    for system in SYSTEMS:
        for view in ("all", "new"):
            m = metrics[system][view]
            assert 0.0 <= m["recall@20"] <= 1.0 and 0.0 <= m["ndcg@20"] <= 1.0
        assert "activity:3-9" in metrics[system]["slices"]
    assert set(metrics["shoprec"]["heads"]) == {"purchase", "click"}
    assert metrics["shoprec"]["heads"]["purchase"]["auc"] > 0.6
    recs = pd.read_parquet(repo / "reports/recommendations.parquet")
    assert list(recs.columns) == ["system", "view", "user_id", "rank", "item_id"]
    assert set(recs["system"]) == SYSTEMS and recs["rank"].between(1, 100).all()
    # the learned systems must beat popularity on their own split
    for system in ("two_tower", "shoprec"):
        assert metrics[system]["all"]["ndcg@20"] > metrics["popularity"]["all"]["ndcg@20"]

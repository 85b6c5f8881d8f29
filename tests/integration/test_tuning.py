"""`shoprec tune`: a grid searched on the validation window as DVC experiments; the test window is never read."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from shoprec.config import SplitParams
from shoprec.stages.split import split
from shoprec.tuning import SEARCH_COLUMN
from repo_copy import SMALL_SAMPLE, copy_repo

pytestmark = pytest.mark.slow

GRID = {"ranking.epochs": [1, 2]}


def test_tune_mode_scores_the_validation_window_and_never_reads_test(tmp_path):
    days = pd.date_range("2024-01-01", periods=100, freq="D", tz="UTC")
    events = pd.DataFrame({"user_id": [f"u{n % 7}" for n in range(100)], "item_id": [f"i{n % 5}" for n in range(100)],
                           "event_type": "purchase", "timestamp": days, "session_id": "", "query": "", "quantity": 1})
    events.to_parquet(tmp_path / "events.parquet")
    params = SplitParams(test_start={"files": "2024-03-31"}, validation_days=30, tune=True)
    parts = split(tmp_path / "events.parquet", tmp_path / "split", "files", params)

    train, test = pd.read_parquet(parts.train), pd.read_parquet(parts.test)
    assert train["timestamp"].max() < pd.Timestamp("2024-03-01", tz="UTC") <= test["timestamp"].min()
    assert test["timestamp"].max() < pd.Timestamp("2024-03-31", tz="UTC")  # the test window is not read
    valid = pd.read_parquet(parts.valid)
    assert valid["timestamp"].min() >= pd.Timestamp("2024-01-31", tz="UTC")  # the replay window moved back too


def test_tune_runs_one_experiment_per_combination_and_leaves_the_workspace_alone(pipeline_run, tmp_path):
    from shoprec.pipeline import set_params

    shoprec = str(Path(sys.executable).with_name("shoprec"))
    fresh = subprocess.run([shoprec, "tune"], cwd=copy_repo(tmp_path / "fresh", SMALL_SAMPLE | {"tune.grid": GRID}),
                           capture_output=True, text=True, timeout=300)
    assert fresh.returncode == 1 and "stages not up to date: " in fresh.stderr  # its lock is the default sample's

    # As a user's repository is after `make run` and a commit: a copy of the suite's finished run.
    root = Path(shutil.copytree(pipeline_run.root, tmp_path / "repo", symlinks=True))
    set_params({"tune.grid": GRID}, root)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "ran"], cwd=root, check=True)
    lock = (root / "dvc.lock").read_text()
    done = subprocess.run([shoprec, "tune"], cwd=root, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]

    table = pd.read_csv(root / "reports" / "tuning.csv")
    assert sorted(table["ranking.epochs"]) == [1, 2] and list(table["trial"].str[:5]) == ["tune-", "tune-"]
    assert table["shoprec ndcg@20 all"].is_monotonic_decreasing and table["shoprec ndcg@20 all"].between(0, 1).all()
    # every trial scores the window's logged searches too; the ranker leaves them alone, so the metric decides
    assert table["logged searches"].gt(0).all() and table[SEARCH_COLUMN].between(0, 1).all()
    assert table[SEARCH_COLUMN].nunique() == 1
    best = table.loc[0, "ranking.epochs"]
    assert f"score it on test once: shoprec run --set ranking.epochs={best}" in done.stdout
    assert (root / "dvc.lock").read_text() == lock  # trials ran in temporary copies
    status = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True).stdout
    assert status.split() == ["??", "reports/tuning.csv"]

    refs = subprocess.run(["git", "for-each-ref", "--format=%(refname)", "refs/exps/"], cwd=root, capture_output=True,
                          text=True, check=True).stdout.split()
    assert sorted(r.rsplit("/", 1)[-1] for r in refs) == ["tune-01", "tune-02"]
    for ref in refs:  # every trial split in tune mode, with its own setting
        trial_lock = yaml.safe_load(subprocess.run(["git", "show", f"{ref}:dvc.lock"], cwd=root, capture_output=True,
                                                   text=True, check=True).stdout)
        assert trial_lock["stages"]["split"]["params"]["params.yaml"]["split"]["tune"] is True

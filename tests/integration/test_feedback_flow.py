"""The hourly feedback flow for real: a trained copy of the repo, Prefect's test server, a real smoke test."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from shoprec.orchestration.deployments import load_deployments, load_flow
from shoprec.pipeline import set_params
from shoprec.serving.sqlite_store import SqliteStore
from shoprec.serving.promote import served_tag

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained_copy(pipeline_run, tmp_path_factory):
    if pipeline_run.first.returncode != 0:
        pytest.fail(f"shoprec run failed:\n{(pipeline_run.first.stdout + pipeline_run.first.stderr)[-3000:]}")
    root = tmp_path_factory.mktemp("feedback") / "repo"
    shutil.copytree(pipeline_run.root, root, symlinks=True)
    # What is tested here is the flow; the gate's own verdicts are tested with the evaluation.
    set_params({"gate.margin": -1.0}, root)
    return root


def test_feedback_waits_then_retrains_smoke_tests_and_promotes(harness, trained_copy):
    root = trained_copy
    flow = load_flow("flows/feedback.py:feedback", root)
    items = pd.read_parquet(root / "data/clean/items.parquet")["item_id"].tolist()
    before = json.loads((root / "var/package.json").read_text())["model_tag"]
    store = SqliteStore(root / "var/feedback.db")
    events = [{"user_id": "U-feedback-flow", "item_id": items[n], "event_type": "purchase",
               "timestamp": "2024-04-20T10:00:00Z", "event_id": f"flow-{n}"} for n in range(3)]
    assert store.append(events + [{"user_id": "x", "item_id": "NOPE", "event_type": "click",
                                   "timestamp": "2024-04-20T10:00:00Z"}], set(items))["accepted"] == 3

    waiting = flow(root=str(root), min_events=100)
    assert waiting["retrained"] is False and waiting["new_events"] == 3
    assert (root / "data/feedback" / waiting["exported"]).is_file()
    assert served_tag(root, root / "var/promoted.json") == before  # nothing promoted yet

    done = flow(root=str(root), min_events=3)
    assert done["exported"] is None and done["new_events"] == 3 and done["retrained"] is True
    assert done["stages"]["ingest"] == "ran" and done["stages"]["package"] == "ran"
    promoted = json.loads((root / "var/promoted.json").read_text())
    assert promoted["model_tag"] == done["promoted"] != before
    assert promoted["feedback_batches"] == [waiting["exported"]]
    assert min(promoted["smoke_test"].values()) > 0
    assert served_tag(root, root / "var/promoted.json") == done["promoted"]
    clean = pd.read_parquet(root / "data/clean/events.parquet")
    assert (clean["user_id"] == "U-feedback-flow").sum() == 3  # the feedback is training data now

    again = flow(root=str(root), min_events=1)
    assert again["new_events"] == 0 and again["retrained"] is False


def test_prefect_yaml_has_an_hourly_feedback_deployment(pipeline_run):
    deployments = {d.name: d for d in load_deployments(pipeline_run.root / "prefect.yaml")}
    hourly = deployments["feedback-hourly"]
    assert hourly.flow_name == "shoprec-feedback" and hourly.entrypoint.endswith("flows/feedback.py:feedback")
    (schedule,) = hourly.schedules
    assert schedule.schedule.cron == "30 * * * *"

"""The hourly feedback flow for real: a trained copy of the repo, Prefect's test server, a real smoke test."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from shoprec.orchestration.deployments import load_deployments, load_flow
from shoprec.pipeline import set_params
from shoprec.serving.sqlite_store import SqliteStore
from shoprec.config import load_params
from shoprec.serving.promote import promote_challenger, served_tag

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


def test_feedback_waits_then_retrains_and_its_model_is_promoted_only_by_an_experiment(harness, trained_copy):
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
    # The retrained model is the pending challenger, smoke-tested; the served model is unchanged.
    challenger = json.loads((root / "var/challenger.json").read_text())
    assert challenger["model_tag"] == done["challenger"] != before
    assert challenger["feedback_batches"] == [waiting["exported"]]
    assert min(challenger["smoke_test"].values()) > 0
    assert served_tag(root, root / "var/promoted.json") == before
    clean = pd.read_parquet(root / "data/clean/events.parquet")
    assert (clean["user_id"] == "U-feedback-flow").sum() == 3  # the feedback is training data now

    again = flow(root=str(root), min_events=1)  # the challenger's batches count as trained on: no second retrain
    assert again["new_events"] == 0 and again["retrained"] is False

    # An experiment with the pending challenger ships it: promoted through the smoke-tested path.
    set_params({"serving.experiment.name": "retrain-1", "serving.experiment.challenger": "pending",
                "serving.experiment.salt": "r1"}, root)
    shipped = promote_challenger(root, load_params(root / "params.yaml").serving)
    assert shipped["model_tag"] == done["challenger"] and shipped["experiment"] == "retrain-1"
    assert shipped["feedback_batches"] == [waiting["exported"]] and min(shipped["smoke_test"].values()) > 0
    assert served_tag(root, root / "var/promoted.json") == done["challenger"]
    assert not (root / "var/challenger.json").exists()
    assert flow(root=str(root), min_events=1)["new_events"] == 0


def test_prefect_yaml_has_an_hourly_feedback_deployment(pipeline_run):
    deployments = {d.name: d for d in load_deployments(pipeline_run.root / "prefect.yaml")}
    hourly = deployments["feedback-hourly"]
    assert hourly.flow_name == "shoprec-feedback" and hourly.entrypoint.endswith("flows/feedback.py:feedback")
    (schedule,) = hourly.schedules
    assert schedule.schedule.cron == "30 * * * *"

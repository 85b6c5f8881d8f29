"""prefect.yaml's deployments for real, against the suite's Prefect server.

* `prefect deploy --all`, as an operator runs it: Prefect's own reader takes the file, fills in
  the git URL and image an operator sets, and the server checks the Docker deployment's job
  variables against a Docker work pool's template (the one prefect-docker gives a new pool).
* `shoprec serve-flows`: the deployments with each entrypoint swapped for a stand-in flow that
  sleeps, so that what is tested is the serving: the limits reach the server, and due runs of
  the local deployments, which would share the repository, run one after the other.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.filters import FlowFilter, FlowFilterName
from prefect.client.schemas.objects import ConcurrencyLimitStrategy
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL
from prefect_docker.worker import DockerWorker
from repo_copy import REPO, copy_repo

pytestmark = pytest.mark.slow

STAND_IN = (
    "import time\n"
    "from prefect import flow\n"
    "@flow(name='stand-in')\n"
    "def stand_in(package: bool = False, push: bool = False):\n"
    "    time.sleep({seconds})\n"
)
RUN_SECONDS = 4
OPERATOR = {"SHOPREC_GIT_URL": "https://git.example.com/shop/shoprec.git",
            "SHOPREC_IMAGE": "registry.example.com/shoprec-pipeline:1"}


def one_at_a_time(deployment) -> bool:
    """The server holds a limit of one for the deployment, and queues a run that finds it taken."""
    return (deployment.global_concurrency_limit is not None and deployment.global_concurrency_limit.limit == 1
            and deployment.concurrency_options.collision_strategy == ConcurrencyLimitStrategy.ENQUEUE)


def test_prefect_deploy_registers_every_deployment_and_the_docker_pool_accepts_its_settings(harness, tmp_path):
    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name="shoprec-local", type="process", concurrency_limit=1))
        client.create_work_pool(WorkPoolCreate(name="shoprec-docker", type="docker",
                                               base_job_template=DockerWorker.get_default_base_job_template()))
    root = copy_repo(tmp_path / "repo", {})
    env = {**os.environ, **OPERATOR, "PREFECT_API_URL": PREFECT_API_URL.value()}
    done = subprocess.run([Path(sys.executable).with_name("prefect"), "--no-prompt", "deploy", "--all"], cwd=root,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]

    with get_client(sync_client=True) as client:
        deployments = {name.split("/")[1]: client.read_deployment_by_name(name) for name in (
            "shoprec-train/nightly-retrain", "shoprec-feedback/feedback-hourly", "shoprec-train/nightly-retrain-docker",
            "shoprec-experiment/experiment-daily")}
    docker = deployments["nightly-retrain-docker"]
    assert docker.work_pool_name == "shoprec-docker" and one_at_a_time(docker)
    assert docker.job_variables["image"] == OPERATOR["SHOPREC_IMAGE"]
    clone = docker.pull_steps[0]["prefect.deployments.steps.git_clone"]
    assert clone["repository"] == OPERATOR["SHOPREC_GIT_URL"]
    for name in ("nightly-retrain", "feedback-hourly", "experiment-daily"):
        assert deployments[name].work_pool_name == "shoprec-local" and one_at_a_time(deployments[name])


def stand_in_deployments(tmp_path: Path) -> Path:
    """prefect.yaml with every entrypoint on the stand-in flow, written into ``tmp_path``."""
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    for entry in spec["deployments"]:
        entry["entrypoint"] = "stand_in.py:stand_in"
    (tmp_path / "stand_in.py").write_text(STAND_IN.format(seconds=RUN_SECONDS))
    (tmp_path / "prefect.yaml").write_text(yaml.safe_dump(spec))
    return tmp_path / "prefect.yaml"


def wait_for(condition, timeout: float, what: str, log: Path):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout:.0f} s; serve-flows said:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    return value


def test_serve_flows_registers_the_limits_and_runs_one_flow_at_a_time(harness, tmp_path):
    prefect_file, log = stand_in_deployments(tmp_path), tmp_path / "serve.log"
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    with log.open("w") as out:
        server = subprocess.Popen([Path(sys.executable).with_name("shoprec"), "serve-flows", "--prefect-file",
                                   str(prefect_file)], cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        with get_client(sync_client=True) as client:
            def served():
                found = client.read_deployments(flow_filter=FlowFilter(name=FlowFilterName(any_=["stand-in"])))
                return {d.name: d for d in found} if len(found) >= 3 else None

            deployments = wait_for(served, 90, "serve-flows registered no deployments", log)
            assert set(deployments) == {"nightly-retrain", "feedback-hourly", "experiment-daily"}  # Docker: its pool
            assert all(one_at_a_time(d) for d in deployments.values())

            runs = [run_deployment(f"stand-in/{name}", timeout=0) for name in sorted(deployments)]

            def finished():
                states = [client.read_flow_run(run.id) for run in runs]
                return states if all(s.state.is_final() for s in states) else None

            done = wait_for(finished, 120, "the runs did not finish", log)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    assert all(run.state.is_completed() for run in done), [run.state for run in done]
    ordered = sorted(done, key=lambda run: run.start_time)
    for first, second in zip(ordered, ordered[1:]):
        assert first.end_time <= second.start_time, "two deployments' runs overlapped"

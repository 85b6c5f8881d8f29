"""prefect.yaml as Prefect reads it: the Docker deployment's settings against the Docker work pool's
own schema, one run at a time per deployment, and schedules that do not fire together."""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import pytest
import yaml
from prefect.server.schemas.schedules import CronSchedule
from prefect_docker.worker import DockerWorker

SPEC = yaml.safe_load((Path(__file__).resolve().parents[2] / "prefect.yaml").read_text())
DEPLOYMENTS = {d["name"]: d for d in SPEC["deployments"]}
DOCKER = DEPLOYMENTS["nightly-retrain-docker"]


def docker_variables_schema() -> dict:
    """The job variables a Docker work pool accepts (its default base job template), with unknown
    names refused: the worker would ignore a misspelt one without a word."""
    schema = DockerWorker.get_default_base_job_template()["variables"]
    return {**schema, "additionalProperties": False}


def test_docker_job_variables_follow_the_docker_work_pool_schema():
    variables = DOCKER["work_pool"]["job_variables"]
    schema = docker_variables_schema()
    jsonschema.validate(variables, schema)
    assert variables["image"] == "{{ $SHOPREC_IMAGE }}"  # set by whoever deploys it
    for broken in ({**variables, "auto_remove": "yes"}, {**variables, "imagename": "shoprec"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)


def test_docker_deployment_clones_the_repository_and_installs_it_from_the_clone():
    clone, install = DOCKER["pull"]
    step = clone["prefect.deployments.steps.git_clone"]
    assert step["repository"] == "{{ $SHOPREC_GIT_URL }}" and step["branch"] == "main"
    shell = install["prefect.deployments.steps.run_shell_script"]
    assert shell["directory"] == "{{ %s.directory }}" % step["id"]
    assert "--no-deps" in shell["script"] and shell["script"].endswith("-e .")
    assert DOCKER["entrypoint"] == DEPLOYMENTS["nightly-retrain"]["entrypoint"]
    assert DOCKER["parameters"] == DEPLOYMENTS["nightly-retrain"]["parameters"]


def test_every_deployment_runs_one_at_a_time_and_queues_the_next():
    for name, entry in DEPLOYMENTS.items():
        assert entry["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}, name


def fire_times(entry: dict, start: datetime, days: int) -> set[datetime]:
    times = set()
    for spec in entry.get("schedules", []):
        cron = CronSchedule(cron=spec["cron"], timezone=spec.get("timezone"))
        times |= set(asyncio.run(cron.get_dates(n=days * 24 * 60, start=start, end=start + timedelta(days=days))))
    return times


def test_no_two_deployments_of_a_work_pool_fire_at_the_same_time():
    """Runs of one pool share its infrastructure (the local pool: this folder and its DVC lock).
    The Docker deployment replaces the local nightly on a cluster, so it keeps its hour."""
    start, pools = datetime(2026, 3, 28, tzinfo=timezone.utc), defaultdict(dict)
    for name, entry in DEPLOYMENTS.items():
        pools[entry["work_pool"]["name"]][name] = fire_times(entry, start, days=7)
    assert set(pools) == {"shoprec-local", "shoprec-docker"}
    assert len(pools["shoprec-local"]["feedback-hourly"]) == 7 * 24
    for pool in pools.values():
        for (a, first), (b, second) in itertools.combinations(pool.items(), 2):
            assert not first & second, f"{a} and {b} both fire at {sorted(first & second)[:3]}"
    assert pools["shoprec-docker"]["nightly-retrain-docker"] == pools["shoprec-local"]["nightly-retrain"]

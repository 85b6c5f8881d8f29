"""``prefect.yaml`` is the one place where schedules are written; serve them from this process.

``prefect deploy`` reads the same file to register the deployments with a work pool.
For a single machine, :func:`serve_deployments` turns each entry that runs from this
folder into a ``flow.to_deployment(...)`` with its cron schedules and concurrency limit
and calls Prefect's ``serve``: one long-running process that starts the flow runs when
they are due (a Prefect server must be running to hold the schedules; see the README).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from prefect import Flow
from prefect.client.schemas.objects import ConcurrencyLimitConfig
from prefect.deployments.runner import RunnerDeployment
from prefect.flows import load_flow_from_entrypoint
from prefect.schedules import Cron, Schedule

PREFECT_FILE = Path("prefect.yaml")
# Every deployment served here reproduces the same DVC repository (this folder), so the serving
# process starts one flow run at a time; a run that falls due meanwhile waits, still Scheduled.
SERVE_LIMIT = 1


def load_flow(entrypoint: str, root: Path = Path(".")) -> Flow:
    """The flow ``path/to/file.py:function`` of the repository at ``root``."""
    file, _, name = entrypoint.partition(":")
    return load_flow_from_entrypoint(f"{(root / file).resolve()}:{name}")


def _schedule(entry: dict[str, Any], deployment: str) -> Schedule:
    if "cron" not in entry:
        raise ValueError(f"deployment {deployment!r}: only cron schedules are served, got {sorted(entry)}")
    return Cron(entry["cron"], timezone=entry.get("timezone"), active=entry.get("active", True))


def _concurrency(entry: dict[str, Any]) -> int | ConcurrencyLimitConfig | None:
    """The entry's ``concurrency_limit``: a number, or ``limit`` with a ``collision_strategy``."""
    limit = entry.get("concurrency_limit")
    return ConcurrencyLimitConfig(**limit) if isinstance(limit, dict) else limit


def load_deployments(prefect_file: Path = PREFECT_FILE) -> list[RunnerDeployment]:
    """The deployments of ``prefect_file`` that run from its folder, with their flow, parameters,
    tags, cron schedules and concurrency limit.

    An entry with ``pull`` steps of its own (the Docker one clones the code from git) runs on
    its work pool's infrastructure, not here, and is left out. Entrypoints are relative to the
    file's folder (the repository root). An invalid cron expression raises here, before
    anything is served.
    """
    spec = yaml.safe_load(prefect_file.read_text()) or {}
    deployments = []
    for entry in spec.get("deployments", []):
        if "pull" in entry:
            continue
        flow = load_flow(entry["entrypoint"], prefect_file.parent)
        deployments.append(flow.to_deployment(
            name=entry["name"],
            description=entry.get("description"),
            tags=entry.get("tags"),
            parameters=entry.get("parameters", {}),
            schedules=[_schedule(s, entry["name"]) for s in entry.get("schedules", [])],
            concurrency_limit=_concurrency(entry),
        ))
    return deployments


def serve_deployments(prefect_file: Path = PREFECT_FILE) -> None:
    """Serve the local deployments of ``prefect_file``, one flow run at a time, until interrupted."""
    from prefect import serve

    serve(*load_deployments(prefect_file), limit=SERVE_LIMIT)

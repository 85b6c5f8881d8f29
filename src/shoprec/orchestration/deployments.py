"""``prefect.yaml`` is the one place where schedules are written; serve them from this process.

``prefect deploy --all`` reads the same file to register the deployments with a work pool.
For a single machine, :func:`serve_deployments` turns each entry into a
``flow.to_deployment(...)`` with its cron schedules and calls Prefect's ``serve``: one
long-running process that starts the flow runs when they are due (a Prefect server
must be running to hold the schedules; see the README).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from prefect import Flow
from prefect.deployments.runner import RunnerDeployment
from prefect.flows import load_flow_from_entrypoint
from prefect.schedules import Cron, Schedule

PREFECT_FILE = Path("prefect.yaml")


def load_flow(entrypoint: str, root: Path = Path(".")) -> Flow:
    """The flow ``path/to/file.py:function`` of the repository at ``root``."""
    file, _, name = entrypoint.partition(":")
    return load_flow_from_entrypoint(f"{(root / file).resolve()}:{name}")


def _schedule(entry: dict[str, Any], deployment: str) -> Schedule:
    if "cron" not in entry:
        raise ValueError(f"deployment {deployment!r}: only cron schedules are served, got {sorted(entry)}")
    return Cron(entry["cron"], timezone=entry.get("timezone"), active=entry.get("active", True))


def load_deployments(prefect_file: Path = PREFECT_FILE) -> list[RunnerDeployment]:
    """Every deployment of ``prefect_file`` with its flow, parameters, tags and cron schedules.

    Entrypoints are relative to the file's folder (the repository root). An invalid
    cron expression raises here, before anything is served.
    """
    spec = yaml.safe_load(prefect_file.read_text()) or {}
    deployments = []
    for entry in spec.get("deployments", []):
        flow = load_flow(entry["entrypoint"], prefect_file.parent)
        deployments.append(flow.to_deployment(
            name=entry["name"],
            description=entry.get("description"),
            tags=entry.get("tags"),
            parameters=entry.get("parameters", {}),
            schedules=[_schedule(s, entry["name"]) for s in entry.get("schedules", [])],
        ))
    return deployments


def serve_deployments(prefect_file: Path = PREFECT_FILE) -> None:
    """Serve every deployment of ``prefect_file`` with its schedules until interrupted."""
    from prefect import serve

    serve(*load_deployments(prefect_file))

"""The training flow: every stage of ``dvc.yaml`` in DAG order, as Prefect tasks.

``dvc.yaml`` is the one definition of the pipeline. The flow reads its stage order from
DVC (upstream first), so a stage added there is picked up here without an edit, and
runs each stage through ``dvc repro --single-item``: DVC skips what has not changed,
which is also how a rerun after a crash resumes from the last completed stage. The
``package`` stage runs only when asked for; ``dvc push`` to the configured remote ends
the run when asked for.

Run it with ``shoprec flow train`` (ephemeral Prefect, no server needed) or on a
schedule through ``prefect.yaml`` / ``shoprec serve-flows``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.tasks import exponential_backoff

from shoprec.orchestration.artifacts import PACKAGE_STAGE
from shoprec.orchestration.tasks import LOCK_BACKOFF_SECONDS, push_task, stage_task
from shoprec.pipeline import set_params, stage_order


@flow(name="shoprec-train")
def train(
    source: str | None = None,
    path: str | None = None,
    overrides: dict[str, Any] | None = None,
    package: bool = False,
    push: bool = False,
    root: str = ".",
    lock_backoff_seconds: float = LOCK_BACKOFF_SECONDS,
) -> dict[str, str]:
    """Reproduce the pipeline; return each stage's outcome (``ran``/``skipped``) and the push summary.

    Args:
        source: ``ingest.source`` for this and later runs (sample, online_retail, files).
        path: ``ingest.path``: the input file or folder, relative to ``root``.
        overrides: dotted ``params.yaml`` keys to set first, e.g. ``{"retrieval.epochs": 3}``.
        package: also run the ``package`` stage (the BentoML build) when ``dvc.yaml`` has one.
        push: ``dvc push`` the outputs to the configured DVC remote at the end.
        root: the repository (where ``dvc.yaml`` and ``params.yaml`` are).
        lock_backoff_seconds: first delay of the exponential backoff while the repository is locked.
    """
    repo = Path(root).resolve()
    changes = dict(overrides or {})
    changes.update({k: v for k, v in {"ingest.source": source, "ingest.path": path}.items() if v is not None})
    if changes:
        set_params(changes, repo)
        get_run_logger().info("params.yaml updated: %s", changes)
    backoff = exponential_backoff(lock_backoff_seconds)
    outcomes: dict[str, str] = {}
    for stage in stage_order(repo):
        if stage == PACKAGE_STAGE and not package:
            continue
        outcomes[stage] = stage_task.with_options(retry_delay_seconds=backoff)(stage, repo)
    if push:
        outcomes["push"] = push_task.with_options(retry_delay_seconds=backoff)(repo)
    return outcomes

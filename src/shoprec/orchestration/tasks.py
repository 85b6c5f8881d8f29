"""The DVC stages as Prefect tasks: retried when the repository is busy, explicit when a check fails.

A task runs ``dvc repro --single-item <stage>`` (:func:`shoprec.pipeline.run_stage`), so
DVC decides whether the stage is stale and records ``dvc.lock``; Prefect adds retries,
logs, state and artifacts. Errors fall in two kinds:

* transient: another DVC process holds the repository lock (``Unable to acquire lock``,
  or an output ``is busy``). Retried with exponential backoff; only these are retried,
  because re-running a stage that failed on its data or code gives the same failure.
* a failed stage: raised as :class:`StageFailed`, whose message names the stage and
  carries the command's own message (e.g. which validation check failed, or the gate's
  reason), so the flow run's Failed state says what went wrong.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.states import State
from prefect.tasks import Task, exponential_backoff

from shoprec.orchestration.artifacts import publish_stage_artifacts
from shoprec.pipeline import dvc, run_stage

TRANSIENT_MARKERS = ("Unable to acquire lock", "is busy, it is being blocked by")
LOCK_RETRIES = 4
LOCK_BACKOFF_SECONDS = 10.0  # delays 10, 20, 40, 80 s: long enough for another short DVC command to end


class RepoBusy(RuntimeError):
    """Another DVC process holds the repository; worth trying again later."""


class StageFailed(RuntimeError):
    """A stage (or the final ``dvc push``) ran and failed; the message names it and carries DVC's output."""

    def __init__(self, stage: str, detail: str) -> None:
        self.stage = stage
        super().__init__(f"stage '{stage}' failed: {detail}")


class LogLines:
    """Hands streamed output to a logger a line at a time as it arrives (a progress bar's updates,
    which end in ``\\r``, each as a line), so a flow run on a terminal shows its stages live."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log, self.rest = log, ""

    def __call__(self, text: str) -> None:
        *lines, self.rest = re.split(r"\r\n|\r|\n", self.rest + text)
        for line in lines:
            if line.strip():
                self.log(line)

    def flush(self) -> None:
        if self.rest:
            self("\n")


def retry_if_busy(task: Task, task_run: TaskRun, state: State) -> bool:
    """Prefect's ``retry_condition_fn``: retry only when the failure was a busy repository."""
    return isinstance(state.data, RepoBusy)


def _dvc_or_raise(stage: str, run: Callable[[], str]) -> str:
    """``run()``'s output; its failure sorted into :class:`RepoBusy` (retried) or :class:`StageFailed`."""
    try:
        return run()
    except RuntimeError as exc:
        message = str(exc)
        if any(marker in message for marker in TRANSIENT_MARKERS):
            raise RepoBusy(message) from exc
        raise StageFailed(stage, message) from exc


@task(task_run_name="{stage}", retries=LOCK_RETRIES, retry_delay_seconds=exponential_backoff(LOCK_BACKOFF_SECONDS),
      retry_condition_fn=retry_if_busy, cache_policy=NO_CACHE)
def stage_task(stage: str, root: Path) -> str:
    """Reproduce one stage; return ``"ran"`` or ``"skipped"`` (DVC found it up to date)."""
    lines = LogLines(get_run_logger().info)
    try:
        log = _dvc_or_raise(stage, lambda: run_stage(stage, root, echo=lines))
    except StageFailed:
        publish_stage_artifacts(stage, root)
        raise
    finally:
        lines.flush()
    publish_stage_artifacts(stage, root)
    return "skipped" if f"Stage '{stage}' didn't change, skipping" in log else "ran"


@task(task_run_name="dvc-push", retries=LOCK_RETRIES, retry_delay_seconds=exponential_backoff(LOCK_BACKOFF_SECONDS),
      retry_condition_fn=retry_if_busy, cache_policy=NO_CACHE)
def push_task(root: Path) -> str:
    """``dvc push`` every tracked output to the configured default remote; return DVC's summary."""
    out = _dvc_or_raise("push", lambda: dvc("push", cwd=root)).strip()
    get_run_logger().info(out)
    return out.splitlines()[-1] if out else "nothing to push"

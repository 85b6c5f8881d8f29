"""The daily experiment report: the exported impressions and feedback -> the report -> a Prefect artifact.

Runs daily (``prefect.yaml``, deployment ``experiment-daily``) on the batches the hourly
feedback flow exports (``serving.impressions_dir``, ``ingest.feedback_dir``), so it sees
traffic up to an hour old. The report (:mod:`shoprec.experiments.report`) is published as
the markdown artifact ``shoprec-experiment``, one history of reports in the UI. Logs that
cannot be reported on (no experiment running, no batches yet) publish that explanation
instead and the run still completes: a day without an experiment is not a failure.
Promotion stays a decision of its own (``shoprec promote --from-experiment``).

Run it by hand with ``prefect`` or as ``load_flow("flows/experiment.py:experiment")()``.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from shoprec.config import load_params
from shoprec.experiments.attribution import ReportInputError
from shoprec.experiments.report import markdown, repo_report

ARTIFACT = "shoprec-experiment"


@flow(name="shoprec-experiment")
def experiment(root: str = ".", name: str | None = None, share: float | None = None) -> dict:
    """Compute the experiment report and publish it.

    Args:
        root: the repository (where ``params.yaml`` is).
        name: the experiment's name in the report (default: serving.experiment's, else champion-vs-<challenger>).
        share: the challenger's designed share of shoppers, for the sample-ratio check (default: serving.experiment's).
    """
    repo = Path(root).resolve()
    cfg = load_params(repo / "params.yaml")
    try:
        result = repo_report(repo, cfg, name, share)
    except ReportInputError as exc:
        get_run_logger().warning("no experiment report: %s", exc)
        create_markdown_artifact(f"# No experiment report\n\n{exc}\n", key=ARTIFACT,
                                 description="why there is no experiment report today")
        return {"decision": None, "error": str(exc)}
    create_markdown_artifact(markdown(result), key=ARTIFACT, description=f"experiment {result['experiment']}")
    get_run_logger().info("experiment %s: %s (%s)", result["experiment"], result["decision"], result["reason"])
    return result

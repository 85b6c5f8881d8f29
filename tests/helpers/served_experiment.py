"""Params files that run an experiment (the e2e tests' served experiment, the refusal tests)."""

from __future__ import annotations

from pathlib import Path

import yaml

# The experiment of the session's `experiment_served` server: champion = the pipeline run's model,
# challenger = its popularity baseline; this salt puts shoppers of the sample in both arms.
SERVED_EXPERIMENT = {"name": "pop-vs-shoprec", "share": 0.5, "salt": "e2e"}


def with_experiment(root: Path, folder: Path, experiment: dict) -> Path:
    """``root``'s params.yaml with ``serving.experiment`` set to ``experiment``, written into ``folder``."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["serving"]["experiment"] = experiment
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path

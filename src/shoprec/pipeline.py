"""Drive the DVC pipeline: the one definition of the DAG (``dvc.yaml``).

The CLI's ``run`` and every Prefect task go through here, so a stage runs the same way
whoever starts it, and DVC decides what is up to date (and records ``dvc.lock``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml


def dvc(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the DVC of this interpreter's environment; raise with DVC's own message on failure."""
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=cwd, text=True, capture_output=True, check=False
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise RuntimeError(f"`dvc {' '.join(args)}` failed:\n{tail}")
    return proc


def stage_outputs(root: Path = Path(".")) -> dict[str, list[str]]:
    """Stage name -> declared outs, metrics and plots, from ``dvc.yaml``."""
    spec = yaml.safe_load((root / "dvc.yaml").read_text())
    outs: dict[str, list[str]] = {}
    for name, stage in spec["stages"].items():
        paths = []
        for key in ("outs", "metrics", "plots"):
            for entry in stage.get(key, []):
                paths.append(next(iter(entry)) if isinstance(entry, dict) else entry)
        outs[name] = paths
    return outs


def run_stage(stage: str, root: Path = Path(".")) -> str:
    """Reproduce one stage only (its upstream must be up to date); DVC skips it when unchanged."""
    return dvc("repro", "--single-item", stage, cwd=root).stdout


def reproduce(target: str | None = None, root: Path = Path(".")) -> str:
    """``dvc repro [target]`` and a short account of what it produced."""
    log = dvc("repro", *([target] if target else []), cwd=root).stdout
    lines = [log.strip(), "", "Outputs:"]
    for stage, paths in stage_outputs(root).items():
        present = [p for p in paths if (root / p).exists()]
        if present:
            lines.append(f"  {stage:<16} {', '.join(present)}")
    return "\n".join(lines)

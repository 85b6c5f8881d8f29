"""Drive the DVC pipeline: the one definition of the DAG (``dvc.yaml``).

The CLI's ``run`` and every Prefect task go through here, so a stage runs the same way
whoever starts it, and DVC decides what is up to date (and records ``dvc.lock``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

PARAMS_FILE = "params.yaml"


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


def stage_order(root: Path = Path(".")) -> list[str]:
    """Every command stage of ``dvc.yaml``, each after all of its upstream stages.

    DVC's graph has an edge from a stage to each stage it depends on; a topological sort
    of the reversed graph runs producers first. Among stages that do not depend on each
    other, the order of ``dvc.yaml`` is kept, so the order is stable and readable.
    """
    import networkx as nx
    from dvc.repo import Repo

    def address(stage) -> str:  # as `dvc repro` in ``root`` names it, whatever the current folder
        dvcfile = os.path.relpath(stage.dvcfile.path, repo.root_dir)
        return stage.name if dvcfile == "dvc.yaml" else f"{dvcfile}:{stage.name}"

    with Repo(str(root)) as repo:
        stages = repo.index.stages
        position = {stage: i for i, stage in enumerate(stages)}
        ordered = nx.lexicographical_topological_sort(repo.index.graph.reverse(), key=position.__getitem__)
        return [address(stage) for stage in ordered if stage.cmd]


def parse_overrides(assignments: Iterable[str]) -> dict[str, Any]:
    """``["retrieval.epochs=2", "gate.view=new"]`` -> ``{"retrieval.epochs": 2, "gate.view": "new"}``.

    Values are read as YAML, so numbers, booleans and lists get their types as in ``params.yaml``.
    """
    overrides: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"override {assignment!r} is not key=value (e.g. retrieval.epochs=2)")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


def set_params(overrides: Mapping[str, Any], root: Path = Path(".")) -> None:
    """Write dotted-key overrides into ``params.yaml`` (comments and order kept), validated first.

    The file, not ``dvc exp run -S``, carries the overrides: ``dvc exp run`` reproduces the
    whole pipeline in one DVC process, so its stages could not be separate Prefect tasks,
    while a value in ``params.yaml`` is exactly what ``dvc repro`` and every stage read. The
    new file must load as :class:`shoprec.config.Params` (unknown keys, types, ranges)
    before it replaces the old one, so a typo never reaches a stage.
    """
    from ruamel.yaml import YAML

    from shoprec.config import ParamsError, load_params

    path = root / PARAMS_FILE
    rt = YAML()
    rt.preserve_quotes = True
    doc = rt.load(path.read_text()) if path.exists() else {}
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split(".")
        node = doc
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    tmp = path.with_name(f".{PARAMS_FILE}.new")
    with tmp.open("w") as fh:
        rt.dump(doc, fh)
    try:
        load_params(tmp)
    except ParamsError as exc:
        tmp.unlink()
        raise ParamsError(f"{path} with {dict(overrides)}: {str(exc).removeprefix(f'{tmp}: ')}") from None
    os.replace(tmp, path)


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

"""Drive the DVC pipeline: the one definition of the DAG (``dvc.yaml``).

The CLI's ``run`` and every Prefect task go through here, so a stage runs the same way
whoever starts it, and DVC decides what is up to date (and records ``dvc.lock``).
"""

from __future__ import annotations

import codecs
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

PARAMS_FILE = "params.yaml"


Echo = Callable[[str], None]


def dvc(*args: str, cwd: Path | None = None, echo: Echo | None = None) -> str:
    """Run the DVC of this interpreter's environment and return its output (stdout and stderr).

    With ``echo``, every piece of output is handed to it as soon as DVC (or the stage it
    runs) writes it, so progress bars and epochs show live. On failure, raise with the
    last lines of DVC's own message.
    """
    proc = subprocess.Popen([sys.executable, "-m", "dvc", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=os.environ | {"PYTHONUNBUFFERED": "1"})
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    pieces = []
    while chunk := os.read(proc.stdout.fileno(), 65536):
        text = decoder.decode(chunk)
        pieces.append(text)
        if echo is not None and text:
            echo(text)
    proc.stdout.close()
    output = "".join(pieces) + decoder.decode(b"", final=True)
    if proc.wait() != 0:
        tail = "\n".join(output.strip().splitlines()[-15:])
        raise RuntimeError(f"`dvc {' '.join(args)}` failed:\n{tail}")
    return output


class StageProgress:
    """Follows ``dvc repro`` output and says when each stage starts, whether it ran or was skipped,
    and how long it took; everything else (the stage's own epochs and progress bars) passes through.

    ``write`` receives text as it should appear on a terminal; :meth:`feed` takes DVC's output
    in pieces of any size, :meth:`close` ends the last stage.
    """

    RUNNING = re.compile(r"^Running stage '([^']+)':")
    # TensorFlow's C++ start-up chatter (absl INFO/WARNING lines, no CUDA on a CPU machine): not progress
    NOISE = re.compile(r"^(?:[IW]\d{4} [\d:.]+\s+\d+ [\w.]+:\d+\]|WARNING: All log messages before absl::InitializeLog"
                       r"|E\d{4} .*(?:cuInit|oneDNN supports DT_INT64))")
    SKIPPED = re.compile(r"^Stage '([^']+)' didn't change, skipping")

    def __init__(self, write: Echo, clock: Callable[[], float] = time.monotonic) -> None:
        self.write, self.clock = write, clock
        self.started = clock()
        self.current: tuple[str, float] | None = None
        self.outcomes: dict[str, str] = {}
        self._line = ""

    def feed(self, text: str) -> None:
        parts = re.split(r"(\r\n|\r|\n)", self._line + text)  # [line, end, line, end, ..., unfinished]
        for line, end in zip(parts[0:-1:2], parts[1::2]):
            self._read(line)  # a stage's end is told before the next stage's first line
            if not self.NOISE.match(line):
                self.write(line + end)
        self._line = parts[-1]  # shown once ended (tqdm ends each update of a bar with the next one's \r)

    def _read(self, line: str) -> None:
        if match := self.RUNNING.match(line):
            self._finish()
            self.current = (match.group(1), self.clock())
            self.write(f"[{_clock()}] {match.group(1)}: running\n")
        elif match := self.SKIPPED.match(line):
            self._finish()
            self.outcomes[match.group(1)] = "skipped"
            self.write(f"[{_clock()}] {match.group(1)}: up to date, skipped\n")

    def _finish(self) -> None:
        if self.current is not None:
            stage, start = self.current
            self.outcomes[stage] = "ran"
            self.write(f"[{_clock()}] {stage}: ran in {_duration(self.clock() - start)}\n")
            self.current = None

    def close(self, failed: bool = False) -> None:
        if self._line:
            self.write(self._line + "\n")
            self._line = ""
        if failed and self.current is not None:
            self.write(f"[{_clock()}] {self.current[0]}: failed after {_duration(self.clock() - self.current[1])}\n")
            self.current = None
        self._finish()
        ran = sum(v == "ran" for v in self.outcomes.values())
        self.write(f"[{_clock()}] pipeline {'stopped' if failed else 'done'} in {_duration(self.clock() - self.started)}: "
                   f"{ran} stage(s) ran, {len(self.outcomes) - ran} up to date\n")


def _clock() -> str:
    return datetime.now().strftime("%H:%M:%S")


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 60 else f"{int(seconds // 60)} min {seconds % 60:02.0f} s"


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


def run_stage(stage: str, root: Path = Path("."), echo: Echo | None = None) -> str:
    """Reproduce one stage only (its upstream must be up to date); DVC skips it when unchanged."""
    return dvc("repro", "--single-item", stage, cwd=root, echo=echo)


def reproduce(target: str | None = None, root: Path = Path("."), write: Echo | None = None) -> str:
    """``dvc repro [target]``, its progress streamed to ``write`` as it happens, and where the outputs are."""
    progress = StageProgress(write or (lambda text: None))
    try:
        dvc("repro", *([target] if target else []), cwd=root, echo=progress.feed)
    except RuntimeError:
        progress.close(failed=True)
        raise
    progress.close()
    lines = ["Outputs:"]
    for stage, paths in stage_outputs(root).items():
        present = [p for p in paths if (root / p).exists()]
        if present:
            lines.append(f"  {stage:<20} {', '.join(present)}")
    return "\n".join(lines)

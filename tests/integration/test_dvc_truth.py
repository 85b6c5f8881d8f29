"""`dvc.yaml` tells the truth about files: what each stage really opened during the suite's `dvc repro`.

strace saw every file each stage's process tree opened (:mod:`file_trace`): a file read
must be a dep or out (or ``params.yaml`` when the stage declares params), a file written
must be an out. Run details that must not change ``dvc.lock`` go under ``var/``, which is
untracked. The code each stage imports is checked statically in tests/unit/test_dvc_code.py.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from file_trace import read_trace
from stage_deps import ENVIRONMENT, NOT_STAGE_CODE, SRC, UNTRACKED, covered, resolved_stages, subcommand


def test_stage_commands_name_only_declared_paths(pipeline_run):
    """A path on a stage's command line exists after the run and is one of its deps or outs."""
    root = pipeline_run.root
    problems = []
    for name, stage in resolved_stages(root).items():
        for word in shlex.split(stage["cmd"]):
            if "/" in word and not word.startswith(("-", *UNTRACKED)) and (root / word).exists():
                if not covered(word, stage["deps"] + stage["outs"]):
                    problems.append(f"{name}: {word}")
    assert not problems, problems


def test_stages_touch_only_declared_files(pipeline_run):
    """strace of the suite's `dvc repro`: reads are deps/outs/params, writes are outs (or untracked var/)."""
    if pipeline_run.trace is None:
        pytest.fail("strace is not installed: `make test` installs it (the browser/system packages step)")
    root = pipeline_run.root.resolve()
    problems = {}
    for name, stage in resolved_stages(root).items():
        access = read_trace(pipeline_run.trace, subcommand(stage["cmd"]), root)
        readable = stage["deps"] + stage["outs"] + (["params.yaml"] if stage["params"] else [])
        bad = []
        for kind, paths, allowed in (("reads", access.read, readable), ("writes", access.written, stage["outs"])):
            for path in sorted(paths):
                rel = _in_repo(path, root)
                if (rel is None or rel in NOT_STAGE_CODE or rel.startswith(UNTRACKED) or f"{rel}/" in UNTRACKED
                        or covered(rel, list(ENVIRONMENT))):
                    continue
                if kind == "reads" and _is_parent_folder(rel, readable):
                    continue  # listing a folder on the way to a declared path
                if not covered(rel, allowed):
                    bad.append(f"{kind} {rel}")
        if bad:
            problems[name] = bad
    assert not problems, f"stages touch files dvc.yaml does not declare:\n{yaml.safe_dump(problems)}"


def _in_repo(path: Path, root: Path) -> str | None:
    """``path`` relative to the scratch repo; the package's source (installed editable from the
    real checkout) counts as the scratch copy's ``src/``, and a ``.pyc`` as its ``.py``."""
    for base, prefix in ((root, ""), (SRC, "src/")):
        try:
            rel = prefix + str(path.relative_to(base))
        except ValueError:
            continue
        if "/__pycache__/" in rel:
            folder, _, compiled = rel.rpartition("/__pycache__/")
            rel = f"{folder}/{compiled.split('.')[0]}.py"
        rel = rel.removesuffix("/.")
        return None if rel.startswith((".git/", ".dvc/")) or rel in (".", ".git", ".dvc") else rel
    return None


def _is_parent_folder(rel: str, declared: list[str]) -> bool:
    return any(d.startswith(rel.rstrip("/") + "/") for d in declared)

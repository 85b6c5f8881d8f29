"""`dvc.yaml` tells the truth: every file a stage touches, and every module it imports, is declared.

Two checks per stage:

* code: the ``src/shoprec`` modules that the stage's command imports (the imports in its
  CLI function, then everything those modules import, transitively, lazy imports too) must
  each lie under one of the stage's deps. ``cli.py`` (argument parsing only) and the
  package ``__init__`` (process switches) are left out.
* files: what the stage really opened, as strace saw it during the suite's ``dvc repro``
  (:mod:`file_trace`): a file read must be a dep or out (or ``params.yaml`` when the stage
  declares params), a file written must be an out. Run details that must not make
  ``dvc.lock`` change go under ``var/``, which is untracked.
"""

from __future__ import annotations

import ast
import inspect
import shlex
from pathlib import Path

import pytest
import yaml

from file_trace import read_trace

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
NOT_STAGE_CODE = {"src/shoprec/cli.py", "src/shoprec/__init__.py"}
UNTRACKED = ("var/",)  # run details (timings, tags, commits): written, never DVC outputs


def resolved_stages(root: Path) -> dict[str, dict]:
    """Stage name -> {cmd, deps, outs, params} with ``${...}`` interpolated by DVC itself."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        out = {}
        for stage in repo.index.stages:
            rel = lambda p: str(Path(p.fs_path).relative_to(Path(repo.root_dir)))  # noqa: E731
            out[stage.name] = {"cmd": stage.cmd, "deps": [rel(d) for d in stage.deps if not _is_params(d)],
                               "outs": [rel(o) for o in stage.outs], "params": any(_is_params(d) for d in stage.deps)}
        return out


def _is_params(dep) -> bool:
    from dvc.dependency.param import ParamsDependency

    return isinstance(dep, ParamsDependency)


def covered(path: str, declared: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in declared)


def module_file(name: str) -> Path | None:
    base = SRC / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(tree: ast.AST, package: str) -> set[str]:
    """``shoprec`` modules named by the import statements anywhere in ``tree`` (relative ones resolved)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return {n for n in names if n.split(".")[0] == "shoprec" and module_file(n)}


def with_parents(name: str) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


def stage_code(subcommand: str) -> set[str]:
    """Source files (repo-relative) the CLI command ``subcommand`` imports, transitively."""
    from shoprec.cli import app

    command = next(c for c in app.registered_commands
                   if (c.name or c.callback.__name__.replace("_", "-")) == subcommand)
    todo = set().union(*map(with_parents, imported_modules(ast.parse(inspect.getsource(command.callback)), "shoprec")))
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = module_file(name)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for found in imported_modules(ast.parse(path.read_text()), package):
            todo |= with_parents(found) - seen
    files = {str(module_file(n).relative_to(REPO)) for n in seen}
    return files - NOT_STAGE_CODE


def subcommand(cmd: str) -> str:
    words = shlex.split(cmd)
    assert words[0] == "shoprec", f"stage command {cmd!r} does not call shoprec"
    return words[1]


def test_stage_code_is_declared():
    """Every module a stage imports lies under one of its deps (checked on the repository's own dvc.yaml)."""
    missing = {}
    for name, stage in resolved_stages(REPO).items():
        undeclared = sorted(f for f in stage_code(subcommand(stage["cmd"])) if not covered(f, stage["deps"]))
        if undeclared:
            missing[name] = undeclared
    assert not missing, f"stages import code they do not declare as deps: {yaml.safe_dump(missing)}"


def test_the_code_check_sees_lazy_and_transitive_imports():
    """It follows imports inside functions and through other modules, so a missing dep cannot hide there."""
    code = stage_code("evaluate")
    assert "src/shoprec/evaluation/metrics.py" in code  # module-level import of the stage's module
    assert "src/shoprec/models/ranking.py" in code  # through models.stages
    assert "src/shoprec/cli.py" not in code


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
                if rel is None or rel in NOT_STAGE_CODE or rel.startswith(UNTRACKED):
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
        return None if rel.startswith((".git/", ".dvc/")) or rel == "." else rel
    return None


def _is_parent_folder(rel: str, declared: list[str]) -> bool:
    return any(d.startswith(rel.rstrip("/") + "/") for d in declared)


def test_production_code_does_not_import_the_sample_generator():
    """Only the source dispatch reads the sample storefront; search and models learn from the data."""
    readers = {"src/shoprec/data/ingest.py", "src/shoprec/cli.py"}
    offenders = []
    for path in sorted((SRC / "shoprec").rglob("*.py")):
        rel = str(path.relative_to(REPO))
        if rel in readers or rel.startswith("src/shoprec/data/sources/"):
            continue
        name = ".".join(path.relative_to(SRC).with_suffix("").parts)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        if any(m.startswith("shoprec.data.sources.sample") for m in imported_modules(ast.parse(path.read_text()), package)):
            offenders.append(rel)
    assert not offenders

"""What a ``dvc.yaml`` stage declares, and what its command imports, for the dvc-truth tests."""

from __future__ import annotations

import ast
import inspect
import shlex
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"
NOT_STAGE_CODE = {"src/shoprec/cli.py", "src/shoprec/__init__.py"}  # argument parsing; process switches
ENVIRONMENT = ("src/shoprec.egg-info",)  # the editable install's metadata: the environment, like .venv
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
    # every stage command loads cli.py, so what it imports at module level is part of every stage's code
    cli = ast.parse((SRC / "shoprec" / "cli.py").read_text())
    top_level = ast.Module(body=[n for n in cli.body if isinstance(n, (ast.Import, ast.ImportFrom))], type_ignores=[])
    seeds = imported_modules(ast.parse(inspect.getsource(command.callback)), "shoprec") | imported_modules(top_level,
                                                                                                         "shoprec")
    todo = set().union(*map(with_parents, seeds))
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

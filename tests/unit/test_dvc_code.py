"""`dvc.yaml` declares the code each stage runs: every module its command imports, transitively.

The imports in the stage's CLI function, then everything those modules import (lazy
imports inside functions too) must each lie under one of the stage's deps; ``cli.py``
(argument parsing only) and the package ``__init__`` (process switches) are left out.
What a stage's run really opens is checked on the suite's pipeline run
(tests/integration/test_dvc_truth.py).
"""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

from stage_deps import REPO, SRC, covered, imported_modules, resolved_stages, stage_code, subcommand


def test_stage_code_is_declared():
    """Every module a stage imports lies under one of its deps, and every code dep holds a module it imports
    (checked on the repository's own dvc.yaml)."""
    missing, stale = {}, {}
    for name, stage in resolved_stages(REPO).items():
        code = stage_code(subcommand(stage["cmd"]))
        if undeclared := sorted(f for f in code if not covered(f, stage["deps"])):
            missing[name] = undeclared
        if unused := [d for d in stage["deps"] if d.startswith("src/") and not any(covered(f, [d]) for f in code)]:
            stale[name] = unused
    assert not missing, f"stages import code they do not declare as deps: {yaml.safe_dump(missing)}"
    assert not stale, f"code deps no module of the stage comes from: {yaml.safe_dump(stale)}"


def test_stage_outputs_are_the_layout_paths():
    """Every output dvc.yaml declares is a path :class:`shoprec.layout.Layout` names (written once, used everywhere)."""
    from shoprec.layout import Layout

    def paths(node, depth=0) -> set[str]:
        found = set()
        for attr in dir(type(node)):
            if isinstance(getattr(type(node), attr, None), property) and attr != "layout":
                value = getattr(node, attr)
                if isinstance(value, Path):
                    found.add(str(value))
                elif depth < 2:
                    found |= {str(value.folder)} | paths(value, depth + 1)
        return found

    named = paths(Layout(Path(".")))
    declared = {out for stage in resolved_stages(REPO).values() for out in stage["outs"]}
    assert declared - named == set()


def test_the_code_check_sees_lazy_and_transitive_imports():
    """It follows imports inside functions and through other modules, so a missing dep cannot hide there."""
    code = stage_code("evaluate")
    assert "src/shoprec/evaluation/metrics.py" in code  # module-level import of the stage's module
    assert "src/shoprec/models/ranking.py" in code  # through models.store
    assert "src/shoprec/cli.py" not in code


def test_production_code_does_not_import_the_sample_generator():
    """Only the source dispatch and the shopper simulator (whose shoppers are the generator's) read the
    sample storefront; search and models learn from the data."""
    readers = {"src/shoprec/data/read.py", "src/shoprec/cli.py", "src/shoprec/experiments/simulate.py"}
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

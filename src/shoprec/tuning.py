"""Hyperparameter search on the validation window, as DVC experiments; the test split is never read.

A *trial* is one DVC experiment (``dvc exp run --temp``, in a temporary copy, so the
workspace and its ``dvc.lock`` stay as they were) of the pipeline up to the gate, with
``split.tune=true`` and one combination of ``tune.grid``. With ``split.tune`` the split
stage drops the test window and moves every cut back by ``split.validation_days``: the
validation window is scored as the test window, and the ranker's replay window is the
one before it. So a trial's headline metrics are validation metrics, and selecting on
them never looks at the test split. A trial's gate has margins of -1 (it never refuses):
tuning compares configurations; the gate judges the chosen one in the real run.

:func:`tune` runs every combination, writes the table (one row per trial: its
overrides and its validation metrics: the recommenders', and the first-choice MRR of each
search mode on the window's logged searches) and names the one to apply (:func:`choose`):
the committed setting stays unless a trial beats it by ``tune.metric`` (the primary
criterion, shoprec's) and is no worse by the hybrid search's first-choice MRR, so a change
must not buy recommendations with search (a grid of ranking settings leaves search as it
is, so there the metric alone decides). Applying it is the user's step (``shoprec run
--set ...`` or an edit of params.yaml): the one run that scores the test split.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from shoprec.config import TuneParams
from shoprec.layout import Layout

# every trial: the validation window, and a gate that never refuses (of the model or of search)
TRIAL_SETTINGS = {"split.tune": "true", "gate.margin": "-1", "gate.search_margin": "-1"}
SEARCH_COLUMN = "search hybrid first-choice mrr"  # the search criterion a chosen trial must not lose on


def choose(table: pd.DataFrame, committed: dict[str, str], metric: str) -> pd.Series:
    """The trial to apply (module docstring): the committed setting's row unless some trials beat it by
    ``metric`` with a ``SEARCH_COLUMN`` at least as high; then the best of those by ``metric``. The best by
    ``metric`` when the committed setting is not among the trials; search is not looked at without logged
    searches (no ``SEARCH_COLUMN`` value)."""
    mine = (table[list(committed)].astype(str) == pd.Series(committed)).all(axis=1)
    if not mine.any():
        return table.loc[table[metric].idxmax()]
    base = table[mine].iloc[0]
    better = table[metric] > base[metric]
    if SEARCH_COLUMN in table and pd.notna(base[SEARCH_COLUMN]):
        better &= table[SEARCH_COLUMN] >= base[SEARCH_COLUMN]
    return table[better].loc[table.loc[better, metric].idxmax()] if better.any() else base


def trials(grid: dict[str, list]) -> list[dict[str, str]]:
    """Every combination of the grid's values, as ``-S`` overrides (params.yaml keys -> YAML text)."""
    keys = sorted(grid)
    return [{k: json.dumps(v) for k, v in zip(keys, values)} for values in itertools.product(*(grid[k] for k in keys))]


def run_trial(root: Path, name: str, overrides: dict[str, str]) -> dict:
    """One DVC experiment up to the gate; its headline metrics (validation window)."""
    settings = TRIAL_SETTINGS | overrides
    command = [sys.executable, "-m", "dvc", "exp", "run", "--temp", "-n", name,
               *[arg for key, value in settings.items() for arg in ("-S", f"{key}={value}")], "gate"]
    done = subprocess.run(command, cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"trial {name} ({overrides}) failed:\n{(done.stdout + done.stderr)[-3000:]}")
    headline = subprocess.run(["git", "show", f"{_exp_ref(root, name)}:{Layout().reports.headline.as_posix()}"],
                              cwd=root, capture_output=True, text=True, check=True).stdout
    return json.loads(headline)


def _exp_ref(root: Path, name: str) -> str:
    """The git ref (``refs/exps/...``) of the experiment called ``name``."""
    refs = subprocess.run(["git", "for-each-ref", "--format=%(refname)", "refs/exps/"], cwd=root, capture_output=True,
                          text=True, check=True).stdout.split()
    found = [r for r in refs if r.rsplit("/", 1)[-1] == name]
    if not found:
        raise RuntimeError(f"experiment {name} left no ref under refs/exps/")
    return found[-1]


def tune(root: Path, params: TuneParams, out: Path, prefix: str = "tune") -> tuple[pd.DataFrame, dict[str, str]]:
    """Run every trial of ``params.grid``; write the table to ``out``; return it and the chosen overrides.

    Trials start from the last commit, and DVC restores the stages a trial does not change
    (ingest, validate) from its run cache against that commit's ``dvc.lock``; so the
    pipeline must be up to date up to the gate (``dvc status gate`` clean; the package
    stage reads all of params.yaml, tune.grid included) and ``params.yaml`` and
    ``dvc.lock`` committed as that run left them.
    """
    status = subprocess.run([sys.executable, "-m", "dvc", "status", "--json", "gate"], cwd=root, capture_output=True,
                            text=True, check=True).stdout
    changed = subprocess.run(["git", "status", "--porcelain", "--", "params.yaml", "dvc.lock"], cwd=root,
                             capture_output=True, text=True, check=True).stdout.strip()
    stale = sorted(json.loads(status or "{}"))
    if stale or changed:
        raise RuntimeError(f"trials start from the last commit, which must hold a finished run: "
                           f"{'stages not up to date: ' + ', '.join(stale) if stale else 'uncommitted: ' + changed}; "
                           "run the pipeline (shoprec run) and commit params.yaml and dvc.lock first")
    rows = []
    for n, overrides in enumerate(trials(params.grid), 1):
        headline = run_trial(root, f"{prefix}-{n:02d}", overrides)
        metrics = headline["recommend"]
        row = {"trial": f"{prefix}-{n:02d}", **overrides}
        for system in ("shoprec", "two_tower", "own_history", "ease"):
            for view in ("all", "new"):
                for metric, value in metrics[system][view].items():
                    row[f"{system} {metric} {view}"] = value
        logged = headline.get("search_logged", {})
        row |= {"logged searches": logged.get("searches", 0)}
        row |= {f"search {mode} first-choice mrr": v for mode, v in logged.items() if mode != "searches"}
        rows.append(row)
    table = pd.DataFrame(rows)
    column = f"shoprec {params.metric} {params.view}"
    table = table.sort_values(column, ascending=False, kind="stable").reset_index(drop=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    committed = yaml.safe_load((root / "params.yaml").read_text())
    chosen = choose(table, {k: json.dumps(_dotted(committed, k)) for k in params.grid}, column)
    return table, {k: str(chosen[k]) for k in params.grid}


def _dotted(doc: dict, key: str):
    """The value of a dotted params.yaml key (None when absent)."""
    for part in key.split("."):
        doc = doc.get(part) if isinstance(doc, dict) else None
    return doc

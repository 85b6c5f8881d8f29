"""A throwaway copy of the working tree (tracked and untracked, not ignored) for pipeline runs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

from shoprec.pipeline import set_params

REPO = Path(__file__).resolve().parents[2]

# A storefront small enough to run the whole pipeline in about a minute on 2 cores (tests). Its ~85
# test shoppers are too few for the gate's 95% interval to clear zero (it spans about +-0.035 of
# nDCG@20), so the suite's gate asks only that the lower bound be above -0.05: a model clearly
# worse than the best baseline is still refused. The default sample (~900 test shoppers) passes
# the default gate, margin 0.
SMALL_SAMPLE = {
    "ingest.sample.n_items": 600, "ingest.sample.n_users": 300, "ingest.sample.n_events": 30000,
    "retrieval.epochs": 2, "retrieval.batch_size": 256, "gate.margin": -0.05,
}
# MiniLM's top layer fine-tuned on a few pairs (about 20 s): the suite's shared pipeline run adds it, so every
# stage after finetune_text, the bundle and the service run on a fine-tuned model
TINY_FINETUNE = {"text.finetune_layers": 1, "text.finetune_max_pairs": 256, "text.finetune_epochs": 2,
                 "text.finetune_batch_size": 32}
SUITE_RUN = SMALL_SAMPLE | TINY_FINETUNE  # the shared pipeline run's settings: a copy compared with it uses them too


def copy_repo(dest: Path, overrides: dict) -> Path:
    """Copy the project into ``dest`` as a fresh git repo, with ``params.yaml`` overrides applied."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split("\n")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / rel).write_bytes(src.read_bytes())
    set_params(overrides, dest)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=shoprec", "-c", "user.email=ci@shoprec", "commit", "-qm", "copy"]):
        subprocess.run(cmd, cwd=dest, check=True)
    return dest


def share_run_cache(source: Path, dest: Path, stages: set[str]) -> None:
    """Give ``dest`` the DVC cache of the finished run in ``source`` (hard links) with its run-cache entries for
    ``stages`` only: `dvc repro` in ``dest`` then restores those stages (DVC's "is cached - skipping run") when
    their deps and params are the same bytes as in ``source``, and runs every other stage."""
    commands = {stage.replace("_", "-") for stage in stages}
    cache = source / ".dvc" / "cache"
    for path in sorted(cache.rglob("*")):
        rel = path.relative_to(cache)
        if not path.is_file() or (rel.parts[0] == "runs"
                                  and yaml.safe_load(path.read_text())["cmd"].split()[1] not in commands):
            continue
        target = dest / ".dvc" / "cache" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(path, target)

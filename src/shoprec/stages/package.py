"""DVC stage ``package``: serving bundle -> BentoML model store -> ``bentoml build``.

Runs only after ``gate`` passed (the gate stage stops ``dvc repro`` otherwise, and
:func:`~shoprec.serving.bundle.build_bundle` checks ``gate.json`` again). The bundle is the
stage's only DVC output, the same bytes for the same inputs; what differs from run to run
(the git commit, the bento tag BentoML draws) goes to an untracked record.
"""

from __future__ import annotations

import json
from pathlib import Path

from shoprec.config import Params
from shoprec.layout import BundleFiles, Layout
from shoprec.serving.bento import build_bento, git_commit, import_bundle
from shoprec.serving.bundle import GATED, build_bundle


def package(repo: Layout, params: Params, params_path: Path, bundle_dir: Path, record_path: Path,
            bento: bool = True, system: str = GATED) -> dict:
    """Bundle the gated models of ``repo`` (or the baseline ``system`` over them) into ``bundle_dir``, import
    it as a BentoML model, build the bento; write the run's record (tags, commit) to ``record_path`` and return it."""
    bundle = build_bundle(repo, params, bundle_dir, params_path, system)
    commit = git_commit(repo.root)
    model_tag = import_bundle(bundle, commit)
    manifest = json.loads(BundleFiles(bundle).manifest.read_text())
    record = {"model_tag": model_tag, "system": system, "bento_tag": build_bento(repo.root, model_tag) if bento else None,
              "git_commit": commit, "data_hash": manifest["data_hash"], "gate": manifest["gate"]["reason"]}
    record_path.parent.mkdir(parents=True, exist_ok=True)
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    return record

"""DVC stage ``package``: serving bundle -> BentoML model store -> ``bentoml build``.

Runs only after ``gate`` passed (the gate stage stops ``dvc repro`` otherwise, and
:func:`~shoprec.serving.bundle.build_bundle` checks ``gate.json`` again). The model-store
tag is ``shoprec:<git commit>-<data hash>-<content hash>``, with the commit and data hash
also as labels, so a served ``model_version`` names the code and the data behind it; the
same bundle content always gets the same tag, so re-packaging is idempotent.

``models/serving/package.json`` records the model and bento tags: ``shoprec serve``
serves that model, and the feedback flow promotes a new one only through it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from shoprec.config import Params
from shoprec.paths import Artifacts
from shoprec.serving.bundle import MANIFEST, build_bundle
from shoprec.serving.model import verify

MODEL_NAME = "shoprec"
PACKAGE_FILE = "package.json"


def import_bundle(bundle: Path) -> str:
    """Copy ``bundle`` into the BentoML model store (unless its tag is there); return the tag."""
    import bentoml
    from bentoml.exceptions import NotFound

    manifest = verify(bundle)
    tag = f"{MODEL_NAME}:{manifest['version']}"
    try:
        bentoml.models.get(tag)
        return tag
    except NotFound:
        pass
    labels = {"git_commit": manifest["git_commit"], "data_hash": manifest["data_hash"]}
    with bentoml.models.create(tag, labels=labels, metadata={"users": manifest["users"],
                                                             "items": manifest["items"]}) as model:
        shutil.copytree(bundle, model.path, dirs_exist_ok=True)
    return tag


def _run(args: list[str], root: Path, env: dict | None = None) -> str:
    done = subprocess.run(args, cwd=root, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def build_bento(root: Path, model_tag: str) -> str:
    """``bentoml build`` of ``bentofile.yaml`` serving ``model_tag``; return the bento tag.

    The service code goes in as a wheel of this project, built offline from the venv's
    setuptools (``--no-build-isolation``), so the bento does not depend on the checkout.
    setuptools stages the package in ``build/`` and never empties it, so a module moved
    or deleted since the last build would ship too: both go first.
    """
    for stale in ("dist", "build"):
        shutil.rmtree(root / stale, ignore_errors=True)
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", "dist", "."],
         root)
    bentoml = str(Path(sys.executable).with_name("bentoml"))
    out = _run([bentoml, "build", "-f", "bentofile.yaml", "-o", "tag"], root, os.environ | {"SHOPREC_MODEL": model_tag})
    return out.strip().splitlines()[-1].removeprefix("__tag__:")


def package(artifacts: Artifacts, params: Params, params_path: Path, out_dir: Path, bento: bool = True) -> Path:
    """Bundle the gated models, import them as a BentoML model, build the bento; write ``package.json``."""
    bundle = build_bundle(artifacts, params, out_dir / "bundle", params_path)
    model_tag = import_bundle(bundle)  # verifies every file against the manifest
    manifest = json.loads((bundle / MANIFEST).read_text())
    record = {"model_tag": model_tag, "bento_tag": build_bento(artifacts.root, model_tag) if bento else None,
              "git_commit": manifest["git_commit"], "data_hash": manifest["data_hash"],
              "gate": manifest["gate"]["reason"]}
    (out_dir / PACKAGE_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return out_dir / PACKAGE_FILE


def packaged_tag(out_dir: Path) -> str:
    """The model tag of the last package stage; imported again from its bundle if the store lost it
    (a fresh machine after ``dvc pull``)."""
    import bentoml
    from bentoml.exceptions import NotFound

    record = out_dir / PACKAGE_FILE
    if not record.is_file():
        raise FileNotFoundError(f"{record} is missing: run `dvc repro` (the package stage) first")
    tag = json.loads(record.read_text())["model_tag"]
    try:
        bentoml.models.get(tag)
    except NotFound:
        if (out_dir / "bundle").is_dir() and f"{MODEL_NAME}:{verify(out_dir / 'bundle')['version']}" == tag:
            import_bundle(out_dir / "bundle")
    return tag


def serve_instructions(out_dir: Path, port: int = 3000) -> str:
    """How to serve the package and call each endpoint, with ids from its own catalog."""
    import pandas as pd

    from shoprec.serving.bundle import HISTORY

    bundle = out_dir / "bundle"
    user = str(pd.read_parquet(bundle / HISTORY, columns=["user_id"])["user_id"].iloc[0])
    items = pd.read_parquet(bundle / "data/clean/items.parquet", columns=["item_id", "title"])
    item, word = str(items["item_id"].iloc[0]), max(str(items["title"].iloc[0]).split(), key=len).lower()
    url = f"http://127.0.0.1:{port}"
    calls = {
        "recommend": {"user_id": user, "k": 5},
        "search": {"query": f"{word} under 20", "user_id": user, "k": 5},
        "similar": {"item_id": item, "k": 5},
        "feedback": {"events": [{"user_id": user, "item_id": item, "event_type": "click",
                                 "timestamp": "2024-05-01T10:00:00Z"}]},
    }
    lines = [f"Serve the packaged model ({json.loads((out_dir / PACKAGE_FILE).read_text())['model_tag']}):",
             f"  shoprec serve --port {port}        # wraps `bentoml serve shoprec.serving.service:Shoprec`",
             f"  storefront: {url}/ui/", "Then, in another shell:"]
    lines += [f"  curl -s -X POST {url}/{route} -H 'content-type: application/json' -d '{json.dumps(body)}'"
              for route, body in calls.items()]
    return "\n".join(lines)

"""The BentoML side of packaging: a bundle into the model store, the bento build, the packaged tag.

The model-store tag is ``shoprec:<data hash>-<content hash>`` (the bundle's version): the
same bundle always gets the same tag, so re-packaging is idempotent and the tag can be
read from the bundle alone (a fresh clone after ``dvc pull``). The git commit goes to the
model's labels, not into the bundle, whose bytes depend on the models only.

The bento is the deployable unit: its Python environment is ``requirements-serving.lock``
plus the project's wheel (no pipeline, test or browser tooling), its model is the bundle
(which carries MiniLM's tokenizer files), and :func:`install_env` rebuilds that
environment the way ``bentoml containerize`` does in the image, to serve the bento on
its own (the promotion smoke test, the bento test).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from shoprec.layout import BundleFiles
from shoprec.serving.model import verify

MODEL_NAME = "shoprec"
# What `bentoml build` reads, copied to a scratch folder so the build writes nothing in the repository.
BUILD_INPUTS = ("pyproject.toml", "requirements-serving.lock", "bentofile.yaml", "src/shoprec")


def git_commit(root: Path) -> str:
    """Short commit of ``root`` (``-dirty`` with uncommitted changes other than the run's own ``dvc.lock``)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!dvc.lock"],
                               cwd=root, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "nogit"
    return head + ("-dirty" if dirty else "")


def bundle_tag(bundle: Path) -> str:
    """The model-store tag of ``bundle``, read from its manifest (the version names its content)."""
    manifest = BundleFiles(bundle).manifest
    if not manifest.is_file():
        raise FileNotFoundError(f"{bundle} holds no packaged model: run `dvc repro` (the package stage) first")
    return f"{MODEL_NAME}:{json.loads(manifest.read_text())['version']}"


def import_bundle(bundle: Path, commit: str = "") -> str:
    """Copy ``bundle`` into the BentoML model store unless its tag is there; return the tag.

    The tag names the content, so a tag already in the store needs no second look; a bundle
    copied in is first checked file by file against its manifest.
    """
    import bentoml
    from bentoml.exceptions import NotFound

    tag = bundle_tag(bundle)
    try:
        bentoml.models.get(tag)
        return tag
    except NotFound:
        pass
    manifest = verify(bundle)
    labels = {"git_commit": commit or "unknown", "data_hash": manifest["data_hash"]}
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
    Both builds run in a scratch copy of :data:`BUILD_INPUTS`: setuptools' ``build/``,
    ``dist/`` and ``*.egg-info`` never land in the repository, and a module deleted since
    the last build cannot ship from a stale ``build/``.
    """
    with tempfile.TemporaryDirectory(prefix="shoprec-bento-") as tmp:
        scratch = Path(tmp)
        for rel in BUILD_INPUTS:
            src, dst = root / rel, scratch / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(src, dst)
        _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", "dist", "."],
             scratch)
        bentoml = str(Path(sys.executable).with_name("bentoml"))
        out = _run([bentoml, "build", "-f", "bentofile.yaml", "-o", "tag"], scratch,
                   os.environ | {"SHOPREC_MODEL": model_tag})
    return out.strip().splitlines()[-1].removeprefix("__tag__:")


def bento_of(model_tag: str) -> str:
    """The tag of the newest bento in the store that serves ``model_tag``."""
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        wanted = str(bentoml.models.get(model_tag).tag)
    except NotFound:
        raise FileNotFoundError(f"model {model_tag} is not in the BentoML model store: run `shoprec package`") from None
    bentos = [b for b in bentoml.bentos.list(MODEL_NAME) if wanted in {str(m.tag) for m in b.info.all_models}]
    if not bentos:
        raise FileNotFoundError(f"no bento in the store serves {wanted}: run `shoprec package` (it builds one)")
    return str(max(bentos, key=lambda b: b.info.creation_time).tag)


def install_env(bento_dir: Path, venv: Path) -> Path:
    """A new virtualenv ``venv`` holding the bento's own Python environment; returns ``venv``.

    The bento's ``env/python/install.sh`` installs it, the script ``bentoml containerize``
    runs in the image (the serving lock, then the bento's wheels), with the project's uv
    linked into the venv: uv hard-links packages from its cache, so this takes seconds.
    Offline first (``make install`` filled the cache with every pinned package); from the
    registry only if the cache lacks one.
    """
    from shoprec.serving.process import isolated_env

    uv = Path(sys.executable).with_name("uv")
    if not uv.is_file():
        raise FileNotFoundError(f"{uv} is missing: `make install` installs uv in the project's venv")
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], bento_dir)
    (venv / "bin" / "uv").symlink_to(uv)
    script, env = ["bash", str(bento_dir / "env" / "python" / "install.sh")], isolated_env(venv)
    if subprocess.run(script, cwd=bento_dir, env=env | {"UV_OFFLINE": "1"}, capture_output=True).returncode != 0:
        _run(script, bento_dir, env)
    return venv


def packaged_tag(bundle: Path) -> str:
    """The model tag of ``bundle``; imported again if the store lost it (a fresh machine after ``dvc pull``)."""
    return import_bundle(bundle)


def serve_instructions(bundle: Path, port: int = 3000) -> str:
    """How to serve the package and call each endpoint, with ids from its own catalog."""
    import pandas as pd

    files = BundleFiles(bundle)
    user = str(pd.read_parquet(files.history, columns=["user_id"])["user_id"].iloc[0])
    items = pd.read_parquet(files.layout.items, columns=["item_id", "title"])
    item, word = str(items["item_id"].iloc[0]), max(str(items["title"].iloc[0]).split(), key=len).lower()
    url = f"http://127.0.0.1:{port}"
    calls = {
        "recommend": {"user_id": user, "k": 5},
        "search": {"query": f"{word} under 20", "user_id": user, "k": 5},
        "similar": {"item_id": item, "k": 5},
        "feedback": {"events": [{"user_id": user, "item_id": item, "event_type": "click",
                                 "timestamp": "2024-05-01T10:00:00Z"}]},
    }
    lines = [f"Serve the packaged model ({packaged_tag(bundle)}):",
             f"  shoprec serve --port {port}        # wraps `bentoml serve shoprec.serving.service:Shoprec`",
             f"  storefront: {url}/ui/", "Then, in another shell:"]
    lines += [f"  curl -s -X POST {url}/{route} -H 'content-type: application/json' -d '{json.dumps(body)}'"
              for route, body in calls.items()]
    return "\n".join(lines)

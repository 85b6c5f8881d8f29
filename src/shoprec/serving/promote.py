"""Promotion: a packaged model becomes the served one only after it loads and answers.

The package stage runs after the gate, so a packaged model already beats the baselines;
the smoke test adds what offline metrics cannot see: the bento the package stage built
for the model, in a fresh environment installed from the bento's own ``env/`` (as in its
image) and started from an empty folder, loads and ``/recommend``, ``/search`` and
``/similar`` answer with items. What is promoted is what deploys, not the working tree.
Only then is ``serving.promoted_file`` rewritten (atomically) to name the model, which
is what ``shoprec serve`` serves by default. A server already running keeps its model
until it is restarted (the service loads its model once, at start).
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import httpx

from shoprec.layout import Layout
from shoprec.serving.bento import bento_of, install_env, packaged_tag
from shoprec.serving.process import start_bento


class SmokeTestFailed(RuntimeError):
    pass


def smoke_test(bento: str, model_tag: str, timeout: float = 300.0) -> dict:
    """Serve ``bento`` with ``model_tag`` on a free port, ask each read endpoint once, stop; the answers' sizes."""
    import bentoml

    with tempfile.TemporaryDirectory(prefix="shoprec-smoke-") as tmp:
        scratch = Path(tmp)
        (scratch / "work").mkdir()
        try:
            venv = install_env(Path(bentoml.bentos.get(bento).path), scratch / "venv")
            server = start_bento(bento, venv, scratch / "work", scratch / "feedback.db", scratch / "server.log",
                                 timeout=timeout, model=model_tag)
        except RuntimeError as exc:
            raise SmokeTestFailed(f"bento {bento} of {model_tag} did not start: {exc}") from exc
        try:
            return _ask(server.url, model_tag)
        finally:
            server.stop()


def _ask(url: str, model_tag: str) -> dict:
    def post(route: str, body: dict) -> dict:
        response = httpx.post(f"{url}/{route}", json=body, timeout=30)
        if response.status_code != 200:
            raise SmokeTestFailed(f"{model_tag}: /{route} answered {response.status_code}: {response.text[:300]}")
        answer = response.json()
        if answer.get("model_version") != model_tag:
            raise SmokeTestFailed(f"{model_tag}: /{route} was answered by {answer.get('model_version')}")
        return answer

    users = post("users", {"limit": 1})["users"]
    recommended = post("recommend", {"user_id": users[0] if users else "new-visitor", "k": 5})["items"]
    if not recommended:
        raise SmokeTestFailed(f"{model_tag}: /recommend returned no items")
    searched = post("search", {"query": recommended[0]["title"], "k": 5})["items"]
    similar = post("similar", {"item_id": recommended[0]["item_id"], "k": 5})["items"]
    return {"recommend": len(recommended), "search": len(searched), "similar": len(similar)}


def promote(root: Path, promoted_file: Path, model_tag: str | None = None, timeout: float = 300.0,
            extra: dict | None = None) -> dict:
    """Smoke-test the bento of ``model_tag`` (default: the last package) and record both (with ``extra``) as served."""
    tag = model_tag or packaged_tag(Layout(root).bundle.folder)
    bento = bento_of(tag)
    record = {"model_tag": tag, "bento_tag": bento,
              "promoted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "smoke_test": smoke_test(bento, tag, timeout)} | (extra or {})
    promoted_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = promoted_file.with_name(f".{promoted_file.name}.new")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, promoted_file)
    return record


def served_tag(root: Path, promoted_file: Path) -> str:
    """What ``shoprec serve`` serves: the promoted model, or before any promotion the last package."""
    if promoted_file.is_file():
        return json.loads(promoted_file.read_text())["model_tag"]
    return packaged_tag(Layout(root).bundle.folder)

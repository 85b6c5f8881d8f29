"""Promotion: a packaged model becomes the served one only after it loads and answers.

The package stage runs after the gate, so a packaged model already beats the baselines;
the smoke test adds what offline metrics cannot see: the bundle loads in a real
``shoprec serve`` and ``/recommend``, ``/search`` and ``/similar`` answer with items.
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
from shoprec.serving.bento import packaged_tag
from shoprec.serving.process import start_server


class SmokeTestFailed(RuntimeError):
    pass


def smoke_test(root: Path, model_tag: str, timeout: float = 300.0) -> dict:
    """Start ``model_tag`` on a free port, ask each read endpoint once, stop; the answers' sizes."""
    with tempfile.TemporaryDirectory(prefix="shoprec-smoke-") as tmp:
        try:
            server = start_server(root, Path(tmp) / "feedback.db", Path(tmp) / "server.log", workers=1,
                                  timeout=timeout, model=model_tag)
        except RuntimeError as exc:
            raise SmokeTestFailed(f"{model_tag} did not start: {exc}") from exc
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
    """Smoke-test ``model_tag`` (default: the last package) and record it (with ``extra``) as the served model."""
    tag = model_tag or packaged_tag(Layout(root).bundle.folder)
    record = {"model_tag": tag, "promoted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "smoke_test": smoke_test(root, tag, timeout)} | (extra or {})
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

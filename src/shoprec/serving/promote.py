"""Promotion: a packaged model becomes the served one only after it loads and answers.

The package stage runs after the gate, so a packaged model already beats the baselines;
the smoke test adds what offline metrics cannot see: the bento the package stage built
for the model, in a fresh environment installed from the bento's own ``env/`` (as in its
image) and started from an empty folder, loads and ``/recommend``, ``/search`` and
``/similar`` answer with items. What is promoted is what deploys, not the working tree.
Only then is ``serving.promoted_file`` rewritten (atomically) to name the model, which
is what ``shoprec serve`` serves by default. A server already running keeps its model
until it is restarted (the service loads its model once, at start).

A retrained model does not go there directly: the feedback flow makes it the *pending
challenger* (:func:`make_challenger`: the same smoke test, then ``serving.challenger_file``
names it), which an experiment serves with ``serving.experiment.challenger: pending``
(``shoprec serve`` reads the tag from that file). It becomes the champion only when an
experiment's report decides to ship it: :func:`promote_challenger`, through the same
:func:`promote`.
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
    record = _tested(root, model_tag, timeout) | {"promoted_at": _now()} | (extra or {})
    _write(promoted_file, record)
    return record


def _tested(root: Path, model_tag: str | None, timeout: float) -> dict:
    """``model_tag`` (default: the last package), its newest bento, and that bento's smoke test."""
    tag = model_tag or packaged_tag(Layout(root).bundle.folder)
    bento = bento_of(tag)
    return {"model_tag": tag, "bento_tag": bento, "smoke_test": smoke_test(bento, tag, timeout)}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _write(path: Path, record: dict) -> None:
    """``record`` as ``path``'s JSON, atomically: a reader sees the old record or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.new")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, path)


def make_challenger(root: Path, challenger_file: Path, model_tag: str | None = None, timeout: float = 300.0,
                    extra: dict | None = None) -> dict:
    """Smoke-test the bento of ``model_tag`` (default: the last package) as :func:`promote` does, and record it
    (with ``extra``) in ``challenger_file`` as the pending challenger; the served model is left as it is."""
    record = _tested(root, model_tag, timeout) | {"challenger_since": _now()} | (extra or {})
    _write(challenger_file, record)
    return record


PENDING = "pending"  # serving.experiment.challenger: the model named by serving.challenger_file


def challenger_tag(serving, root: Path = Path(".")) -> str:
    """The model tag of ``serving.experiment.challenger``: as written, or for ``pending`` the tag in
    ``serving.challenger_file`` (under ``root``); ``FileNotFoundError`` saying what to do when there is none."""
    named = serving.experiment.challenger
    if named != PENDING:
        return named
    path = root / serving.challenger_file
    if not path.is_file():
        raise FileNotFoundError(f"serving.experiment.challenger is {PENDING!r} but {path} does not exist: the "
                                "feedback flow writes it after a retrain; or name a model tag, e.g. "
                                "challenger: shoprec:popularity-<version> (`shoprec package --system popularity`)")
    return json.loads(path.read_text())["model_tag"]


def promote_challenger(root: Path, serving, timeout: float = 300.0, extra: dict | None = None) -> dict:
    """Make the running experiment's challenger (``serving``: the params' serving section) the served model
    through :func:`promote`. A pending challenger takes its feedback batches to the promoted record, and its
    file is removed: it is the champion now."""
    tag = challenger_tag(serving, root)
    pending_file = root / serving.challenger_file
    pending = json.loads(pending_file.read_text()) if pending_file.is_file() else {}
    carried = {"feedback_batches": pending["feedback_batches"]} if pending.get("model_tag") == tag else {}
    record = promote(root, root / serving.promoted_file, tag, timeout,
                     extra={"experiment": serving.experiment.name} | carried | (extra or {}))
    if carried:
        pending_file.unlink()
    return record


class NotShipped(RuntimeError):
    """An experiment report that does not let its challenger be promoted (the message says why)."""


def promote_shipped(root: Path, serving, result: dict, timeout: float = 300.0) -> dict:
    """:func:`promote_challenger` when the experiment report ``result`` decided ship and its logs are of
    ``serving.experiment``'s challenger; :class:`NotShipped` otherwise (the champion stays)."""
    if result["decision"] != "ship":
        raise NotShipped(f"experiment {result['experiment']} says {result['decision']!r}: {result['reason']}")
    logged = result["variants"][result["treatment"]]["model_version"]
    if not serving.experiment.name or challenger_tag(serving, root) != logged:
        raise NotShipped(f"the logs' challenger {logged} is not serving.experiment's challenger; "
                         "promote it with --model if it is still the one to ship")
    return promote_challenger(root, serving, timeout, extra={"decision": result["decision"], "reason": result["reason"]})


def pin_served(root: Path, promoted_file: Path) -> str:
    """Before a retrain packages a new model: if nothing was promoted yet, record what ``shoprec serve``
    serves now (the last package) in ``promoted_file``, so the new package does not become the served
    model by being the last one. Its tag."""
    if not promoted_file.is_file():
        _write(promoted_file, {"model_tag": served_tag(root, promoted_file), "promoted_at": _now(),
                               "pinned": "served before the first retrain (no smoke test)"})
    return served_tag(root, promoted_file)


def served_tag(root: Path, promoted_file: Path) -> str:
    """What ``shoprec serve`` serves: the promoted model, or before any promotion the last package."""
    if promoted_file.is_file():
        return json.loads(promoted_file.read_text())["model_tag"]
    return packaged_tag(Layout(root).bundle.folder)

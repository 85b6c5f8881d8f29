"""Shared test set-up: the project's own environment on PATH, and the shared data file."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

import shoprec  # noqa: F401  (sets TF_USE_LEGACY_KERAS and telemetry switches first)

REPO = Path(__file__).resolve().parents[1]
ONLINE_RETAIL = REPO.parent / "shared" / "data" / "online_retail" / "online_retail.csv.gz"

# DVC stage commands call `shoprec`; make the venv's scripts visible to subprocesses.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
# One private temp folder for the session and every process it starts (pytest's tmp_path, TensorFlow's
# autograph modules, which a killed server never deletes, BentoML's model store), removed at exit:
# the system's temp folder is left as it was.
SESSION_TMP = Path(tempfile.mkdtemp(prefix="shoprec-tests-"))
os.environ["TMPDIR"] = tempfile.tempdir = str(SESSION_TMP)
os.environ["BENTOML_HOME"] = str(SESSION_TMP / "bentoml")
atexit.register(shutil.rmtree, SESSION_TMP, ignore_errors=True)


@pytest.fixture(scope="session")
def online_retail_path() -> Path:
    if not ONLINE_RETAIL.exists():
        pytest.skip(f"shared Online Retail copy not found at {ONLINE_RETAIL}; tests on real data skipped")
    return ONLINE_RETAIL

# Test helpers (repo copies, strace logs, stage specs, synthetic vectors), shared with bench/.
sys.path.insert(0, str(REPO / "tests" / "helpers"))


@pytest.fixture(scope="session")
def pretrained_text_model(tmp_path_factory) -> Path:
    """The ``finetune_text`` stage's folder with ``text.finetune_layers: 0``: the pretrained MiniLM's files and
    their int8 export, made once (the export takes a while) for the tests that check either."""
    from shoprec.config import Params
    from shoprec.stages.finetune_text import finetune_text

    scratch = tmp_path_factory.mktemp("pretrained_text_model")
    return finetune_text(scratch / "no_split_needed", scratch / "no_items_needed", scratch / "model", Params())


@dataclass
class PipelineRun:
    root: Path
    first: subprocess.CompletedProcess  # the first `shoprec run` (`dvc repro`) of the scratch copy
    trace: Path | None  # strace logs of its stages (file_trace), None without strace


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory) -> PipelineRun:
    """A scratch copy of the repo on the small sample (MiniLM fine-tuned), after one full `shoprec run`
    (shared by tests).

    Its stages run under strace when it is installed, so that test_dvc_truth can check
    what they touched against dvc.yaml without a second run.
    """
    from file_trace import install_wrapper, strace
    from repo_copy import SUITE_RUN, copy_repo

    scratch = tmp_path_factory.mktemp("pipeline")
    root = copy_repo(scratch / "repo", SUITE_RUN)
    env, trace = dict(os.environ), None
    if strace():
        trace = scratch / "trace"
        wrapper = install_wrapper(scratch / "bin", Path(sys.executable).with_name("shoprec"), trace)
        env["PATH"] = f"{wrapper}{os.pathsep}{env['PATH']}"
    # `shoprec run` (what `make run` calls) streams DVC's output with its own stage lines
    first = subprocess.run([Path(sys.executable).with_name("shoprec"), "run"], cwd=root, capture_output=True, text=True,
                           env=env)
    return PipelineRun(root, first, trace)


@pytest.fixture(scope="session")
def bundle(pipeline_run) -> Path:
    """The serving bundle the package stage of pipeline_run wrote."""
    return pipeline_run.root / "models/serving/bundle"


@pytest.fixture(scope="session")
def package_record(pipeline_run) -> dict:
    """What the package stage of pipeline_run built: its model tag, bento tag, commit and data hash."""
    if pipeline_run.first.returncode != 0:
        pytest.fail(f"shoprec run failed:\n{(pipeline_run.first.stdout + pipeline_run.first.stderr)[-3000:]}")
    return json.loads((pipeline_run.root / "var/package.json").read_text())


@pytest.fixture(scope="session")
def served(pipeline_run, package_record, tmp_path_factory):
    """A real `shoprec serve` (bentoml serve, 2 workers) on the pipeline_run models."""
    from shoprec.serving.process import start_server

    folder = tmp_path_factory.mktemp("served")
    server = start_server(pipeline_run.root, folder / "feedback.db", folder / "server.log", workers=2)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def server_url(served) -> str:
    return served.url


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server for the session (tests/helpers/pg_server.py); skips without Debian's binaries."""
    from pg_server import remove, start_postgres

    server = start_postgres()
    yield server
    remove(server)


@pytest.fixture(params=["sqlite", "postgresql"])
def new_store(request, tmp_path):
    """``new_store(name="fb")``: the store ``name`` of this test (made on the first call), on each backend in turn.

    The same name gives the same store; ``str(store.where)`` opens it again (in another process too).
    """
    from shoprec.serving.store import open_store

    made = {}
    server = request.getfixturevalue("postgres") if request.param == "postgresql" else None

    def make(name: str = "fb"):
        if name not in made:
            made[name] = open_store(server.database() if server else tmp_path / f"{name}.db")
        return made[name]

    yield make
    for store in made.values():
        store.close()


@pytest.fixture(scope="session")
def popularity_package(pipeline_run, package_record) -> dict:
    """`shoprec package --system popularity` of pipeline_run (no bento): its record, with the model tag."""
    done = subprocess.run([Path(sys.executable).with_name("shoprec"), "package", "--system", "popularity",
                           "--no-bento"], cwd=pipeline_run.root, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="session")
def experiment_served(pipeline_run, popularity_package, tmp_path_factory):
    """A real `shoprec serve` (1 worker) running the experiment SERVED_EXPERIMENT: the pipeline_run
    model as champion, its popularity baseline as challenger."""
    from served_experiment import SERVED_EXPERIMENT, with_experiment

    from shoprec.serving.process import start_server

    folder = tmp_path_factory.mktemp("experiment")
    params = with_experiment(pipeline_run.root, folder,
                             SERVED_EXPERIMENT | {"challenger": popularity_package["model_tag"]})
    server = start_server(pipeline_run.root, folder / "feedback.db", folder / "server.log", workers=1, params=params)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def harness():
    """A temporary Prefect server for the session's flow runs."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield

"""The README is a guide a newcomer can follow: short, and its command blocks work as written.

The own-data block runs in a fresh scratch clone; the serve-and-call block runs on a copy of
the suite's pipeline run (what `make run` leaves behind), with its port moved to a free one.
`make run` and `make test` themselves are what CI runs on a fresh clone.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from repo_copy import REPO, copy_repo

README = (REPO / "README.md").read_text()
MAX_LINES = 250


def block(heading: str) -> str:
    """The first ```bash block under the ``## heading`` section."""
    section = README.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1)


def run_block(script: str, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """Run ``script`` with bash -e in ``cwd`` (whose .venv is the suite's), in its own process group."""
    (cwd / ".venv").symlink_to(Path(sys.executable).parents[1], target_is_directory=True)
    proc = subprocess.Popen(["bash", "-e", "-c", script], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        out += f"\n[the block did not finish within {timeout:.0f} s]"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # a server the block left behind
        except ProcessLookupError:
            pass
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")


def test_readme_is_a_short_guide():
    lines = README.count("\n")
    assert lines <= MAX_LINES, f"README.md has {lines} lines (at most {MAX_LINES}): move details to docs/"
    for section in ("Set up and run", "Bring your own data", "Serve and call the endpoints", "Schedule in the Prefect UI",
                    "GPU", "Deploy", "Scaling out", "Security", "Troubleshooting", "Headline figures"):
        assert f"\n## {section}\n" in README
    assert README.count("```mermaid") == 2
    dag = README.split("```mermaid", 1)[1].split("```", 1)[0]
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert all(re.search(rf"\b{name}\b", dag) for name in stages), "the README's DAG names every dvc.yaml stage"
    assert "make run" in block("Set up and run") and "make test" in block("Set up and run")
    hashes = re.findall(r"(?<![0-9A-Za-z])(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}(?![0-9A-Za-z])", README)
    assert not hashes, f"commit hashes in the README: {hashes}"


def test_own_data_block_validates_the_example_shop(tmp_path):
    root = copy_repo(tmp_path / "clone", {})
    done = run_block(block("Bring your own data"), root, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "validate: ran in" in done.stdout and "| events" in done.stdout  # the report the block prints
    assert (root / "data/clean/items.parquet").is_file()
    import pandas as pd

    assert len(pd.read_parquet(root / "data/clean/events.parquet")) == 4


def test_serve_block_answers_on_the_packaged_model(pipeline_run, tmp_path):
    if pipeline_run.first.returncode != 0:
        pytest.fail(f"shoprec run failed:\n{(pipeline_run.first.stdout + pipeline_run.first.stderr)[-3000:]}")
    root = tmp_path / "repo"
    shutil.copytree(pipeline_run.root, root, symlinks=True, ignore=shutil.ignore_patterns(".venv", "var"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = block("Serve and call the endpoints").replace("3000", str(port))
    done = run_block(script, root, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    # each answer starts a line; the server, which logs to the same terminal, may write right after it
    answers = [json.JSONDecoder().raw_decode(line)[0] for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(answers) == 3, done.stdout[-3000:]  # the block's three calls, in order
    recommended, searched, feedback = answers
    assert recommended.get("items") and recommended["model_version"].startswith("shoprec:"), recommended
    assert searched.get("parsed", {}).get("max_price") == 20 and searched["items"], searched
    assert feedback.get("accepted") == 1, feedback

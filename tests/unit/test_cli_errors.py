"""The command line's answer to an operator's mistake is one line and exit code 1, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TINY = "ingest:\n  sample:\n    n_items: 40\n    n_users: 30\n    n_events: 400\n    days: 14\n"


def shoprec(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).with_name("shoprec")), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def params(tmp_path) -> Path:
    (tmp_path / "params.yaml").write_text(TINY)
    return tmp_path / "params.yaml"


@pytest.mark.parametrize("raw_only", [True, False])
def test_ingest_into_a_file_is_one_line(tmp_path, params, raw_only):
    (tmp_path / "taken").write_text("not a folder")
    result = shoprec("ingest", *(["--raw-only"] if raw_only else []), "--out", "taken", "--params", str(params),
                     cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == ("shoprec: taken: File exists (a file is where a folder is needed: give a folder "
                                     "path, or move the file)")


def test_ingest_into_an_unwritable_folder_is_one_line(tmp_path, params):
    from immutable import immutable

    (tmp_path / "locked").mkdir()
    with immutable(tmp_path / "locked"):
        result = shoprec("ingest", "--raw-only", "--out", "locked/raw", "--params", str(params), cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("shoprec: locked/raw: ") and "choose a location" in result.stderr


@pytest.mark.parametrize("url, message", [
    ("http://example.com:3000", "simulate --url http://example.com:3000: only a service on this machine"),
    ("http://127.0.0.1:9", "simulate: http://127.0.0.1:9: "),  # nothing listens on the discard port
])
def test_simulate_refuses_other_hosts_and_says_when_no_service_answers(tmp_path, params, url, message):
    result = shoprec("simulate", "--url", url, "--shoppers", "5", "--seed", "1", "--params", str(params), cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(message) and len(result.stderr.strip().splitlines()) == 1

"""Shared test set-up: the project's own environment on PATH, and the shared data file."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import shoprec  # noqa: F401  (sets TF_USE_LEGACY_KERAS and telemetry switches first)

REPO = Path(__file__).resolve().parents[1]
ONLINE_RETAIL = REPO.parent / "shared" / "data" / "online_retail" / "online_retail.csv.gz"

# DVC stage commands call `shoprec`; make the venv's scripts visible to subprocesses.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


@pytest.fixture(scope="session")
def online_retail_path() -> Path:
    if not ONLINE_RETAIL.exists():
        pytest.skip(f"shared Online Retail copy not found at {ONLINE_RETAIL}; tests on real data skipped")
    return ONLINE_RETAIL

# The benchmarks' helper that copies the working tree into a scratch git repo.
sys.path.insert(0, str(REPO / "bench"))

"""The GPU install's lock (`make install-gpu`): the CPU environment plus TensorFlow's CUDA wheels, and installable.

No GPU is needed: the first test reads the two locks and TensorFlow's own metadata, the
second asks uv to plan the exact install of the lock into an empty environment (it finds
every pinned wheel on the index for this platform, without downloading them).
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from repo_copy import REPO

UV = Path(sys.executable).with_name("uv")


def pins(lock: Path) -> dict[str, str]:
    """Package name -> pinned version of a ``uv pip compile`` output."""
    out = {}
    for line in lock.read_text().splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            name, version = line.split("==")
            out[canonicalize_name(name)] = version.strip()
    return out


def cuda_requirements() -> list[Requirement]:
    """What ``tensorflow[and-cuda]`` adds, from the installed TensorFlow's metadata (the CPU lock's version)."""
    reqs = [Requirement(r) for r in importlib.metadata.requires("tensorflow")]
    return [r for r in reqs if r.marker and r.marker.evaluate({"extra": "and-cuda"})
            and not r.marker.evaluate({"extra": ""})]


def test_gpu_lock_is_the_cpu_lock_plus_tensorflows_cuda_wheels():
    cpu, gpu = pins(REPO / "requirements.lock"), pins(REPO / "requirements-gpu.lock")
    assert {name: gpu.get(name) for name in cpu} == cpu, "every CPU pin, at the same version"
    cuda = {canonicalize_name(r.name): r for r in cuda_requirements()}
    assert len(cuda) >= 10 and set(gpu) - set(cpu) == set(cuda), "and nothing else but the CUDA wheels"
    for name, requirement in cuda.items():
        assert requirement.specifier.contains(gpu[name]), f"{name}=={gpu[name]} outside TensorFlow's {requirement}"
    assert importlib.metadata.version("tensorflow") == cpu["tensorflow"]


def test_gpu_lock_resolves_on_the_index(tmp_path):
    subprocess.run([UV, "venv", "--quiet", "--python", sys.executable, tmp_path / "venv"], check=True, timeout=120)
    plan = subprocess.run([UV, "pip", "sync", "--dry-run", "--python", tmp_path / "venv/bin/python",
                           REPO / "requirements-gpu.lock"], capture_output=True, text=True, timeout=300)
    assert plan.returncode == 0, plan.stderr[-3000:]
    planned = {canonicalize_name(line.split()[1].split("==")[0]) for line in plan.stderr.splitlines()
               if line.startswith(" + ")}
    assert planned == set(pins(REPO / "requirements-gpu.lock")), plan.stderr[-3000:]

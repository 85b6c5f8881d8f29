"""TF_CONFIG decides between one machine and a cluster; a TF_CONFIG that names no cluster is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shoprec.models.training import ClusterConfigError, cluster_config

TWO = {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 1}}


def test_no_tf_config_is_one_machine(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert cluster_config() is None
    monkeypatch.setenv("TF_CONFIG", "  ")
    assert cluster_config() is None
    monkeypatch.setenv("TF_CONFIG", json.dumps(TWO))
    assert cluster_config() == TWO


@pytest.mark.parametrize("raw", [
    "worker 0 of two",  # not JSON
    json.dumps(["127.0.0.1:1"]),  # not an object
    json.dumps({"task": TWO["task"]}),  # no cluster
    json.dumps({"cluster": TWO["cluster"]}),  # no task
    json.dumps({"cluster": TWO["cluster"], "task": {"type": "chief", "index": 0}}),  # a task type the cluster lacks
    json.dumps({"cluster": TWO["cluster"], "task": {"type": "worker", "index": 2}}),  # past the list's end
    json.dumps({"cluster": TWO["cluster"], "task": {"type": "worker", "index": "0"}}),  # index not a number
])
def test_a_tf_config_naming_no_cluster_is_refused(monkeypatch, raw):
    monkeypatch.setenv("TF_CONFIG", raw)
    with pytest.raises(ClusterConfigError, match=r"^TF_CONFIG: .* e\.g\. \{\"cluster\": .*unset it to train on one"):
        cluster_config()


def test_the_training_commands_say_it_in_one_line(tmp_path):
    env = os.environ | {"TF_CONFIG": "worker 0 of two"}
    for command in ("train-retrieval", "train-ranking"):
        args = [str(Path(sys.executable).with_name("shoprec")), command, "--data", "split", "--items", "items.parquet",
                "--text-emb", "emb.parquet", "--out", "out", *(["--retrieval", "r"] if command == "train-ranking" else [])]
        result = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
        assert [line for line in result.stderr.splitlines() if line.startswith("TF_CONFIG: ")] == [
            result.stderr.strip().splitlines()[-1]]
        assert not (tmp_path / "out").exists()

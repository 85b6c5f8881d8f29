"""DVC on object storage: the pipeline's outputs go to an S3-compatible remote and come back whole.

A real S3 server on loopback (moto's server mode, a subprocess) stands in for AWS S3 or MinIO,
and DVC talks to it through `dvc-s3` as it would to either. The remote is configured with the
README's commands (URL and endpoint in `.dvc/config`, committed; credentials only in the
environment). The session's reproduced copy is pushed, a fresh `git clone` of it pulls, and
there the pipeline is up to date: `dvc repro` runs nothing and the metrics are the same bytes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from shoprec.serving.process import free_port

pytestmark = pytest.mark.slow

BUCKET = "shoprec"
# Any key works with moto; a real remote gets its own through the same variables.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "shoprec-test", "AWS_SECRET_ACCESS_KEY": "shoprec-test",
               "AWS_DEFAULT_REGION": "us-east-1"}
METRICS = ("reports/metrics.json", "reports/search_metrics.json", "reports/gate.json", "reports/headline.json")


@pytest.fixture
def s3_endpoint(tmp_path):
    """``http://127.0.0.1:<port>`` of a moto S3 server holding an empty bucket ``BUCKET``; stopped after the test."""
    import boto3

    port = free_port()
    log = tmp_path / "moto.log"
    with log.open("w") as out:
        server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                  stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/moto-api/", timeout=2)
                break
            except httpx.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"moto server did not start on {url}:\n{log.read_text()[-2000:]}")
                time.sleep(0.2)
        boto3.client("s3", endpoint_url=url, **_boto_credentials()).create_bucket(Bucket=BUCKET)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _boto_credentials() -> dict[str, str]:
    return {"aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            "region_name": CREDENTIALS["AWS_DEFAULT_REGION"]}


def copy_sharing_cache(root: Path, dest: Path) -> Path:
    """A copy of ``root`` whose DVC cache files are hard links (read-only, named by their hash:
    no command changes one in place), so that a copy costs no second cache on disk."""
    shutil.copytree(root, dest, symlinks=True, ignore=lambda folder, _: (
        ["cache", "tmp"] if Path(folder) == root / ".dvc" else []))
    shutil.copytree(root / ".dvc/cache", dest / ".dvc/cache", copy_function=os.link)
    return dest


def run(cwd: Path, *cmd: str) -> str:
    """``cmd`` in ``cwd`` with the S3 credentials in its environment; its output, or a failure showing it."""
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, **CREDENTIALS})
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{(done.stdout + done.stderr)[-3000:]}"
    return done.stdout + done.stderr


def test_pushed_outputs_come_back_in_a_fresh_clone_and_repro_does_nothing(pipeline_run, s3_endpoint, tmp_path):
    import boto3

    if pipeline_run.first.returncode != 0:
        pytest.fail(f"shoprec run failed:\n{(pipeline_run.first.stdout + pipeline_run.first.stderr)[-3000:]}")
    source = copy_sharing_cache(pipeline_run.root, tmp_path / "source")
    run(source, "dvc", "remote", "add", "-d", "s3", f"s3://{BUCKET}/dvc")
    run(source, "dvc", "remote", "modify", "s3", "endpointurl", s3_endpoint)
    run(source, "git", "add", "-A")
    run(source, "git", "-c", "user.name=shoprec", "-c", "user.email=ci@shoprec", "commit", "-qm", "reproduced")
    pushed = run(source, "dvc", "push")
    assert "pushed" in pushed, pushed

    s3 = boto3.client("s3", endpoint_url=s3_endpoint, **_boto_credentials())
    stored = s3.list_objects_v2(Bucket=BUCKET, Prefix="dvc/")
    assert stored["KeyCount"] > 0 and all(o["Key"].startswith("dvc/files/md5/") for o in stored["Contents"])

    fresh = tmp_path / "fresh"
    run(tmp_path, "git", "clone", "-q", str(source), str(fresh))
    assert not (fresh / "reports/metrics.json").exists() and not (fresh / "models/serving/bundle").exists()
    run(fresh, "dvc", "pull")
    assert "Data and pipelines are up to date." in run(fresh, "dvc", "status")
    repro = run(fresh, "dvc", "repro")
    assert "Running stage" not in repro, repro
    assert "didn't change, skipping" in repro
    assert run(fresh, "git", "status", "--porcelain") == ""  # dvc.lock and every tracked file as committed
    for path in METRICS:
        assert (fresh / path).read_bytes() == (source / path).read_bytes(), path

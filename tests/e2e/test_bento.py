"""The bento on its own, as its image runs it.

The bento the package stage built is exported with its model, the layout ``bentoml
containerize`` copies into the image; a new virtualenv gets the bento's own environment
from its ``env/python/install.sh`` (what the image's Dockerfile runs); then that venv's
``bentoml serve`` serves the exported folder from an empty working directory with an empty
BentoML home. No working tree, no dev venv, no model store, no MiniLM weights package:
every endpoint must answer all the same.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from lock_pins import normalised, pins
from shoprec.serving.bento import install_env
from shoprec.serving.process import start_bento

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SITE = "lib/python3.11/site-packages"


@pytest.fixture(scope="module")
def image(package_record, tmp_path_factory) -> Path:
    """The exported bento with its model: the build context of ``bentoml containerize``."""
    import bentoml

    folder = tmp_path_factory.mktemp("image") / "bento"
    bentoml.bentos.export_bento(package_record["bento_tag"], str(folder), "folder")
    return folder


@pytest.fixture(scope="module")
def venv(image, tmp_path_factory) -> Path:
    return install_env(image, tmp_path_factory.mktemp("env") / "venv")


@pytest.fixture(scope="module")
def bento_server(image, venv, tmp_path_factory):
    scratch = tmp_path_factory.mktemp("bento-serve")
    (scratch / "empty").mkdir()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("BENTOML_HOME", str(scratch / "bentoml-home"))  # empty: the model comes from the bento
        server = start_bento(str(image), venv, scratch / "empty", scratch / "feedback.db", scratch / "server.log",
                             workers=1)
    yield server
    server.stop()


def installed(venv: Path) -> dict[str, str]:
    """Distributions in ``venv`` by normalised name, with their versions."""
    import importlib.metadata

    return {normalised(d.metadata["Name"]): d.version for d in importlib.metadata.distributions(path=[str(venv / SITE)])}


def test_the_bento_installs_the_serving_lock_and_its_wheel_only(image, venv):
    serving = pins(REPO / "requirements-serving.lock")
    assert pins(image / "env/python/requirements.txt") == serving
    expected = serving | {"shoprec": "0.1.0"}
    assert installed(venv) == expected  # no weights package, no pipeline, test or browser tooling
    # the wheel's copy of the service, not a link to a checkout
    assert (venv / SITE / "shoprec/serving/service.py").is_file()
    assert not [p for p in (venv / SITE).glob("*.pth") if str(REPO) in p.read_text()]


def test_every_endpoint_answers_from_the_bento_alone(bento_server, package_record):
    url, tag = bento_server.url, package_record["model_tag"]

    def post(route: str, body: dict) -> dict:
        response = httpx.post(f"{url}/{route}", json=body, timeout=30)
        assert response.status_code == 200, (route, response.text)
        assert response.json()["model_version"] == tag
        return response.json()

    user = post("users", {"limit": 3})["users"][0]
    assert post("user", {"user_id": user})["recent_purchases"]
    recommended = post("recommend", {"user_id": user, "k": 5})["items"]
    assert len(recommended) == 5
    item = recommended[0]
    found = post("search", {"query": item["title"], "user_id": user, "k": 5})["items"]
    assert item["item_id"] in {i["item_id"] for i in found}  # MiniLM and the lexical index, from the bundle
    assert post("similar", {"item_id": item["item_id"], "k": 5})["items"]
    event = {"user_id": user, "item_id": item["item_id"], "event_type": "click", "timestamp": "2024-05-01T10:00:00Z"}
    assert post("feedback", {"events": [event]})["accepted"] == 1
    assert bento_server.feedback_db.is_file()
    pages = {"/healthz": "", "/livez": "", "/readyz": "", "/metrics": "bentoml_service_request", "/": "swagger",
             "/docs.json": "/recommend", "/ui/": "<html", "/ui/app.js": "fetch(", "/ui/style.css": "{",
             "/static_content/swagger-ui-bundle.js": "swagger"}
    for path, says in pages.items():
        response = httpx.get(url + path, timeout=30)
        assert response.status_code == 200 and says in response.text.lower(), path


def test_the_server_runs_the_bento_venv_from_the_empty_folder(bento_server, venv):
    root = psutil.Process(bento_server.process.pid)
    processes = [root, *root.children(recursive=True)]
    assert len(processes) >= 2  # BentoML's process manager and a worker
    assert root.cwd() == str(bento_server.log.parent / "empty")  # a worker moves to the bento's src/
    for proc in processes:
        assert proc.cmdline()[0].startswith(str(venv / "bin")), proc.cmdline()
        assert "PYTHONPATH" not in proc.environ()


def debian_packages(paths: set[str]) -> set[str]:
    """The Debian packages owning the libraries at ``paths``, with or without merged /usr."""
    candidates = set()
    for path in paths:
        for variant in (path, os.path.realpath(path)):
            bare = variant.removeprefix("/usr")
            candidates |= {bare, "/usr" + bare}
    listing = subprocess.run(["dpkg", "-S", *sorted(candidates)], capture_output=True, text=True).stdout
    return {line.split(":")[0] for line in listing.splitlines()}


@pytest.mark.skipif(not Path("/usr/bin/dpkg").exists(), reason="needs Debian's dpkg to name system packages")
def test_bentofile_lists_every_system_library_a_worker_loads(bento_server, venv):
    """The image's Python comes with its base image; what the bento's packages load from the system
    (outside their wheels) must be glibc or one of the Debian packages bentofile.yaml installs."""
    worker = max(psutil.Process(bento_server.process.pid).children(recursive=True),
                 key=lambda p: p.memory_info().rss)
    libraries = {m.path for m in worker.memory_maps() if m.path.startswith(str(venv)) and ".so" in Path(m.path).name}
    assert any("tensorflow" in p for p in libraries)
    needed = set()
    for library in libraries:
        for line in subprocess.run(["ldd", library], capture_output=True, text=True).stdout.splitlines():
            if (found := re.search(r"=> (/\S+)", line)) and found[1].startswith(("/lib", "/usr/lib")):
                needed.add(found[1])
    owners = debian_packages(needed)
    assert {"libc6", "libstdc++6"} <= owners
    listed = set(yaml.safe_load((REPO / "bentofile.yaml").read_text())["docker"]["system_packages"])
    assert owners - {"libc6"} <= listed, f"loaded from Debian packages bentofile.yaml does not list: {owners - listed}"

"""Memory of one model vs two (an experiment) in a serving worker: peak resident set, VmHWM.

Starts ``shoprec serve`` with one worker on the bundle of a repository copy that ``dvc
repro`` has built (``--root``, as for ``bench/bench_load.py``), first alone, then with an
experiment whose challenger is the baseline ``--system`` packaged from the same copy
(``shoprec package --system``), asks each read endpoint ``--requests`` times for shoppers
of both arms, and reads ``VmHWM`` (the peak resident set of that process since it started)
and ``VmRSS`` from ``/proc/<pid>/status`` of the worker process, the one that loads the
models (BentoML's process manager holds none). Not ``ru_maxrss``: that is of this process
or its waited-for children, not of a server's worker.

    python bench/bench_experiment_memory.py --root /tmp/copy [--system popularity]
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import signal
import sys
import tempfile
from pathlib import Path

import httpx
import psutil
import yaml

from shoprec.config import load_params
from shoprec.layout import Layout
from shoprec.serving.bento import import_bundle
from shoprec.serving.bundle import build_bundle
from shoprec.serving.process import Server, start_server


def worker_memory(server: Server) -> dict[str, int]:
    """VmHWM and VmRSS (MiB) of the server's worker process."""
    tree = [psutil.Process(server.process.pid), *psutil.Process(server.process.pid).children(recursive=True)]
    worker = next(p for p in tree if "_bentoml_impl.worker" in " ".join(p.cmdline()))
    status = dict(line.split(":", 1) for line in Path(f"/proc/{worker.pid}/status").read_text().splitlines())
    return {key: int(status[key].split()[0]) // 1024 for key in ("VmHWM", "VmRSS")}


def exercise(server: Server, requests: int) -> None:
    """Each read endpoint for ``requests`` shoppers (both arms in an experiment), a new search text each."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        users = client.post("/users", json={"limit": requests}).json()["users"]
        item = client.post("/recommend", json={"user_id": users[0], "k": 1}).json()["items"][0]
        for n, user in enumerate(users):
            for route, body in (("/recommend", {"user_id": user, "k": 10}),
                                ("/search", {"query": f"{item['title'].split()[-1]} {n}", "user_id": user, "k": 10}),
                                ("/similar", {"item_id": item["item_id"], "user_id": user, "k": 10})):
                client.post(route, json=body).raise_for_status()


def main() -> None:
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>`: where a slow run is
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="a repo copy with models/serving/bundle built")
    parser.add_argument("--system", default="popularity", help="the challenger: a baseline packaged from --root")
    parser.add_argument("--requests", type=int, default=200, help="shoppers asked per endpoint")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="shoprec-memory-") as tmp:
        scratch = Path(tmp)
        os.environ["BENTOML_HOME"] = str(scratch / "bentoml")  # a private model store for this run
        root = args.root.resolve()
        champion = import_bundle(root / Layout(Path(".")).bundle.folder)
        challenger = import_bundle(build_bundle(Layout(root), load_params(root / "params.yaml"),
                                                scratch / args.system, root / "params.yaml", args.system))
        params = yaml.safe_load((root / "params.yaml").read_text())
        params["serving"]["experiment"] = {"name": "memory", "challenger": challenger, "share": 0.5, "salt": "m"}
        (scratch / "experiment.yaml").write_text(yaml.safe_dump(params))
        rows = {}
        for label, params_file in (("champion only", None), (f"champion + {args.system}", scratch / "experiment.yaml")):
            server = start_server(root, scratch / f"{len(rows)}.db", scratch / f"{len(rows)}.log", workers=1,
                                  model=champion, timeout=600, params=params_file)
            try:
                exercise(server, args.requests)
                rows[label] = worker_memory(server)
            finally:
                server.stop()
    base = next(iter(rows.values()))["VmHWM"]
    print(f"`{' '.join(['python', *sys.argv])}`\n\n| worker | VmHWM (MiB) | VmRSS (MiB) | VmHWM vs one model |\n"
          "|---|---|---|---|")
    for label, memory in rows.items():
        print(f"| {label} | {memory['VmHWM']:,} | {memory['VmRSS']:,} | {memory['VmHWM'] - base:+,} MiB |")


if __name__ == "__main__":
    main()

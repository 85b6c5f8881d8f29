"""Start and stop a real ``shoprec serve`` (``bentoml serve``) as a child process.

Used by the promotion smoke test (a new model must load and answer before it is
served), by the tests and by the load benchmark, so all three start the server the way
a user does.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    process: subprocess.Popen
    url: str
    log: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        """Signal the whole process group (the arbiter and its workers) and wait for it."""
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def start_server(root: Path, feedback_db: Path, log: Path, workers: int = 1, timeout: float = 180.0,
                 model: str | None = None) -> Server:
    """``shoprec serve`` in ``root`` on a free port; returns once ``/readyz`` answers 200.

    Raises ``RuntimeError`` with the server's log when it exits or never gets ready.
    """
    port = free_port()
    shoprec = str(Path(sys.executable).with_name("shoprec"))
    fh = log.open("w")
    process = subprocess.Popen(
        [shoprec, "serve", "--port", str(port), "--feedback-db", str(feedback_db), "--workers", str(workers),
         *(["--model", model] if model else [])], cwd=root, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.stop(signal.SIGKILL)
    raise RuntimeError(f"server not ready after {timeout:.0f} s:\n{log.read_text()[-4000:]}")

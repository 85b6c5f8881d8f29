"""Start and stop a real ``shoprec serve`` (``bentoml serve``) as a child process.

Used by the tests and the load benchmark, so both start the server the way a user
does, and by the promotion smoke test, which serves the built bento in its own
environment (:func:`start_bento`), the way its image does.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil


REFUSAL_ENV = "SHOPREC_REFUSAL_FILE"  # where a worker that cannot load its model writes why
PR_SET_PDEATHSIG = 1  # prctl(2) option: the signal this process gets when its parent exits


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Have Linux send ``sig`` to this process when its parent exits, however it exits.

    BentoML's workers are children of its process manager, but not in the process group
    of the command that started it, so a ``kill -9`` of that group (or an OOM kill of
    the manager) would leave them serving on the shared socket, and a restart on the same
    port would fail. Called in each worker and (through ``preexec_fn``) in the manager.
    If the parent died before the request took effect, the signal is sent now. A no-op
    where prctl does not exist (not Linux).
    """
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:
        os.kill(os.getpid(), sig)


def bind_problem(host: str, port: int) -> str | None:
    """Why a server could not listen on ``host:port`` (in use, no such address), or None if it can.

    Bound the way uvicorn binds (SO_REUSEADDR), so a port in TIME_WAIT counts as free.
    """
    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return (f"port {port} on {host} is in use (another server, perhaps an earlier `shoprec serve`); "
                    "stop it or choose another --port")
        return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    return None


def run_foreground(command: list[str], env: dict[str, str]) -> int:
    """Run ``bentoml serve`` as a child until it ends; its exit status, or 1 if a worker refused.

    A worker whose model does not load stops the server (the service signals BentoML's
    process manager) but BentoML then exits with 0, as after any shutdown; the worker's
    reason, left in the file named by ``$SHOPREC_REFUSAL_FILE``, turns that into a failure
    with the reason on stderr. SIGTERM to this process is passed on; Ctrl-C reaches the
    whole terminal process group, so here it only waits for the server to stop.
    """
    with tempfile.TemporaryDirectory(prefix="shoprec-serve-") as tmp:
        refusal = Path(tmp) / "refusal.txt"
        child = subprocess.Popen(command, env=env | {REFUSAL_ENV: str(refusal)}, preexec_fn=die_with_parent)
        signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM))
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        status = child.wait()
        if refusal.exists():
            print(refusal.read_text(), file=sys.stderr)
            return 1
        return 128 - status if status < 0 else status  # killed by signal N: 128 + N, as a shell reports it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    process: subprocess.Popen
    url: str
    log: Path
    feedback_db: Path | str  # its store: a SQLite file or a postgresql:// URL

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        """Signal the server and every process under it, and wait until all are gone.

        BentoML's workers may leave the server's process group, so they are found as
        descendants (before the signal: an orphaned worker would still accept requests
        on the shared socket). With SIGKILL this is a crash of the whole server.
        """
        try:
            procs = [psutil.Process(self.process.pid)]
            procs += procs[0].children(recursive=True)
        except psutil.NoSuchProcess:
            return
        for proc in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.send_signal(sig)
        _, alive = psutil.wait_procs(procs, timeout=timeout)
        for proc in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        psutil.wait_procs(alive, timeout=timeout)
        self.process.wait()


def private_home(folder: Path) -> Path:
    """A BentoML home at ``folder`` that shares the model and bento stores of the current one, nothing else.

    ``bentoml serve`` keeps its Prometheus files in ``<home>/prometheus_multiproc_dir`` and
    empties that folder when it starts, so a second server on the same home (a promotion's
    smoke test beside the running service, one test's server beside another's) wipes the
    first one's counters: its ``/metrics`` would then read the other's files. The model
    stores (``models``, and ``bentos`` to serve a bento by its tag) are what a server needs from
    the shared home.
    """
    shared = Path(os.environ.get("BENTOML_HOME", Path.home() / "bentoml"))
    folder.mkdir(parents=True, exist_ok=True)
    for store in ("models", "bentos"):
        if (shared / store).is_dir():  # else BentoML makes an empty one, as it would in the shared home
            (folder / store).symlink_to((shared / store).absolute(), target_is_directory=True)
    return folder


def start_server(root: Path, feedback_db: Path | str, log: Path, workers: int = 1, timeout: float = 180.0,
                 model: str | None = None, impressions: bool | None = None, params: Path | None = None) -> Server:
    """``shoprec serve`` in ``root`` on a free port; returns once ``/readyz`` answers 200.

    ``impressions`` True or False turns impression logging on or off (None: as the model's params say);
    ``params`` is the params file ``shoprec serve`` reads (default: ``root``'s), e.g. one naming an experiment.

    Raises ``RuntimeError`` with the server's log when it exits or never gets ready.
    """
    port = free_port()
    shoprec = str(Path(sys.executable).with_name("shoprec"))
    command = [shoprec, "serve", "--port", str(port), "--feedback-db", str(feedback_db), "--workers", str(workers),
               *(["--model", model] if model else []),
               *([] if impressions is None else ["--impressions" if impressions else "--no-impressions"]),
               *(["--params", str(params)] if params else [])]
    return _ready(command, root, None, port, feedback_db, log, timeout)


def start_bento(bento: str, venv: Path, workdir: Path, feedback_db: Path, log: Path, workers: int = 1,
                timeout: float = 180.0, model: str | None = None) -> Server:
    """``bentoml serve <bento>`` (a bento tag or folder) with the bento's own environment ``venv``
    (:func:`shoprec.serving.bento.install_env`), in ``workdir``, on a free port; returns once ready.

    Nothing of the caller's checkout reaches it: the venv's interpreter and packages only, no
    ``PYTHONPATH``. ``model`` picks the model-store tag (default: the service's, ``shoprec:latest``,
    which in a bento's own model folder is its model). Raises ``RuntimeError`` like :func:`start_server`.
    """
    port = free_port()
    env = isolated_env(venv) | {"SHOPREC_FEEDBACK_DB": str(feedback_db), "SHOPREC_WORKERS": str(workers)}
    if model:
        env["SHOPREC_MODEL"] = model
    command = [str(venv / "bin" / "bentoml"), "serve", bento, "--host", "127.0.0.1", "--port", str(port)]
    return _ready(command, workdir, env, port, feedback_db, log, timeout)


def isolated_env(venv: Path) -> dict[str, str]:
    """This process's environment with ``venv`` active, no path into another Python's packages, and no
    model, experiment or real-time choice of this shell's (a smoke test serves its one model as packaged)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "SHOPREC_MODEL", "SHOPREC_EXPERIMENT", "SHOPREC_REALTIME")}
    return env | {"VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}


def _ready(command: list[str], cwd: Path, env: dict[str, str] | None, port: int, feedback_db: Path | str, log: Path,
           timeout: float) -> Server:
    """Start ``command`` (a server on ``port``), logging to ``log``, and wait until ``/readyz`` answers 200.

    The server gets a BentoML home of its own beside ``log`` (:func:`private_home`)."""
    fh = log.open("w")
    home = private_home(log.parent / f"bentoml-{port}")
    process = subprocess.Popen(command, cwd=cwd, env=(os.environ if env is None else env) | {"BENTOML_HOME": str(home)},
                               stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(process, f"http://127.0.0.1:{port}", log, feedback_db)
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

"""A real PostgreSQL server for tests: Debian's binaries, a data folder of its own, loopback only.

``initdb`` and ``postgres`` refuse to run as root, and the suite runs as root on CI, so
the server runs as the unprivileged ``nobody`` (its data folder owned by it); as any
other user it runs as that user. The binaries are those of Debian's ``postgresql``
package under ``/usr/lib/postgresql/<version>/bin`` (the Makefile's ``system-tools``
installs it); without them the tests that need a server are skipped, saying so.

The server listens on 127.0.0.1 on a free port, without a Unix socket, and trusts
local connections (a test database: no password to leak). Every test gets a schema
of its own (:meth:`Postgres.database`), so tests sharing a server share no rows.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from shoprec.serving.process import free_port

UNPRIVILEGED = "nobody"
USER = "shoprec"  # the database superuser initdb makes


def binaries() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` that has initdb and pg_ctl, or None."""
    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb") if (p.parent / "pg_ctl").exists()]
    return max(found, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, default=None)


@dataclass
class Postgres:
    bin: Path
    data: Path
    port: int
    log: Path
    _names: itertools.count = field(default_factory=lambda: itertools.count(1))

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def database(self) -> str:
        """A new empty store location; its URL: a schema of its own in the server's one database,
        named by the URL's ``search_path`` (a schema costs nothing, a database a copy of template1)."""
        import psycopg

        name = f"test_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as db:
            db.execute(f"CREATE SCHEMA {name}")
        return f"{self.url()}?options=-csearch_path%3D{name}"

    def start(self) -> None:
        self._pg_ctl("start", "-w", "-t", "60", "-l", str(self.log))

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; ``immediate`` is a crash (no checkpoint, clients cut off)."""
        self._pg_ctl("stop", "-w", "-m", mode)

    @contextlib.contextmanager
    def hung(self) -> Iterator[None]:
        """The server and its backends stopped (SIGSTOP) for the block: connections stay open and every
        query waits, as on a database host that stopped answering; resumed after."""
        postmaster = psutil.Process(int((self.data / "postmaster.pid").read_text().split()[0]))
        processes = [postmaster, *postmaster.children(recursive=True)]
        for process in processes:
            process.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            for process in processes:
                process.send_signal(signal.SIGCONT)

    def _pg_ctl(self, *args: str) -> None:
        done = _run_as_owner([str(self.bin / "pg_ctl"), "-D", str(self.data), *args])
        if done.returncode != 0:
            log = self.log.read_text()[-3000:] if self.log.exists() else ""
            raise RuntimeError(f"pg_ctl {args[0]} failed: {done.stdout}{done.stderr}{log}")


def start_postgres() -> Postgres:
    """initdb in a new folder and start the server (see the module docstring); skips without the binaries.

    The folder is made in the system's temp folder, not the test session's (that one is
    private to root, and the server's user must reach its data folder); :func:`remove`
    deletes it.
    """
    bin_dir = binaries()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin "
                    "(Debian package postgresql; `make system-tools` installs it)")
    folder = Path(tempfile.mkdtemp(prefix="shoprec-pg-", dir="/tmp"))
    folder.chmod(0o755)
    data = folder / "data"
    data.mkdir(mode=0o700)
    if os.geteuid() == 0:
        owner = pwd.getpwnam(UNPRIVILEGED)
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        os.chown(data, owner.pw_uid, owner.pw_gid)
    done = _run_as_owner([str(bin_dir / "initdb"), "-D", str(data), "-U", USER, "--auth=trust", "--no-locale",
                          "-E", "UTF8", "--no-sync"])
    if done.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"initdb failed: {done.stdout}{done.stderr}")
    server = Postgres(bin_dir, data, free_port(), folder / "server.log")
    with (data / "postgresql.conf").open("a") as conf:
        # loopback TCP only; no socket in /var/run/postgresql (not the server user's to write). No fsync:
        # the tests kill services, never this machine, and a restart after a crash would otherwise
        # fsync every test database first (a minute on a busy disk).
        conf.write(f"listen_addresses = '127.0.0.1'\nport = {server.port}\nunix_socket_directories = ''\n"
                   "max_connections = 100\nfsync = off\n")
    server.start()
    return server


def remove(server: Postgres) -> None:
    """Stop the server (if it runs) and delete its folder."""
    try:
        server.stop("immediate")
    except RuntimeError:
        pass  # stopped already
    shutil.rmtree(server.data.parent, ignore_errors=True)


def _run_as_owner(command: list[str]) -> subprocess.CompletedProcess:
    """``command`` as the server's user: ``nobody`` when this process is root, else this user."""
    extra = {}
    if os.geteuid() == 0:
        owner = pwd.getpwnam(UNPRIVILEGED)
        extra = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
    return subprocess.run(command, capture_output=True, text=True, cwd="/", **extra)

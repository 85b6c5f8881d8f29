"""Which files each DVC stage really opened: `shoprec` run under strace, one log per stage.

The pipeline fixture puts a ``shoprec`` wrapper first on ``PATH``; DVC's stage commands
call it, it runs the real command under ``strace -f`` (every thread and child process:
``git``, ``pip wheel``, ``bentoml build``), and :func:`read_trace` turns the logs into the
sets of paths read and written. Syscalls the kernel sees catch what Python-level hooks
miss: Arrow reading Parquet, TensorFlow reading a SavedModel, a subprocess reading
``requirements.lock``.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

SYSCALLS = "openat,open,creat,mkdir,mkdirat,rename,renameat,renameat2,unlink,unlinkat,chdir,execve"
# `git status` (the package stage's commit label, a run detail) reads every file of the checkout: not a dependency
IGNORED_PROGRAMS = {"git"}
WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND")
# One file per thread (-ff: no "unfinished ..." halves); -y prints each fd with its path, so a
# successful open returns "= 3</abs/path>" and an *at call's dirfd reads "4</abs/dir>"
# (AT_FDCWD</cwd>); a plain mkdir/rename/unlink path is relative to the last folder seen so.
CALL = re.compile(r"^(\w+)\((.*)\)\s+=\s+(-?\d+)(?:<(.*)>)?")
CWD = re.compile(r"AT_FDCWD<([^>]*)>")
QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
ARG = re.compile(r'(?:AT_FDCWD|\d+)<([^>]*)>|AT_FDCWD|"((?:[^"\\]|\\.)*)"')


def strace() -> str | None:
    return shutil.which("strace")


def install_wrapper(folder: Path, real_shoprec: Path, logs: Path) -> Path:
    """A ``shoprec`` in ``folder`` that runs the real one under strace, logging to ``logs/<subcommand>.*``."""
    folder.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    wrapper = folder / "shoprec"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'exec {strace()} -f -ff -qq -y -s 4096 --seccomp-bpf -e trace={SYSCALLS} -o "{logs}/$1.$$" '
        f'"{real_shoprec}" "$@"\n'
    )
    wrapper.chmod(0o755)
    return folder


@dataclass
class Access:
    read: set[Path] = field(default_factory=set)
    written: set[Path] = field(default_factory=set)


def _paths(args: str, cwd: Path) -> list[Path]:
    """The path arguments of a call, each joined to its dirfd (``*at`` calls) or to ``cwd``."""
    out, base = [], cwd
    for match in ARG.finditer(args):
        directory, quoted = match.groups()
        if quoted is None:  # a dirfd: the base of the next path
            base = Path(directory) if directory else cwd
            continue
        out.append(base / quoted)  # an absolute quoted path replaces the base
        base = cwd
    return out


def _parse(lines: list[str], cwd: Path, access: Access) -> None:
    """One thread's calls, in order; ``cwd`` follows ``chdir`` and every ``AT_FDCWD</folder>`` seen."""
    for line in lines:
        match = CALL.match(line.strip())
        if not match or int(match.group(3)) < 0:
            continue  # not a call, or a failed one (no file was touched)
        call, args, opened = match.group(1), match.group(2), match.group(4)
        if seen := CWD.search(args):
            cwd = Path(seen.group(1))
        if call == "execve":
            continue
        if call == "chdir":
            cwd = _paths(args, cwd)[0]
        elif call in ("open", "openat", "creat"):
            path = Path(opened) if opened else _paths(args, cwd)[0]
            writing = call == "creat" or any(flag in args for flag in WRITE_FLAGS)
            (access.written if writing else access.read).add(path)
        else:  # mkdir, rename (both ends), unlink
            access.written.update(_paths(args, cwd))


def _program(lines: list[str]) -> str | None:
    """The program a thread's process ran, if it called execve."""
    for line in lines:
        if line.startswith("execve(") and (quoted := QUOTED.search(line)):
            return Path(quoted.group(1)).name
    return None


def read_trace(logs: Path, subcommand: str, cwd: Path) -> Access:
    """Paths opened by every run of ``shoprec <subcommand>`` logged in ``logs`` (relative ones from ``cwd``)."""
    access = Access()
    files = sorted(logs.glob(f"{subcommand}.*"))
    if not files:
        raise FileNotFoundError(f"no strace log of `shoprec {subcommand}` in {logs}")
    for log in files:
        lines = log.read_text(errors="replace").splitlines()
        if _program(lines) not in IGNORED_PROGRAMS:
            _parse(lines, cwd, access)
    return access

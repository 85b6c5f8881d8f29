"""A gzip bomb, and `shoprec ingest` run in its own process with its peak memory (tests and bench/)."""

from __future__ import annotations

import gzip
import subprocess
import sys
import time
from pathlib import Path

MIB = 2**20


def gzip_bomb(folder: Path, nul_mib: int = 200) -> Path:
    """A files source whose one item title is ``nul_mib`` MiB of NUL bytes, gzipped a chunk at a time
    (never all in memory; about 1 KB on disk per MiB), beside a valid one-event events.csv."""
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(folder / "items.csv.gz", "wb", compresslevel=9) as out:
        out.write(b"item_id,title,price\nA0,")
        for _ in range(nul_mib):
            out.write(b"\0" * MIB)
        out.write(b",3.5\n")
    (folder / "events.csv").write_text("user_id,item_id,event_type,timestamp,quantity\nu,A0,view,2024-01-01,1\n")
    return folder


# Appended to every measured script: print the peak, then exit with the script's ``code`` (0 if none).
EPILOGUE = ("print(open('/proc/self/status').read().split('VmHWM:')[1].split()[0], 'peak_rss_kib', file=sys.stderr)\n"
            "sys.exit(globals().get('code') or 0)\n")


def peak_of(script: str, *args: str) -> tuple[subprocess.CompletedProcess, int, float]:
    """``script`` (which imports ``sys``) in a fresh interpreter: the result, its peak RSS in bytes, wall seconds.

    The peak is the process's VmHWM: getrusage's ru_maxrss would also count the parent's
    pages at the fork (Linux keeps the larger of the two across exec), which under pytest
    is gigabytes.
    """
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", script + EPILOGUE, *args], capture_output=True, text=True,
                            timeout=600)
    peak = int(result.stderr.rsplit("peak_rss_kib", 1)[0].split()[-1]) * 1024
    return result, peak, time.monotonic() - started


def ingest_peak(source: str, path: Path, out: Path, raw_only: bool = False
                ) -> tuple[subprocess.CompletedProcess, int, float]:
    """`shoprec ingest` under :func:`peak_of`, its exit code kept."""
    argv = ["shoprec", "ingest", "--source", source, "--path", str(path), "--out", str(out)]
    return peak_of(f"import sys\nfrom shoprec.cli import main\nsys.argv = {argv + (['--raw-only'] if raw_only else [])!r}\n"
                   "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n")

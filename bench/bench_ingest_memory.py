"""Benchmark: peak memory of ingestion, bounded by the data's real size.

Three child processes per round, each reporting its own peak RSS (VmHWM):

* ``ingest``: `shoprec ingest --raw-only` of the shared Online Retail copy (bounded reader);
* ``baseline``: the same file read the unbounded way (``gzip.decompress`` whole, then
  ``pandas.read_csv`` of every column as text), the reader's work without its checks;
* ``bomb``: a 200 MiB-of-NUL-bytes CSV.gz (about 200 KB on disk) given to `shoprec ingest`,
  which must stop at the bound.

Prints the median of each over the rounds and the ratio ingest / baseline.
Run: .venv/bin/python bench/bench_ingest_memory.py [rounds]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "helpers"))
from ingest_memory import MIB, gzip_bomb, ingest_peak, peak_of  # noqa: E402
from repo_copy import REPO  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "online_retail" / "online_retail.csv.gz"
# The reader's work without its bounds: the whole file unpacked, then parsed (in a fresh interpreter).
BASELINE = ("import gzip, io, sys, pandas as pd\nimport shoprec.cli\n"
            "data = gzip.decompress(open(sys.argv[1], 'rb').read())\n"
            "frame = pd.read_csv(io.StringIO(data.decode('utf-8-sig')), dtype=str, keep_default_na=False)\n")


def mib(run: tuple) -> tuple[float, float]:
    """(peak RSS in MiB, wall seconds) of a measured run."""
    _, peak, seconds = run
    return peak / MIB, seconds


def main() -> None:
    if not DATA.exists():
        sys.exit(f"skipped: {DATA} not found")
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    results: dict[str, list[tuple[float, float]]] = {"ingest": [], "baseline": [], "bomb": []}
    with tempfile.TemporaryDirectory() as tmp:
        bomb = gzip_bomb(Path(tmp) / "bomb", nul_mib=200)
        print(f"bomb: {(bomb / 'items.csv.gz').stat().st_size:,} bytes on disk, 200 MiB unpacked")
        for n in range(rounds):
            results["ingest"].append(mib(ingest_peak("online_retail", DATA, Path(tmp) / f"raw{n}", raw_only=True)))
            results["baseline"].append(mib(peak_of(BASELINE, str(DATA))))
            results["bomb"].append(mib(ingest_peak("files", bomb, Path(tmp) / f"bomb{n}", raw_only=True)))
    print(f"{'run':<10} {'peak RSS MiB (median)':>22} {'wall s (median)':>16}   ({rounds} rounds)")
    for name, runs in results.items():
        print(f"{name:<10} {statistics.median(r[0] for r in runs):>22.0f} {statistics.median(r[1] for r in runs):>16.1f}")
    ratio = statistics.median(r[0] for r in results["ingest"]) / statistics.median(r[0] for r in results["baseline"])
    print(f"ingest / baseline peak: {ratio:.2f}")


if __name__ == "__main__":
    main()

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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "online_retail" / "online_retail.csv.gz"
# VmHWM, not getrusage's ru_maxrss, which also counts the parent's pages at the fork
PEAK = "import sys\nprint('peak_kib', open('/proc/self/status').read().split('VmHWM:')[1].split()[0], file=sys.stderr)\n"
INGEST = ("import sys\nfrom shoprec.cli import main\nsys.argv = ['shoprec', 'ingest', '--raw-only', '--source', "
          "'{source}', '--path', '{path}', '--out', '{out}']\ntry:\n    main()\nexcept SystemExit:\n    pass\n")
BASELINE = ("import gzip, io, pandas as pd\nimport shoprec.cli\ndata = gzip.decompress(open('{path}', 'rb').read())\n"
            "frame = pd.read_csv(io.StringIO(data.decode('utf-8-sig')), dtype=str, keep_default_na=False)\n")


def peak_mib(script: str) -> tuple[float, float]:
    """(peak RSS in MiB, wall seconds) of ``script`` run in a fresh interpreter."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script + PEAK], capture_output=True, text=True, check=True)
    return int(done.stderr.rsplit("peak_kib", 1)[1].split()[0]) / 1024, time.monotonic() - started


def make_bomb(folder: Path) -> Path:
    import gzip

    folder.mkdir(parents=True)
    with gzip.open(folder / "items.csv.gz", "wb", compresslevel=9) as out:
        out.write(b"item_id,title,price\nA0,")
        for _ in range(200):
            out.write(b"\0" * 2**20)
        out.write(b",3.5\n")
    (folder / "events.csv").write_text("user_id,item_id,event_type,timestamp,quantity\nu,A0,view,2024-01-01,1\n")
    return folder


def main() -> None:
    if not DATA.exists():
        sys.exit(f"skipped: {DATA} not found")
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    results: dict[str, list[tuple[float, float]]] = {"ingest": [], "baseline": [], "bomb": []}
    with tempfile.TemporaryDirectory() as tmp:
        bomb = make_bomb(Path(tmp) / "bomb")
        print(f"bomb: {(bomb / 'items.csv.gz').stat().st_size:,} bytes on disk, 200 MiB unpacked")
        for n in range(rounds):
            results["ingest"].append(peak_mib(INGEST.format(source="online_retail", path=DATA, out=f"{tmp}/raw{n}")))
            results["baseline"].append(peak_mib(BASELINE.format(path=DATA)))
            results["bomb"].append(peak_mib(INGEST.format(source="files", path=bomb, out=f"{tmp}/bomb{n}")))
    print(f"{'run':<10} {'peak RSS MiB (median)':>22} {'wall s (median)':>16}   ({rounds} rounds)")
    for name, runs in results.items():
        print(f"{name:<10} {statistics.median(r[0] for r in runs):>22.0f} {statistics.median(r[1] for r in runs):>16.1f}")
    ratio = statistics.median(r[0] for r in results["ingest"]) / statistics.median(r[0] for r in results["baseline"])
    print(f"ingest / baseline peak: {ratio:.2f}")


if __name__ == "__main__":
    main()

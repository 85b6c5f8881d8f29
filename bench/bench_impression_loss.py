"""What a SIGKILL of a serving process costs in impressions, and whether /metrics counts it.

Starts ``shoprec serve`` (``--workers`` processes) on the bundle of a repository copy that
``dvc repro`` has built (``--root``, as for ``bench/bench_load.py``), drives ``/recommend``
from ``--callers`` threads, SIGKILLs one worker process after ``--before`` answers, waits for
BentoML's restarted worker to answer ``--after`` more, and reports: the answers whose
impression is not in the store, how long before the kill they were asked for (the group
commit interval bounds it), and ``shoprec_answers_sent_total`` minus
``shoprec_impressions_stored_total`` from ``/metrics`` (which should equal the loss, plus
answers in flight at the kill). The procedure is the e2e test's
(``tests/helpers/impressions.py``), at a larger scale.

    python bench/bench_impression_loss.py --root /tmp/copy [--workers 2] [--callers 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "helpers"))
from impressions import kill_worker_under_load  # noqa: E402

from shoprec.layout import Layout  # noqa: E402
from shoprec.serving.bento import import_bundle  # noqa: E402
from shoprec.serving.process import start_server  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="a repo copy with models/serving/bundle built")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--callers", type=int, default=8)
    parser.add_argument("--before", type=int, default=10_000, help="answers before the kill")
    parser.add_argument("--after", type=int, default=2_000, help="answers of the restarted worker's server after it")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="shoprec-kill-") as scratch:
        os.environ["BENTOML_HOME"] = str(Path(scratch) / "bentoml")  # a private model store for this run
        model = import_bundle(args.root / Layout(Path(".")).bundle.folder)
        server = start_server(args.root, Path(scratch) / "feedback.db", Path(scratch) / "server.log",
                              workers=args.workers, model=model, timeout=900, impressions=True)
        users = [f"visitor-{n}" for n in range(args.callers)]
        try:
            run = kill_worker_under_load(server, users, args.callers, args.before, args.after, timeout=900)
        finally:
            server.stop()
    window = (f"asked {run.killed_at - min(run.lost):.2f} to {run.killed_at - max(run.lost):.2f} s before the kill"
              if run.lost else "none")
    print(f"- `{' '.join(['python', *sys.argv])}`: {args.workers} workers, {args.callers} callers, "
          f"{run.rate:,.0f} answers/s before the kill of one worker; {len(run.answered):,} answers received, "
          f"{run.stored:,} impressions stored; lost {len(run.lost):,} ({window}); /metrics: "
          f"{run.sent_metric:,.0f} answers sent - {run.stored_metric:,.0f} impressions stored = "
          f"{run.sent_metric - run.stored_metric:,.0f}")


if __name__ == "__main__":
    main()

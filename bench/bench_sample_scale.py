"""Scale check for the sample source: 1M items, 10M events, timed, with peak RSS.

Not a test (it takes tens of seconds and a few GiB); run it by hand:

    .venv/bin/python bench/bench_sample_scale.py [--items 1000000] [--events 10000000] [--users 300000]

It prints the generation time, the row counts, the frames' in-memory size and the
process's peak resident set size (``ru_maxrss``), which must stay well under 24 GiB.
"""

from __future__ import annotations

import argparse
import resource
import time

from shoprec.config import SampleParams
from shoprec.data.sources.sample import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=300_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=120)
    args = parser.parse_args()
    params = SampleParams(n_items=args.items, n_users=args.users, n_events=args.events, days=args.days)

    started = time.perf_counter()
    data = generate(params)
    seconds = time.perf_counter() - started
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB on Linux

    print(f"params: {params.model_dump()}")
    print(f"generate: {seconds:.1f} s")
    for name in ("items", "events", "query_labels"):
        frame = getattr(data, name)
        size = frame.memory_usage(deep=True).sum() / 2**20
        print(f"{name}: {len(frame):,} rows, {size:,.0f} MiB in memory")
    print(f"event types: {data.events.event_type.value_counts(normalize=True).round(3).to_dict()}")
    print(f"events with a query: {(data.events['query'] != '').mean():.3f}")
    print(f"peak RSS: {peak_gib:.2f} GiB")


if __name__ == "__main__":
    main()

"""Benchmark: latency of one real-time recommendation (shoprec.models.recommend.recommend_now), in process.

Requests are the replay's (bench_replay.py): before a purchase session of the test
window, the shopper's training events plus their test events so far, as the arrays
(:class:`~shoprec.models.candidates.Events`) the service hands over; every other
request also carries the last three items the shopper viewed as ``recent_items``. One
thread, one request at a time (one native thread, as in a server worker), after a warm-up: per request the total and its parts
(building the shopper from the history, candidates with their features, the ranker,
the rest: ordering, MMR, explanations), p50/p90/p99/max in milliseconds of wall time, and
the total's CPU time (all of the process's threads: what the request costs a core, which
other work on a shared machine does not inflate the way it inflates wall time).

Run: PYTHONPATH=src .venv/bin/python bench/bench_realtime_latency.py --root <repo after dvc repro> [--requests 500]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from shoprec.config import load_params
from shoprec.evaluation.replay import COLUMNS, purchase_requests
from shoprec.layout import Layout
from shoprec.models.candidates import Events, candidates
from shoprec.models.catalog import Catalog
from shoprec.models.recommend import history_shoppers, recommend_now
from shoprec.models.store import load_layout


def requests(train: pd.DataFrame, test: pd.DataFrame, catalog: Catalog, n: int) -> list[dict]:
    """``n`` replay requests spread over the test window, as the service would see them."""
    req = purchase_requests(test)
    req = req.iloc[np.linspace(0, len(req) - 1, min(n, len(req))).astype(int)]
    events = pd.concat([train, test], ignore_index=True)
    by_user = {u: f for u, f in events[events["user_id"].isin(set(req["user_id"]))].groupby("user_id")}
    out = []
    for j, (user, start) in enumerate(zip(req["user_id"], req["start"])):
        history = by_user[user][by_user[user]["timestamp"] < start][COLUMNS]
        views = history.loc[history["event_type"] == "view", "item_id"].tolist()[-3:]
        out.append({"events": Events.of_frame(history, catalog), "now": start, "user_id": user,
                    "recent_items": views if j % 2 else []})
    return out


def parts(system, r: dict) -> dict[str, float]:
    """The request's stages timed one by one (the same calls recommend_now makes)."""
    t0 = time.perf_counter()
    shoppers = history_shoppers(system, r["events"], np.zeros(len(r["events"]), np.int64), [r["user_id"]], [r["now"]],
                                [r["recent_items"]])
    t1 = time.perf_counter()
    cands = candidates(system.state.items, shoppers, system.catalog, system.cfg.ranking.n_retrieval,
                       system.cfg.ranking.n_copurchase)
    t2 = time.perf_counter()
    system.rank_pairs(shoppers, cands)
    t3 = time.perf_counter()
    return {"shopper": t1 - t0, "candidates": t2 - t1, "ranker": t3 - t2, "pairs": len(cands.item)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("."))
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1,
                        help="native (BLAS) threads: a 2-worker server on 2 cores gives each worker 1 (service._share_cores)")
    args = parser.parse_args()
    threadpool_limits(args.threads)
    layout = Layout(args.root)
    system = load_layout(load_params(args.root / "params.yaml"), layout)
    reqs = requests(pd.read_parquet(layout.split.train), pd.read_parquet(layout.split.test), system.catalog,
                    args.requests)
    for r in reqs[:20]:  # warm-up: TensorFlow traces the ranker on its first calls
        recommend_now(system, **r)
    total, cpu = [], []
    for r in reqs:
        start, start_cpu = time.perf_counter(), time.process_time()
        recommend_now(system, **r)
        total.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    split = pd.DataFrame([parts(system, r) for r in reqs])
    table = {"total": np.array(total), "total, CPU time": np.array(cpu)} | {
        c: split[c].to_numpy() for c in ("shopper", "candidates", "ranker")}
    events = np.array([len(r["events"]) for r in reqs])
    print(f"{len(reqs)} requests; history events per request: median {np.median(events):.0f}, max {events.max()}; "
          f"candidate pairs: median {split['pairs'].median():.0f}")
    print("| part | p50 ms | p90 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|")
    for name, values in table.items():
        p50, p90, p99 = np.percentile(values * 1000, [50, 90, 99])
        print(f"| {name} | {p50:.1f} | {p90:.1f} | {p99:.1f} | {values.max() * 1000:.1f} |")


if __name__ == "__main__":
    main()

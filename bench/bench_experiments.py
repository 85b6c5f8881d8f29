"""Experiments on simulated shoppers, offline: A/A, A/B and the offline-online table.

The sample storefront's shoppers (their true tastes) are shown the evaluate stage's lists
(``reports/recommendations.parquet``: the test users' top-20 of each system) over a
simulated clock (``--shoppers test``; ``all``: every shopper the models were trained on, their
lists scored here as the evaluate stage scores them), and the experiment report's statistics run on the simulated logs
(``shoprec.experiments.simulate.offline`` then ``shoprec.experiments.report.report``).
Needs the pipeline's outputs for ``ingest.source: sample`` (``dvc repro evaluate``).

    python bench/bench_experiments.py [--root .] [--shoppers all|test] [--seeds 20] [--days 28] [--out FILE]

* A/A: shoprec in both arms, ``--seeds`` seeds: how many show a significant conversion
  difference (alpha 0.05: about 1 in 20 expected) and how many an SRM flag (p < 0.001);
* A/B: champion shoprec, challenger popularity, at growing numbers of days (visits per
  shopper) until the report's interval excludes zero;
* the table: each system shown in turn to the same shoppers (same seeds, all in one arm),
  simulated CTR / conversion next to offline Recall/nDCG@20 from ``reports/metrics.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from shoprec.config import load_params
from shoprec.experiments import simulate
from shoprec.experiments.report import Settings, report

SYSTEMS = ["popularity", "ease", "two_tower", "shoprec"]


def all_user_lists(root: Path, params) -> dict[str, dict[str, list[str]]]:
    """Top-20 of each system for every shopper the models were trained on, scored as the evaluate stage scores
    (the evaluate lists hold only the test window's buyers)."""
    from shoprec.evaluation.lists import recommend_batches
    from shoprec.layout import Layout
    from shoprec.models.baselines import EASE, Popularity
    from shoprec.models.multistage import TwoTowerScorer
    from shoprec.models.store import load_layout

    system = load_layout(params, Layout(root))
    inter = system.state.inter
    scorers = [Popularity(inter), EASE(inter, params.baselines.ease_lambda, params.baselines.ease_max_items),
               TwoTowerScorer(system.state), system]
    users = np.asarray(inter.user_ids, dtype=object)
    rows = inter.rows(users)
    lists = {}
    for scorer in scorers:
        lists[scorer.name] = {}
        for sl, top in recommend_batches(scorer, rows, simulate.LIST_LENGTH, None):
            lists[scorer.name].update(zip(users[sl], (list(system.catalog.item_ids[t]) for t in top)))
    return lists


def run(shop, lists, champion, challenger, seed, days, sample, items, window) -> dict:
    impressions, events = simulate.offline(shop, {"champion": lists[champion], "challenger": lists[challenger]},
                                           0.5, len(lists[champion]), seed, days, sample)
    return report(impressions, events, items, Settings(f"{champion}-vs-{challenger}", 0.5, window))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("."), help="the repository after `dvc repro evaluate`")
    parser.add_argument("--shoppers", choices=["all", "test"], default="all",
                        help="all: every trained-on shopper, lists scored here; test: the evaluate stage's lists")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--out", type=Path, default=Path("bench-experiments.json"))
    args = parser.parse_args()
    params = load_params(args.root / "params.yaml")
    reports = args.root / "reports"
    sample, window = params.ingest.sample, pd.Timedelta(hours=params.experiment_report.attribution_window_hours)
    shop = simulate.world(sample)
    lists = (all_user_lists(args.root, params) if args.shoppers == "all"
             else simulate.evaluated_lists(reports / "recommendations.parquet", SYSTEMS))
    items = pd.read_parquet(args.root / "data/clean/items.parquet", columns=["item_id", "price"])
    out: dict = {"shoppers": len(lists["shoprec"]), "days": args.days}

    aa = [run(shop, lists, "shoprec", "shoprec", seed, args.days, sample, items, window) for seed in range(args.seeds)]
    out["aa"] = {"seeds": args.seeds, "significant": sum(r["difference"]["cvr"]["p"] < 0.05 for r in aa),
                 "srm_flags": sum(r["srm_flag"] for r in aa),
                 "decisions": pd.Series([r["decision"] for r in aa]).value_counts().to_dict(),
                 "cvr_p": [round(r["difference"]["cvr"]["p"], 4) for r in aa]}
    print(json.dumps(out["aa"]), flush=True)

    out["ab"] = []
    for days in (args.days, 2 * args.days, 4 * args.days):
        for seed in range(3):
            r = run(shop, lists, "shoprec", "popularity", seed, days, sample, items, window)
            row = {"days": days, "seed": seed, "users": sum(v["users"] for v in r["variants"].values()),
                   "impressions": sum(v["impressions"] for v in r["variants"].values()),
                   "cvr": {v: round(r["variants"][v]["cvr"], 4) for v in r["variants"]},
                   "difference": r["difference"]["cvr"], "ctr_difference": r["difference"]["ctr"],
                   "decision": r["decision"], "mde": r["mde"]}
            out["ab"].append(row)
            print(json.dumps(row), flush=True)

    metrics = json.loads((reports / "metrics.json").read_text())
    table = []
    for system in SYSTEMS:
        runs = [run(shop, lists, system, system, seed, args.days, sample, items, window) for seed in range(5)]
        pooled = lambda key: float(np.mean([np.mean([r["variants"][v][key] for v in r["variants"]]) for r in runs]))  # noqa: E731
        table.append({"system": system, "recall@20": metrics[system]["all"]["recall@20"],
                      "ndcg@20": metrics[system]["all"]["ndcg@20"], "ctr": round(pooled("ctr"), 4),
                      "add_to_cart_rate": round(pooled("add_to_cart_rate"), 4), "cvr": round(pooled("cvr"), 4),
                      "revenue_per_impression": round(pooled("revenue_per_impression"), 3)})
        print(json.dumps(table[-1]), flush=True)
    out["table"] = table
    args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()

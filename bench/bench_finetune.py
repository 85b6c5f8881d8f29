"""Benchmark: MiniLM pretrained vs fine-tuned (stage finetune_text) on Online Retail, same run.

In one scratch copy of the repository on the shared Online Retail file: ingest, validate,
split and build_lexical_index once; then, for ``text.finetune_layers`` 0 (pretrained) and the
given value, finetune_text and embed_items (wall and CPU time of each), and search scored on the
fixture tests/fixtures/online_retail_queries.yaml (queries and rules judging titles, written
before any system ran on them): lexical, semantic and hybrid nDCG@10, MRR and P@10 (share of
the top 10 with grade >= 2), overall and by query type. The semantic leg there is what
train_query_model falls back to without logged queries (MiniLM query vs item text), loaded
through the engine the service uses, with the float query encoder. ``--recommend`` also runs
train_retrieval, train_ranking and evaluate for each setting: R@20 in the ``new`` view and on
the cold-item slice.

Run: .venv/bin/python bench/bench_finetune.py [--layers 2] [--recommend] [--set text.finetune_max_pairs=6000 ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "helpers"))
from repo_copy import REPO, copy_repo  # noqa: E402

from shoprec.config import load_params  # noqa: E402
from shoprec.layout import Layout, QueryModelFiles  # noqa: E402
from shoprec.pipeline import run_stage, set_params  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "online_retail" / "online_retail.csv.gz"
FIXTURE = REPO / "tests" / "fixtures" / "online_retail_queries.yaml"
MODES = ("lexical", "semantic", "hybrid")


def judged_labels(items: pd.DataFrame, queries: list[dict]) -> pd.DataFrame:
    """``query_id, query, item_id, relevance`` for every item a query's rules grade above 0."""
    titles = items["title"].fillna("").str.upper().to_numpy()
    rows = []
    for q in queries:
        grade = np.zeros(len(items), np.int64)
        for level, patterns in q["rules"]:
            match = np.array([all(re.search(p, t) for p in patterns) for t in titles])
            grade = np.where(match, np.maximum(grade, level), grade)
        if "max_price" in q:
            grade[items["price"].to_numpy() > q["max_price"]] = 0
        for i in np.flatnonzero(grade):
            rows.append((f"{q['type']}-{q['id']}", q["query"], items["item_id"].iloc[i], int(grade[i])))
    return pd.DataFrame(rows, columns=["query_id", "query", "item_id", "relevance"])


def search_scores(root: Path, labels: pd.DataFrame, scratch: Path) -> dict:
    """nDCG@10, MRR, P@10 per mode (overall and by type) of the engine on the copy's current models."""
    from shoprec.search.evaluate import RELEVANT, evaluate_queries
    from shoprec.search.index.semantic import SemanticIndex
    from shoprec.search.store import load_engine
    from shoprec.text.catalog_embeddings import read_embeddings

    layout, params = Layout(root), load_params(root / "params.yaml")
    params = params.model_copy(update={"search": params.search.model_copy(update={"query_encoder": "float"})})
    query_model = QueryModelFiles(scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    SemanticIndex.of(read_embeddings(layout.text_embeddings)[1]).save(query_model.semantic)
    engine = load_engine(params.with_text_model(layout.text_model.folder), layout.items, layout.lexical, query_model,
                         None)
    relevant = labels[labels["relevance"] >= RELEVANT].groupby("query")["item_id"].agg(set).to_dict()
    out = {}
    for mode in MODES:
        lists: dict[str, list[str]] = {}
        metrics = evaluate_queries(labels, lambda q: lists.setdefault(
            q, [str(engine.item_ids[i]) for i in engine.rank(q, mode)[1]]))
        precision = pd.Series({q: len(set(r[:10]) & relevant.get(q, set())) / 10 for q, r in lists.items()})
        types = labels.drop_duplicates("query").set_index("query")["query_id"].str.split("-").str[0]
        metrics["all"]["p@10"] = float(precision.mean())
        for t, v in precision.groupby(types[precision.index].to_numpy()):
            metrics["by_type"][t]["p@10"] = float(v.mean())
        out[mode] = metrics
    return out


def recommend_scores(root: Path) -> dict:
    for stage in ("train_retrieval", "train_ranking", "evaluate"):
        run_stage(stage, root=root)
    metrics = json.loads(Layout(root).reports.metrics.read_text())
    return {s: {"r@20 new": m["new"]["recall@20"], "r@20 cold items": m["slices"].get("cold_items")}
            for s, m in metrics.items() if s in ("two_tower", "shoprec")}


def _child_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes: the stages' own work, whatever else
    shares the machine."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", default="2", help="text.finetune_layers of the fine-tuned run (a count or all)")
    parser.add_argument("--recommend", action="store_true", help="also train and evaluate the recommenders")
    parser.add_argument("--set", nargs="*", default=[], help="more params.yaml overrides, key=value")
    args = parser.parse_args()
    if not DATA.exists():
        sys.exit(f"skipped: {DATA} not found")
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    layers = args.layers if args.layers == "all" else int(args.layers)
    extra = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
    queries = yaml.safe_load(FIXTURE.read_text())["queries"]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = copy_repo(Path(tmp) / "repo", {"ingest.source": "online_retail", "ingest.path": str(DATA)} | extra)
        for stage in ("ingest", "validate", "split", "build_lexical_index"):
            run_stage(stage, root=root)
        labels = judged_labels(pd.read_parquet(Layout(root).items), queries)
        for setting in (0, layers):
            set_params({"text.finetune_layers": setting}, root)
            seconds = {}
            for stage in ("finetune_text", "embed_items"):
                start, cpu = time.perf_counter(), _child_cpu()
                run_stage(stage, root=root)
                seconds[stage] = {"wall": round(time.perf_counter() - start, 1), "cpu": round(_child_cpu() - cpu, 1)}
            summary = json.loads(Layout(root).text_model.summary.read_text())
            results[str(setting)] = {"seconds": seconds, "summary": summary,
                                     "search": search_scores(root, labels, Path(tmp) / f"semantic_{setting}")}
            if args.recommend:
                results[str(setting)]["recommend"] = recommend_scores(root)
            print(json.dumps({str(setting): results[str(setting)]}, indent=1), flush=True)
    print(f"{'layers':<7} {'mode':<9} {'nDCG@10':>8} {'MRR':>6} {'P@10':>6}  nDCG@10 by type")
    for setting, result in results.items():
        for mode, m in result["search"].items():
            by_type = " ".join(f"{t} {v['ndcg@10']:.3f}" for t, v in m["by_type"].items())
            print(f"{setting:<7} {mode:<9} {m['all']['ndcg@10']:>8.3f} {m['all']['mrr']:>6.3f} "
                  f"{m['all']['p@10']:>6.3f}  {by_type}")
        print(f"{setting:<7} wall time (s): {result['seconds']}")


if __name__ == "__main__":
    main()

"""DVC stage ``evaluate_search``: lexical, semantic, hybrid and personalised search on the labelled queries.

nDCG@10, MRR, Recall@50 and the zero-result rate per system and query type, the text
ceiling (every full match first, in random order), and hybrid / lexical: the numbers the
gate's search check reads.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from shoprec.config import Params
from shoprec.layout import LexicalFiles, QueryModelFiles, ReportFiles
from shoprec.search.evaluate import evaluate_queries, table, text_ceiling
from shoprec.search.store import load_engine

SYSTEMS = {"lexical": ("lexical", False), "semantic": ("semantic", False), "hybrid": ("hybrid", False),
           "hybrid_personalised": ("hybrid", True)}


def evaluate_search(labels_path: Path, items_path: Path, lexical_dir: Path, query_model_dir: Path,
                    user_vectors: Path, out_dir: Path, params: Params) -> Path:
    """Every system on the query labels -> ``search_metrics.json`` and a Markdown table.

    ``user_vectors``: the final two-tower's stored vectors, which the personalised system reads
    (the labels carry no shopper, so it gets the cold-start vector).
    """
    labels = pd.read_parquet(labels_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = ReportFiles(out_dir)
    metrics: dict = {"queries": int(labels["query_id"].nunique())}
    ranked: dict[str, dict[str, list[str]]] = {}  # system -> query text -> its list (the gate resamples them)
    if metrics["queries"]:
        engine = load_engine(params, items_path, LexicalFiles(lexical_dir), QueryModelFiles(query_model_dir),
                             user_vectors)
        for name, (mode, personal) in SYSTEMS.items():
            user = "" if personal else None  # labels carry no shopper: the cold-start affinity
            lists = ranked[name] = {}
            metrics[name] = evaluate_queries(labels, lambda q: lists.setdefault(
                q, [engine.item_ids[i] for i in engine.rank(q, mode, user)[1]]))
        metrics["text_ceiling"] = text_ceiling(labels)
        lex, hyb = metrics["lexical"]["all"]["ndcg@10"], metrics["hybrid"]["all"]["ndcg@10"]
        metrics["hybrid_over_lexical"] = round(hyb / lex, 4) if lex else None
        ceiling = metrics["text_ceiling"]["all"]["ndcg@10"]
        metrics["hybrid_share_of_headroom"] = round((hyb - lex) / (ceiling - lex), 4) if ceiling > lex else None
        metrics["typo_over_clean"] = {
            s: round(metrics[s]["by_type"]["typo"]["ndcg@10"] / max(metrics[s]["by_type"]["clean"]["ndcg@10"], 1e-9), 4)
            for s in SYSTEMS if {"typo", "clean"} <= metrics[s]["by_type"].keys()}
    report.search_metrics.write_text(json.dumps(metrics, indent=2) + "\n")
    _write_lists(labels, ranked, report)
    summary = table(metrics, list(SYSTEMS)) if metrics["queries"] else "No query labels: search not evaluated."
    report.search_table.write_text(f"# Search on {metrics['queries']} labelled queries\n\n{summary}\n")
    return report.search_metrics


def _write_lists(labels: pd.DataFrame, ranked: dict[str, dict[str, list[str]]], report: ReportFiles) -> None:
    """``search_lists.parquet``: system, query_id, rank, item_id of every evaluated list (none without labels)."""
    texts = labels.drop_duplicates("query_id").set_index("query_id")["query"].astype(str)
    rows = [(system, qid, rank, item) for system, lists in ranked.items() for qid, text in texts.items()
            for rank, item in enumerate(lists[text], 1)]
    frame = pd.DataFrame(rows, columns=["system", "query_id", "rank", "item_id"])
    frame.astype({"system": str, "query_id": str, "rank": "int64", "item_id": str}).to_parquet(
        report.search_lists, index=False)

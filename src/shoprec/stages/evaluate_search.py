"""DVC stage ``evaluate_search``: lexical, semantic, hybrid and personalised search on the labelled queries,
and on the scored window's logged searches.

nDCG@10, MRR, Recall@50 and the zero-result rate per system and query type, the text
ceiling (every full match first, in random order), and hybrid / lexical: the numbers the
gate's search check reads. ``logged``: first-choice MRR on the searches shoppers made in the
scored window (the split's ``test.parquet``: the test window, or the validation window in
``shoprec tune``'s trials), the one search figure a shop without judged queries has, and the one
tuning selects search settings by (``shoprec.tuning``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from shoprec.config import Params
from shoprec.layout import LexicalFiles, QueryModelFiles, ReportFiles
from shoprec.search.evaluate import evaluate_queries, table, text_ceiling
from shoprec.search.pairs import first_choices
from shoprec.search.store import load_engine

SYSTEMS = {"lexical": ("lexical", False), "semantic": ("semantic", False), "hybrid": ("hybrid", False),
           "hybrid_personalised": ("hybrid", True)}
LOGGED_MODES = ("lexical", "semantic", "hybrid")  # logged searches: the engine's modes, unpersonalised


def first_choice_mrr(chosen: pd.DataFrame, ranker: Callable[[str, str], list[str]]) -> dict:
    """``{"searches": n, mode: MRR}``: per logged search (``query, item_id`` of its first choice), 1 / the
    rank of the chosen item in the mode's list (0 when absent), averaged over searches, so a query
    counts as often as shoppers typed it. ``ranker(query, mode)`` is called once per distinct query."""
    out: dict = {"searches": len(chosen)}
    if chosen.empty:
        return out
    for mode in LOGGED_MODES:
        ranks = {}
        for query, items in chosen.groupby("query", sort=False)["item_id"]:
            position = {item: r for r, item in enumerate(ranker(query, mode), 1)}
            ranks[query] = [1.0 / position[i] if i in position else 0.0 for i in items.astype(str)]
        out[mode] = round(float(np.mean([v for values in ranks.values() for v in values])), 4)
    return out


def evaluate_search(labels_path: Path, items_path: Path, lexical_dir: Path, query_model_dir: Path,
                    user_vectors: Path, scored_events: Path, out_dir: Path, params: Params) -> Path:
    """Every system on the query labels, and the modes on the logged searches of ``scored_events`` (the
    split's scored window) -> ``search_metrics.json`` and a Markdown table.

    ``user_vectors``: the final two-tower's stored vectors, which the personalised system reads
    (the labels carry no shopper, so it gets the cold-start vector).
    """
    labels = pd.read_parquet(labels_path)
    chosen = first_choices(pd.read_parquet(scored_events), params.interactions.weights)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = ReportFiles(out_dir)
    metrics: dict = {"queries": int(labels["query_id"].nunique())}
    ranked: dict[str, dict[str, list[str]]] = {}  # system -> query text -> its list (the gate resamples them)
    engine = None
    if metrics["queries"] or not chosen.empty:
        engine = load_engine(params, items_path, LexicalFiles(lexical_dir), QueryModelFiles(query_model_dir),
                             user_vectors)
    metrics["logged"] = first_choice_mrr(chosen, lambda q, mode: [str(engine.item_ids[i])
                                                                  for i in engine.rank(q, mode)[1]])
    if metrics["queries"]:
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

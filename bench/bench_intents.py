"""Benchmark: the help centre's intent classifier on Online Retail's catalog (issue 22).

Online Retail has neither a help centre nor search logs: a shop on it would bring its help
centre through the ``files`` source, and its product queries are item titles and title
fragments. This runs the ``train_intents`` stage itself, in a scratch directory, on
the sample generator's help centre (``service_intents`` / ``service_phrasings``) against the
catalog the ``online_retail`` source ingests: the speller is the ``build_lexical_index``
stage's (catalog words; no logged queries to add), the query encoder the int8 MiniLM
``finetune_text`` exports (pretrained: the bench sets ``text.finetune_layers: 0`` in its own
copy of the params, whatever ``params.yaml`` says, so that stage copies the model and exports it). It prints the margin and threshold the
stage chose on validation folds, the validation sweep, the stage's held-out figures (intent
accuracy, hand-over precision / recall, the share of held-out titles and title fragments
routed to help, split into the two) and the routed ones. ``--seed`` draws another help
centre, product sample and held-out split: a second test of the same settings. Nothing derived from the data is written outside the scratch directory.

    python bench/bench_intents.py [--data PATH] [--examples 10] [--seed N]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import shoprec  # noqa: F401  (legacy Keras switch before TensorFlow)
from shoprec.config import load_params
from shoprec.data.sources import online_retail
from shoprec.data.sources.sample.service import help_centre
from shoprec.help.classifier import PRODUCT, IntentClassifier
from shoprec.help.examples import product_queries, training_set
from shoprec.layout import IntentFiles, LexicalFiles, SplitFiles
from shoprec.search.index.titles import title_tokens
from shoprec.stages.build_lexical_index import build_speller
from shoprec.stages.finetune_text import finetune_text
from shoprec.stages.train_intents import query_vectors, train_intents

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "online_retail" / "online_retail.csv.gz"


def pretrained(params):
    """``params`` with ``text.finetune_layers: 0``: Online Retail has no search log to fine-tune on, so the bench
    encodes with the pretrained MiniLM whatever the repository's params say."""
    return params.model_copy(update={"text": params.text.model_copy(update={"finetune_layers": 0})})


def prepare(root: Path, data: Path, params) -> dict[str, Path]:
    """The stage's inputs in ``root``: help centre, Online Retail items and (query-less) events, speller, encoder."""
    paths = {"intents": root / "service_intents.parquet", "phrasings": root / "service_phrasings.parquet",
             "labels": root / "query_labels.parquet", "items": root / "items.parquet", "split": root / "split",
             "lexical": root / "lexical", "text_model": root / "text_encoder"}
    intents, phrasings = help_centre(params.seed)
    intents.to_parquet(paths["intents"])
    phrasings.to_parquet(paths["phrasings"])
    pd.DataFrame({"query": pd.Series([], dtype=str)}).to_parquet(paths["labels"])  # no labelled searches
    raw = online_retail.load(data)
    items = raw.items[raw.items["title"].fillna("").str.strip() != ""].reset_index(drop=True)
    items[["item_id", "title"]].to_parquet(paths["items"])
    paths["split"].mkdir()
    raw.events[["session_id", "query"]].to_parquet(SplitFiles(paths["split"]).train)
    speller = build_speller(items, raw.events, [], title_tokens(items["title"]), params)
    paths["lexical"].mkdir()
    LexicalFiles(paths["lexical"]).vocabulary.write_text(json.dumps(speller.frequency, sort_keys=True))
    finetune_text(paths["split"], paths["items"], paths["text_model"], params)  # finetune_layers 0: no pairs read
    return paths


def routed_products(paths: dict[str, Path], out: IntentFiles, params) -> tuple[pd.DataFrame, list[str]]:
    """The held-out product queries (as the stage chose them) with their verdict; titles tell full titles apart."""
    phrasings = pd.read_parquet(paths["phrasings"])
    titles = pd.read_parquet(paths["items"], columns=["title"])["title"]
    products = product_queries(pd.read_parquet(SplitFiles(paths["split"]).train, columns=["query"]), titles,
                               set(phrasings["phrasing"].str.lower()), params.intents.max_product_queries, params.seed)
    examples = training_set(phrasings, products, params.intents.holdout, params.seed)
    held = examples[examples["held_out"] & (examples["label"] == PRODUCT)].reset_index(drop=True)
    embed = query_vectors(params, LexicalFiles(paths["lexical"]))
    verdicts = IntentClassifier.load(out.classifier).verdicts(embed(held["text"].tolist()))
    full = set(titles.str.lower().str.replace(r"[^\w\s]", " ", regex=True).str.split().str.join(" "))
    held = held.assign(service=[v.service for v in verdicts], title=held["text"].isin(full),
                       verdict=[v.intent or ("handoff" if v.handoff else "") for v in verdicts],
                       confidence=[round(v.confidence, 3) for v in verdicts])
    return held, sorted(full)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--examples", type=int, default=10, help="routed product queries to print")
    parser.add_argument("--seed", type=int, help="another seed than params.yaml's: another held-out draw")
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"skipped: {args.data} not found")
    params = pretrained(load_params(REPO / "params.yaml"))
    if args.seed is not None:
        params = params.model_copy(update={"seed": args.seed})
    with tempfile.TemporaryDirectory() as tmp:
        root, start = Path(tmp), time.perf_counter()
        paths = prepare(root, args.data, params)
        params = params.with_text_model(paths["text_model"])
        prepared = time.perf_counter() - start
        out, metrics_path = IntentFiles(root / "intents"), root / "intent_metrics.json"
        train_intents((paths["intents"], paths["phrasings"]), paths["labels"], paths["items"], paths["split"],
                      paths["lexical"], out.folder, metrics_path, params)
        trained = time.perf_counter() - start - prepared
        metrics = json.loads(metrics_path.read_text())
        summary = json.loads(out.summary.read_text())
        held, _ = routed_products(paths, out, params)
    print(f"prepared inputs in {prepared:.0f} s, train_intents in {trained:.0f} s; {json.dumps(summary)}")
    validation = metrics["validation"]
    print(f"chosen on {validation['folds']} validation folds (product budget {validation['product_budget']}): "
          f"margin {metrics['margin']}, threshold {metrics['threshold']}")
    print("| validation, threshold | intent accuracy | top-1 | hand-over precision | hand-over recall | products routed |")
    print("|---|---|---|---|---|---|")
    for m in validation["sweep"]:
        print(f"| {m['threshold']} | {m['intent_accuracy']} | {m['intent_top1']} | {m['handoff_precision']} | "
              f"{m['handoff_recall']} | {m['product_routed_to_help']} |")
    print(f"held out {metrics['examples']}: intent accuracy {metrics['intent_accuracy']}, top-1 "
          f"{metrics['intent_top1']}, hand-over precision {metrics['handoff_precision']}, recall "
          f"{metrics['handoff_recall']}, products routed {metrics['product_routed_to_help']}")
    for name, rows in (("titles", held[held["title"]]), ("fragments", held[~held["title"]])):
        print(f"held-out {name}: {len(rows)}, routed to help {int(rows['service'].sum())} "
              f"({rows['service'].mean():.2%})")
    routed = held[held["service"]]
    print(f"routed ({len(routed)} of {len(held)}; "
          f"share {np.mean(held['service']):.2%}):")
    for row in routed.head(args.examples).itertuples():
        print(f"  {row.text!r} -> {row.verdict or 'service'} ({row.confidence})")


if __name__ == "__main__":
    main()

"""DVC stage ``train_intents``: the help centre's intent classifier (:class:`~shoprec.layout.IntentFiles`).

Trained on the vectors search computes for a query: the spelling-corrected free text
(:func:`~shoprec.search.engine.query_text`, with the catalog vocabulary of
``build_lexical_index``) through the query-side MiniLM of ``train_query_model`` (int8
weights, or float with ``search.query_encoder: float``; the ``finetune_text`` stage's
model either way), so that a search classifies its query with the very vector it already
has. The held-out figures go to ``reports/intent_metrics.json`` (docs/service_intents.md).
Without phrasings (a source with no help centre) no classifier is written, and the
service answers every query as a product search.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from shoprec.config import Params
from shoprec.help.classifier import PRODUCT, IntentClassifier, save_answers
from shoprec.help.examples import measure, product_queries, training_set
from shoprec.layout import IntentFiles, LexicalFiles, QueryModelFiles, SplitFiles
from shoprec.search.engine import query_text
from shoprec.search.store import load_speller, query_side_encoder
from shoprec.text import embed_texts

THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)  # the metrics' sweep, to choose intents.threshold by


def train_intents(help_centre: tuple[Path, Path], labels_path: Path, items_path: Path, split_dir: Path,
                  lexical_dir: Path, query_model_dir: Path, out_dir: Path, metrics_path: Path, params: Params) -> Path:
    """Fit the classifier on the help centre's (intents, phrasings) tables against product queries; write it, its
    answers, its metrics."""
    cfg, out = params.intents, IntentFiles(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out.classifier.unlink(missing_ok=True)  # a stale classifier must not outlive its data
    intents, phrasings = (pd.read_parquet(path) for path in help_centre)
    save_answers(intents, out.answers)
    if phrasings.empty:
        summary = {"trained": False, "reason": "no service_phrasings in the source"}
        metrics = summary
    else:
        labelled = pd.read_parquet(labels_path, columns=["query"])["query"].str.lower().unique()
        products = product_queries(pd.read_parquet(SplitFiles(split_dir).train, columns=["query"]),
                                   pd.read_parquet(items_path, columns=["title"])["title"],
                                   set(phrasings["phrasing"].str.lower()) | set(labelled), cfg.max_product_queries,
                                   params.seed)
        examples = training_set(phrasings, products, cfg.holdout, params.seed)
        embed = query_vectors(params, LexicalFiles(lexical_dir), QueryModelFiles(query_model_dir))
        x, labels, held = embed(examples["text"].tolist()), examples["label"].to_numpy(object), examples["held_out"].to_numpy()
        classifier = IntentClassifier.fit(x[~held], labels[~held], cfg.threshold, cfg.epochs, cfg.learning_rate,
                                          params.seed)
        classifier.save(out.classifier)
        labelled_x = embed(list(labelled))
        metrics = measure(classifier, x[held], labels[held], labelled_x)
        metrics["sweep"] = [measure(IntentClassifier(classifier.classes, classifier.weight, classifier.bias, t),
                                    x[held], labels[held], labelled_x) for t in THRESHOLDS]
        counts = examples.loc[~held, "label"].value_counts()
        summary = {"trained": True, "classes": int(len(classifier.classes)), "intents": int(len(intents)),
                   "trained_on": {"phrasings": int(counts.drop(PRODUCT, errors="ignore").sum()),
                                  "product_queries": int(counts.get(PRODUCT, 0))}}
    out.summary.write_text(json.dumps(summary, indent=2) + "\n")
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    return out_dir


def query_vectors(params: Params, lexical: LexicalFiles, query_model: QueryModelFiles):
    """``texts -> vectors`` as search computes them: corrected free text, query-side MiniLM."""
    speller, encoder = load_speller(lexical), query_side_encoder(params, query_model)

    def embed(texts: list[str]) -> np.ndarray:
        return embed_texts([query_text(t, speller) for t in texts], encoder.embed, params.text.batch_size,
                           progress=False)

    return embed

"""DVC stage ``train_intents``: the help centre's intent classifier (:class:`~shoprec.layout.IntentFiles`).

Trained on the vectors search computes for a query: the spelling-corrected free text
(:func:`~shoprec.search.engine.query_text`, with the catalog vocabulary of
``build_lexical_index``) through the query-side MiniLM of search (the ``finetune_text``
stage's model: its int8 export, or the float weights with ``search.query_encoder: float``), so that a search classifies its query with the very vector it already
has. The verdict's margin over ``product`` and its confidence threshold are chosen on
validation folds of the training examples (:mod:`shoprec.help.tuning`), the classifier is then
fitted on all of them; the held-out figures, scored once with the chosen values, go to
``reports/intent_metrics.json`` beside the validation ones (docs/service_intents.md).
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
from shoprec.help.tuning import choose, out_of_fold_logits
from shoprec.layout import IntentFiles, LexicalFiles, SplitFiles
from shoprec.search.engine import query_text
from shoprec.search.store import load_speller, query_side_encoder
from shoprec.text import embed_texts


def train_intents(help_centre: tuple[Path, Path], labels_path: Path, items_path: Path, split_dir: Path,
                  lexical_dir: Path, out_dir: Path, metrics_path: Path, params: Params) -> Path:
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
        embed = query_vectors(params, LexicalFiles(lexical_dir))
        x, labels, held = embed(examples["text"].tolist()), examples["label"].to_numpy(object), examples["held_out"].to_numpy()
        train = ~held

        def fit(xs: np.ndarray, ys: np.ndarray) -> IntentClassifier:  # margin and threshold are chosen below
            return IntentClassifier.fit(xs, ys, 0.5, 0.0, cfg.epochs, cfg.learning_rate, params.seed)

        validation_logits = out_of_fold_logits(x[train], labels[train], cfg.folds, params.seed, fit)
        classifier, validation = choose(fit(x[train], labels[train]), validation_logits, labels[train],
                                        cfg.product_budget)
        classifier.save(out.classifier)
        searches = classifier.verdicts(embed(list(labelled))) if len(labelled) else None
        metrics = {"margin": classifier.margin, "threshold": classifier.threshold,
                   **measure(classifier.verdicts(x[held]), labels[held], searches),
                   "validation": {"folds": cfg.folds, "product_budget": cfg.product_budget, **validation}}
        counts = examples.loc[~held, "label"].value_counts()
        summary = {"trained": True, "classes": int(len(classifier.classes)), "intents": int(len(intents)),
                   "trained_on": {"phrasings": int(counts.drop(PRODUCT, errors="ignore").sum()),
                                  "product_queries": int(counts.get(PRODUCT, 0))},
                   "margin": classifier.margin, "threshold": classifier.threshold}
    out.summary.write_text(json.dumps(summary, indent=2) + "\n")
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    return out_dir


def query_vectors(params: Params, lexical: LexicalFiles):
    """``texts -> vectors`` as search computes them: corrected free text, query-side MiniLM."""
    speller, encoder = load_speller(lexical), query_side_encoder(params)

    def embed(texts: list[str]) -> np.ndarray:
        return embed_texts([query_text(t, speller) for t in texts], encoder.embed, params.text.batch_size,
                           progress=False)

    return embed

"""The verdict's margin and threshold, chosen on validation folds of the training examples.

The held-out share (:func:`~shoprec.help.examples.training_set`) is scored once, with the
chosen values: choosing on it would report a tuned figure as a measured one. Instead the
training examples are split into ``folds`` seeded per-class folds; each is scored by a
classifier fitted on the others, so that every training example gets out-of-fold logits.
K folds rather than one validation share because the help centre is small (about a dozen
phrasings per intent): one 20% share would leave two or three per intent, and a product
budget of 0.05% of a thousand product queries would be half a query.

* ``margin``: the smallest one (in steps of 0.001, at least 0) by which the best service
  class must beat ``product`` so that at most ``product_budget`` of the out-of-fold product
  queries are routed to help;
* ``threshold``: of :data:`THRESHOLDS`, the one with the best intent accuracy + hand-over
  F1 at that margin (ties: the higher, which hands over rather than guesses).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from shoprec.help.classifier import PRODUCT, IntentClassifier
from shoprec.help.examples import measure

THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def fold_of(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """A fold index per example: each class dealt round-robin over the folds in a seeded order."""
    rng, (_, y) = np.random.default_rng([seed, 3]), np.unique(labels.astype(str), return_inverse=True)
    out = np.zeros(len(labels), int)
    for c in range(y.max() + 1 if len(y) else 0):
        rows = rng.permutation(np.flatnonzero(y == c))
        out[rows] = np.arange(len(rows)) % folds
    return out


def out_of_fold_logits(x: np.ndarray, labels: np.ndarray, folds: int, seed: int,
                       fit: Callable[[np.ndarray, np.ndarray], IntentClassifier]) -> np.ndarray:
    """``[n, classes]`` logits, each row from the fit on the other folds (columns: ``np.unique(labels)``;
    ``-inf`` for a class a fold's fit never saw)."""
    classes = np.unique(labels.astype(str))
    fold, out = fold_of(labels, folds, seed), np.full((len(x), len(classes)), -np.inf)
    for k in range(folds):
        rows = fold == k
        if rows.any():
            model = fit(x[~rows], labels[~rows])
            out[np.ix_(rows, np.searchsorted(classes, model.classes.astype(str)))] = model.logits(x[rows])
    return out


def choose(classifier: IntentClassifier, logits: np.ndarray, labels: np.ndarray,
           product_budget: float) -> tuple[IntentClassifier, dict]:
    """``classifier`` with the margin and threshold chosen on the out-of-fold ``logits`` of ``labels``
    (columns as its classes), and the validation figures: at the chosen threshold and per threshold (all at the
    chosen margin)."""
    gaps = np.sort(classifier.service_gap(logits[labels == PRODUCT]))[::-1]
    allowed = int(product_budget * len(gaps))  # routed product queries the budget allows
    margin = 0.0 if allowed >= len(gaps) or gaps[allowed] < 0 else (math.floor(gaps[allowed] * 1000) + 1) / 1000
    sweep = []
    for threshold in THRESHOLDS:
        figures = measure(replace(classifier, threshold=threshold, margin=margin).decide(logits), labels)
        sweep.append({"threshold": threshold, **figures})
    best = max(reversed(sweep), key=lambda m: (m["intent_accuracy"] or 0) + _f1(m))
    return (replace(classifier, threshold=best["threshold"], margin=margin),
            {"chosen": best, "sweep": sweep})


def _f1(m: dict) -> float:
    p, r = m["handoff_precision"] or 0.0, m["handoff_recall"] or 0.0
    return 2 * p * r / (p + r) if p + r else 0.0


"""Which help-centre intent a query asks, "not a service question", or "a person must answer".

A softmax regression on the query's MiniLM vector ``x`` (384-d, unit length, the very
vector search encodes, so a search pays one small matrix product for it):

    p(c | x) = softmax(W x + b)_c,   c in intents + {handoff, product}

``product`` is the explicit "not a service question" class, trained on the shop's product
queries (logged searches, item titles and title fragments); ``handoff`` on service
questions no template answers. The verdict (:meth:`IntentClassifier.verdicts`):

* the best other class does not beat ``product`` by ``margin`` in log-probability
  (``log p(c) - log p(product) < margin``, a difference of logits): a product search,
  answered as before. A product title that shares a word with a service question ("packing
  charge", "gift tags") tends to win narrowly, a service question clearly;
* else the best intent has ``p >= threshold``: its answer (a help card);
* else (``handoff`` is most likely, or no intent is sure enough): hand over to a person,
  with the intents it might be as guesses.

``margin`` and ``threshold`` are chosen on validation folds of the training examples
(:mod:`shoprec.help.tuning`), never on the held-out figures.

Fitted by full-batch gradient descent (Adam) with class-balanced weights, so that thirty
intents with a dozen phrasings each are not drowned by thousands of product queries: a
few CPU seconds, no framework.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shoprec.data.contracts import HANDOFF

PRODUCT = "product"  # the class of product searches: not a service question
N_GUESSES = 3


@dataclass(frozen=True)
class Verdict:
    service: bool  # a service question (help card or hand-over), not a product search
    intent: str | None  # the answered intent; None for a product search or a hand-over
    confidence: float  # p of the answered intent (of the best intent on a hand-over; of product otherwise)
    handoff: bool
    guesses: tuple[tuple[str, float], ...]  # the likeliest intents and their p, best first


@dataclass
class IntentClassifier:
    classes: np.ndarray  # class index -> intent id, HANDOFF or PRODUCT
    weight: np.ndarray  # [d, n_classes]
    bias: np.ndarray  # [n_classes]
    threshold: float  # an intent less likely than this is handed over
    margin: float = 0.0  # log-probability a service class must beat ``product`` by

    def __post_init__(self) -> None:  # the columns a verdict looks at, found once rather than per query
        self._intents = np.flatnonzero(~np.isin(self.classes, [PRODUCT, HANDOFF]))
        self._others = np.flatnonzero(self.classes != PRODUCT)
        self._product, self._handoff = self._column(PRODUCT), self._column(HANDOFF)

    def logits(self, x: np.ndarray) -> np.ndarray:
        return np.atleast_2d(x) @ self.weight + self.bias

    def verdicts(self, x: np.ndarray) -> list[Verdict]:
        """One verdict per row of ``x`` (see the module docstring)."""
        return self.decide(self.logits(x))

    def decide(self, logits: np.ndarray) -> list[Verdict]:
        """The verdicts of rows of logits (ours, or a validation fold's scored with our margin and threshold)."""
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        intent_cols, others, product, handoff = self._intents, self._others, self._product, self._handoff
        service = self.service_gap(logits) >= self.margin
        likeliest = others[p[:, others].argmax(axis=1)]  # the likeliest service class (never product)
        out = []
        for row, asks, best in zip(p, service, likeliest.tolist()):
            ranked = intent_cols[np.argsort(-row[intent_cols], kind="stable")][:N_GUESSES]
            guesses = tuple((str(self.classes[c]), round(float(row[c]), 4)) for c in ranked)
            if not asks:
                out.append(Verdict(False, None, float(row[product]), False, guesses))
            elif best != handoff and row[best] >= self.threshold:
                out.append(Verdict(True, str(self.classes[best]), float(row[best]), False, guesses))
            else:
                out.append(Verdict(True, None, float(row[ranked[0]]) if len(ranked) else 0.0, True, guesses))
        return out

    def service_gap(self, logits: np.ndarray) -> np.ndarray:
        """``max_c log p(c) - log p(product)`` over the service classes ``c``, per row (+inf without ``product``)."""
        if self._product < 0:
            return np.full(len(logits), np.inf)
        return logits[:, self._others].max(axis=1) - logits[:, self._product]

    def _column(self, name: str) -> int:
        found = np.flatnonzero(self.classes == name)
        return int(found[0]) if len(found) else -1

    @classmethod
    def fit(cls, x: np.ndarray, labels: np.ndarray, threshold: float, margin: float, epochs: int,
            learning_rate: float, seed: int) -> "IntentClassifier":
        """Softmax regression by Adam on the class-balanced cross-entropy (plus a little L2 on ``W``)."""
        classes, y = np.unique(labels.astype(str), return_inverse=True)
        n, d, k = len(x), x.shape[1], len(classes)
        weight_of = n / (k * np.bincount(y, minlength=k))  # each class weighs as much in the loss
        w_row = (weight_of[y] / n).astype(np.float64)[:, None]
        onehot = np.eye(k)[y]
        rng = np.random.default_rng(seed)
        params = [rng.normal(0, 0.01, (d, k)), np.zeros(k)]
        moments = [[np.zeros_like(q), np.zeros_like(q)] for q in params]
        x64 = x.astype(np.float64)
        for step in range(1, epochs + 1):
            logits = x64 @ params[0] + params[1]
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            g = (p - onehot) * w_row
            grads = [x64.T @ g + 1e-4 * params[0], g.sum(axis=0)]
            for q, grad, m in zip(params, grads, moments):
                m[0] = 0.9 * m[0] + 0.1 * grad
                m[1] = 0.999 * m[1] + 0.001 * grad ** 2
                q -= learning_rate * (m[0] / (1 - 0.9 ** step)) / (np.sqrt(m[1] / (1 - 0.999 ** step)) + 1e-8)
        return cls(classes.astype(object), params[0].astype(np.float32), params[1].astype(np.float32), threshold,
                   margin)

    def save(self, path: Path) -> Path:
        np.savez(path, classes=self.classes.astype(str), weight=self.weight, bias=self.bias,
                 threshold=np.float64(self.threshold), margin=np.float64(self.margin))
        return path

    @classmethod
    def load(cls, path: Path) -> "IntentClassifier":
        f = np.load(path, allow_pickle=False)
        return cls(f["classes"].astype(object), f["weight"], f["bias"], float(f["threshold"]), float(f["margin"]))


def save_answers(intents, path: Path) -> Path:
    """The clean ``service_intents`` table as ``{intent_id: {"answer", "fields"}}`` JSON (what the service fills);
    ``fields`` are the listed ones and every one the answer places, so that a fill never lacks one."""
    def fields(row) -> list[str]:
        placed = {name for _, name, _, _ in string.Formatter().parse(str(row.answer)) if name}
        return sorted(set(str(row.fields).split()) | placed)

    table = {str(r.intent_id): {"answer": str(r.answer), "fields": fields(r)} for r in intents.itertuples(index=False)}
    path.write_text(json.dumps(table, indent=2, sort_keys=True) + "\n")
    return path

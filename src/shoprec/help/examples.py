"""What the intent classifier learns from and is measured on: phrasings against product queries.

Service questions are the ``service_phrasings`` table (out-of-scope ones under
``handoff``). Product queries, the "not a service question" class, are what shoppers type
for products: the logged searches of the training window (minus any that are phrasings,
the sample's service questions in the log), the item titles, and fragments of titles
(one to three consecutive words), which stand in for searches where a shop has no
search log (Online Retail). The labelled search queries (``query_labels``) are kept out of
training: they measure how many product searches would be routed to help.

A seeded, per-class share of every class is held out for the metrics, scored once with the
verdict's margin and threshold as chosen on validation folds of the rest
(:mod:`shoprec.help.tuning`). Variants of one question (a typo, a greeting) are separate
phrasings, so a held-out phrasing may have a sibling in training: the held-out accuracy is
that of questions like the ones the help centre lists, not of new topics (which the
out-of-scope class and the threshold are for).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from shoprec.data.contracts import HANDOFF
from shoprec.help.classifier import PRODUCT, Verdict

MAX_FRAGMENT_WORDS = 3


def product_queries(train_events: pd.DataFrame, titles: pd.Series, exclude: set[str], limit: int,
                    seed: int) -> list[str]:
    """Up to ``limit`` distinct product queries: logged searches, titles and title fragments, none in ``exclude``."""
    rng = np.random.default_rng([seed, 1])
    logged = train_events.loc[train_events["query"] != "", "query"].str.lower().unique().tolist()
    words = [t.split() for t in titles.str.lower().str.replace(r"[^\w\s]", " ", regex=True)]
    fragments = []
    for title in words:
        if title:
            size = int(rng.integers(1, min(MAX_FRAGMENT_WORDS, len(title)) + 1))
            start = int(rng.integers(0, len(title) - size + 1))
            fragments.append(" ".join(title[start:start + size]))
    texts = [t for t in dict.fromkeys(logged + [" ".join(t) for t in words] + fragments) if t and t not in exclude]
    if len(texts) > limit:
        texts = [texts[i] for i in np.sort(rng.choice(len(texts), limit, replace=False))]
    return texts


def training_set(phrasings: pd.DataFrame, products: list[str], holdout: float, seed: int) -> pd.DataFrame:
    """``text``, ``label`` (intent, handoff or product) and ``held_out`` (a seeded per-class share)."""
    frame = pd.concat([pd.DataFrame({"text": phrasings["phrasing"].str.lower(), "label": phrasings["intent_id"]}),
                       pd.DataFrame({"text": products, "label": PRODUCT})], ignore_index=True)
    frame = frame.drop_duplicates("text").reset_index(drop=True)
    rng = np.random.default_rng([seed, 2])
    held = np.zeros(len(frame), bool)
    for _, rows in frame.groupby("label").indices.items():
        n = int(round(holdout * len(rows))) if len(rows) > 1 else 0
        held[rng.choice(rows, n, replace=False)] = True
    return frame.assign(held_out=held)


def measure(verdicts: list[Verdict], labels: np.ndarray, labelled: list[Verdict] | None = None) -> dict:
    """Intent accuracy, hand-over precision and recall, product queries routed to help, of the ``verdicts`` on
    examples of ``labels``; with ``labelled`` (the verdicts on the labelled search queries), their share routed."""
    in_scope = ~np.isin(labels, [PRODUCT, HANDOFF])
    truth_handoff, handoff = labels == HANDOFF, np.array([v.handoff for v in verdicts], bool)
    service = np.array([v.service for v in verdicts], bool)
    answered = np.array([v.intent for v in verdicts], dtype=object)
    top = np.array([v.guesses[0][0] if v.guesses else "" for v in verdicts], dtype=object)
    product = labels == PRODUCT
    out = {
        "examples": {"intent": int(in_scope.sum()), "handoff": int(truth_handoff.sum()), "product": int(product.sum())},
        "intent_accuracy": _share(answered[in_scope] == labels[in_scope]),
        "intent_top1": _share(top[in_scope] == labels[in_scope]),
        "handoff_precision": _share(truth_handoff[handoff]),
        "handoff_recall": _share(handoff[truth_handoff]),
        "product_routed_to_help": _share(service[product]),
    }
    if labelled:
        out["labelled_queries_routed_to_help"] = _share(np.array([v.service for v in labelled]))
    return out


def _share(hits: np.ndarray) -> float | None:
    return round(float(hits.mean()), 4) if len(hits) else None

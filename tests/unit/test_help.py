"""The help desk: the intent classifier's verdicts, its training, and answers filled from the shopper's data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shoprec.data.contracts import HANDOFF
from shoprec.help.answers import HelpDesk, Shopper
from shoprec.help.classifier import PRODUCT, IntentClassifier, save_answers
from shoprec.help.examples import measure, product_queries, training_set

CLASSES = ("order_status", "returns", HANDOFF, PRODUCT)


def clusters(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around one centre per class (well apart), ``n`` per class."""
    rng = np.random.default_rng(seed)
    centres = np.eye(16)[: len(CLASSES)] * 3
    x = np.concatenate([c + rng.normal(0, 0.4, (n, 16)) for c in centres])
    return x / np.linalg.norm(x, axis=1, keepdims=True), np.repeat(np.array(CLASSES, dtype=object), n)


@pytest.fixture(scope="module")
def classifier() -> IntentClassifier:
    x, y = clusters(40, 0)
    return IntentClassifier.fit(x, y, threshold=0.5, epochs=200, learning_rate=0.05, seed=0)


def test_fit_separates_the_classes_and_measures_them(classifier):
    x, y = clusters(20, 1)
    metrics = measure(classifier, x, y)
    assert metrics["intent_accuracy"] >= 0.95 and metrics["product_routed_to_help"] <= 0.05
    assert metrics["handoff_recall"] >= 0.95 and metrics["handoff_precision"] >= 0.9
    assert metrics["held_out"] == {"intent": 40, "handoff": 20, "product": 20}


def test_verdicts_answer_hand_over_or_leave_product_searches_alone(classifier):
    x, _ = clusters(1, 2)
    order, _, handoff, product = classifier.verdicts(x)
    assert order.service and order.intent == "order_status" and not order.handoff and order.confidence >= 0.5
    assert handoff.service and handoff.handoff and handoff.intent is None
    assert not product.service and product.intent is None and not product.handoff
    assert order.guesses[0][0] == "order_status" and len(order.guesses) == 2  # intents only
    unsure = IntentClassifier(classifier.classes, classifier.weight, classifier.bias, threshold=0.999)
    below = unsure.verdicts(x[:1])[0]
    assert below.service and below.handoff and below.intent is None and below.guesses[0][0] == "order_status"


def test_saved_classifier_gives_the_same_verdicts(classifier, tmp_path):
    x, _ = clusters(3, 3)
    loaded = IntentClassifier.load(classifier.save(tmp_path / "classifier.npz"))
    assert loaded.verdicts(x) == classifier.verdicts(x)


def test_answers_are_filled_from_the_shopper_or_handed_over(classifier, tmp_path):
    intents = pd.DataFrame({"intent_id": ["order_status", "returns"],
                            "answer": ["Ordered on {last_order_date} ({last_order_item}).", "Free for 30 days."],
                            "fields": ["last_order_date", ""]})
    desk = HelpDesk.load(classifier.save(tmp_path / "c.npz"), save_answers(intents, tmp_path / "answers.json"))
    assert desk.answers["order_status"]["fields"] == ["last_order_date", "last_order_item"]  # placed ones count too
    x, _ = clusters(1, 4)
    known = Shopper({"last_order_date": "2024-03-01", "last_order_item": "Red Mug", "purchases": "3"})
    card = desk.card(x[:1], known)
    assert card["answer"] == "Ordered on 2024-03-01 (Red Mug)." and not card["handoff"]
    stranger = desk.card(x[:1], Shopper({}))
    assert stranger["handoff"] and stranger["answer"] is None and "last_order_date" in stranger["reason"]
    assert desk.card(x[1:2], Shopper({}))["answer"] == "Free for 30 days."  # needs nothing of the shopper
    assert desk.card(x[3:4], known) is None  # a product search has no card


def test_product_queries_and_the_held_out_share():
    events = pd.DataFrame({"query": ["red mug", "", "where is my order", "red mug", "oak table"]})
    titles = pd.Series(["Red Ceramic Mug", "Oak Dining Table"])
    texts = product_queries(events, titles, exclude={"where is my order", "oak table"}, limit=100, seed=0)
    assert "red mug" in texts and "red ceramic mug" in texts and "oak dining table" in texts
    assert "where is my order" not in texts and "oak table" not in texts and "" not in texts
    assert len(product_queries(events, titles, set(), limit=2, seed=0)) == 2
    phrasings = pd.DataFrame({"intent_id": ["a"] * 10 + [HANDOFF] * 5, "phrasing": [f"q{i}" for i in range(15)]})
    examples = training_set(phrasings, [f"p{i}" for i in range(20)], holdout=0.2, seed=0)
    assert examples.groupby("label")["held_out"].sum().to_dict() == {"a": 2, HANDOFF: 1, PRODUCT: 4}

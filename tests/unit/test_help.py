"""The help desk: the intent classifier's verdicts, its training, and answers filled from the shopper's data."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from shoprec.data.contracts import HANDOFF
from shoprec.help.answers import HelpDesk, Shopper
from shoprec.help.classifier import PRODUCT, IntentClassifier, save_answers
from shoprec.help.examples import measure, product_queries, training_set
from shoprec.help.tuning import THRESHOLDS, choose, fold_of, out_of_fold_logits

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
    return IntentClassifier.fit(x, y, threshold=0.5, margin=0.0, epochs=200, learning_rate=0.05, seed=0)


def test_fit_separates_the_classes_and_measures_them(classifier):
    x, y = clusters(20, 1)
    metrics = measure(classifier.verdicts(x), y)
    assert metrics["intent_accuracy"] >= 0.95 and metrics["product_routed_to_help"] <= 0.05
    assert metrics["handoff_recall"] >= 0.95 and metrics["handoff_precision"] >= 0.9
    assert metrics["examples"] == {"intent": 40, "handoff": 20, "product": 20}


def test_verdicts_answer_hand_over_or_leave_product_searches_alone(classifier):
    x, _ = clusters(1, 2)
    order, _, handoff, product = classifier.verdicts(x)
    assert order.service and order.intent == "order_status" and not order.handoff and order.confidence >= 0.5
    assert handoff.service and handoff.handoff and handoff.intent is None
    assert not product.service and product.intent is None and not product.handoff
    assert order.guesses[0][0] == "order_status" and len(order.guesses) == 2  # intents only
    unsure = replace(classifier, threshold=0.999)
    below = unsure.verdicts(x[:1])[0]
    assert below.service and below.handoff and below.intent is None and below.guesses[0][0] == "order_status"


@pytest.fixture
def by_logits() -> IntentClassifier:
    """A classifier whose columns are CLASSES in that order, for verdicts on given logits (``decide``)."""
    return IntentClassifier(np.array(CLASSES, dtype=object), np.zeros((16, 4)), np.zeros(4), threshold=0.2)


def test_a_service_class_must_beat_product_by_the_margin(by_logits):
    """Logits: order_status narrowly (0.5) over product, then clearly (3.0), then a tie."""
    logits = np.array([[2.0, 0.0, 0.0, 1.5], [4.5, 0.0, 0.0, 1.5], [1.0, 0.0, 0.0, 1.0]])
    lenient, strict = by_logits, replace(by_logits, margin=0.6)
    assert [v.intent for v in lenient.decide(logits)] == ["order_status"] * 3  # a tie is service, never "product"
    narrow, clear, tie = strict.decide(logits)
    assert not narrow.service and not narrow.handoff and narrow.intent is None and not tie.service
    assert narrow.confidence == pytest.approx(np.exp(1.5) / np.exp(logits[0]).sum(), abs=1e-6)  # p(product)
    assert clear.service and clear.intent == "order_status"
    assert [v.service for v in strict.decide(logits)] == [False, True, False]


def test_saved_classifier_gives_the_same_verdicts(classifier, tmp_path):
    x, _ = clusters(3, 3)
    tuned = replace(classifier, margin=0.7, threshold=0.3)
    loaded = IntentClassifier.load(tuned.save(tmp_path / "classifier.npz"))
    assert (loaded.margin, loaded.threshold) == (0.7, 0.3) and loaded.verdicts(x) == tuned.verdicts(x)


def validation_logits(product_gaps: list[float], unsure_handoffs: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits over CLASSES: products with the given gap of order_status over product; 20 clear returns
    questions (p ~ 0.9); out-of-scope questions whose best intent has p ~ 0.35, handoff not most likely."""
    products = np.array([[g, -5.0, -5.0, 0.0] for g in product_gaps])
    returns = np.tile([0.0, 6.0, 3.0, 0.0], (20, 1))
    unsure = np.tile([1.0, 1.0, 0.3, -3.0], (unsure_handoffs, 1))
    labels = np.array([PRODUCT] * len(products) + ["returns"] * 20 + [HANDOFF] * unsure_handoffs, dtype=object)
    return np.concatenate([products, returns, unsure]), labels


def test_the_margin_is_the_smallest_within_the_product_budget_and_the_threshold_the_best_on_validation(by_logits):
    logits, labels = validation_logits([-1.0] * 97 + [0.3, 0.5, 0.9], unsure_handoffs=5)
    tuned, validation = choose(by_logits, logits, labels, product_budget=0.01)  # 1 of 100 may be routed
    assert tuned.margin == 0.501 and validation["chosen"]["product_routed_to_help"] == 0.01
    assert choose(by_logits, logits, labels, product_budget=0.0)[0].margin == 0.901
    assert choose(by_logits, *validation_logits([-1.0] * 100, 5), product_budget=0.0)[0].margin == 0.0
    # 0.2 and 0.3 answer the unsure out-of-scope questions with an intent; from 0.4 they are handed over
    assert tuned.threshold >= 0.4 and validation["chosen"]["handoff_recall"] == 1.0
    assert validation["chosen"]["intent_accuracy"] == 1.0 and validation["chosen"]["handoff_precision"] == 1.0
    assert [m["threshold"] for m in validation["sweep"]] == list(THRESHOLDS)
    assert validation["sweep"][0]["handoff_recall"] == 0.0


def test_validation_logits_come_from_fits_that_did_not_see_the_example():
    x, y = clusters(10, 5)
    x, y = np.concatenate([x, x[:1]]), np.concatenate([y, ["lone"]]).astype(object)  # a class of one example
    fold = fold_of(y, 5, seed=0)
    for label in CLASSES:  # each class dealt evenly over the folds
        assert np.bincount(fold[y == label], minlength=5).tolist() == [2] * 5

    def fit(a, b):
        return IntentClassifier.fit(a, b, 0.5, 0.0, epochs=50, learning_rate=0.05, seed=0)

    logits = out_of_fold_logits(x, y, 5, 0, fit)
    lone = list(np.unique(y.astype(str))).index("lone")
    unseen = (logits[:, lone] == -np.inf).tolist()
    assert unseen == (fold == fold[-1]).tolist()  # the fit scoring the lone example's fold never saw it
    assert (logits[:-1].argmax(axis=1) == np.searchsorted(np.unique(y.astype(str)), y[:-1].astype(str))).mean() > 0.9


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

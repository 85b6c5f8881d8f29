"""Search on a real small `dvc repro` (the session's scratch copy): stages, metrics, export, CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

SYSTEMS = ("lexical", "semantic", "hybrid", "hybrid_personalised")
TYPES = {"exact", "synonym", "partial", "typo", "price", "clean"}


def test_search_stages_run_and_report_every_system_and_type(pipeline_run):
    for stage in ("build_lexical_index", "train_query_model", "evaluate_search"):
        assert f"Running stage '{stage}'" in pipeline_run.first.stdout, pipeline_run.first.stderr[-2000:]
    metrics = json.loads((pipeline_run.root / "reports/search_metrics.json").read_text())
    assert metrics["queries"] == 500
    for system in SYSTEMS:
        assert set(metrics[system]["by_type"]) == TYPES
        assert 0.0 < metrics[system]["all"]["ndcg@10"] <= 1.0
    assert metrics["semantic"]["all"]["zero_result"] == 0.0  # the semantic leg always answers
    report = (pipeline_run.root / "reports/search_metrics.md").read_text()
    assert "| hybrid |" in report and "| text ceiling |" in report
    ceiling = metrics["text_ceiling"]["all"]["ndcg@10"]
    assert metrics["lexical"]["all"]["ndcg@10"] < ceiling <= 1.0
    assert metrics["hybrid_share_of_headroom"] == pytest.approx(
        (metrics["hybrid"]["all"]["ndcg@10"] - metrics["lexical"]["all"]["ndcg@10"])
        / (ceiling - metrics["lexical"]["all"]["ndcg@10"]), abs=1e-3)
    gate = json.loads((pipeline_run.root / "reports/search_gate.json").read_text())
    assert gate["passed"] == (metrics["hybrid"]["all"]["ndcg@10"] >= metrics["lexical"]["all"]["ndcg@10"])


def test_the_intent_classifier_answers_service_questions_and_leaves_product_searches_alone(pipeline_run):
    assert "Running stage 'train_intents'" in pipeline_run.first.stdout, pipeline_run.first.stderr[-2000:]
    metrics = json.loads((pipeline_run.root / "reports/intent_metrics.json").read_text())
    assert metrics["examples"]["intent"] >= 60 and metrics["examples"]["handoff"] >= 8
    assert metrics["intent_top1"] >= 0.8 and metrics["intent_accuracy"] >= 0.6
    assert metrics["handoff_recall"] >= 0.8
    assert metrics["product_routed_to_help"] <= 0.01 and metrics["labelled_queries_routed_to_help"] <= 0.01
    validation = metrics["validation"]  # margin and threshold chosen on the training examples' folds
    assert validation["chosen"]["threshold"] == metrics["threshold"] and metrics["margin"] >= 0
    assert validation["chosen"]["product_routed_to_help"] <= validation["product_budget"]
    assert validation["chosen"]["examples"]["product"] > metrics["examples"]["product"]  # not the held-out ones
    summary = json.loads((pipeline_run.root / "models/intents/summary.json").read_text())
    assert summary["trained"] and summary["intents"] == 31 and summary["trained_on"]["product_queries"] > 1000


def test_logged_searches_of_the_test_window_are_scored_by_first_choice_mrr(pipeline_run):
    """One score per search session of the test window (its first choice), every mode, in the headline too."""
    import pandas as pd

    from shoprec.config import load_params
    from shoprec.search.pairs import first_choices

    root = pipeline_run.root
    test = pd.read_parquet(root / "data/split/test.parquet")
    searches = len(first_choices(test, load_params(root / "params.yaml").interactions.weights))
    logged = json.loads((root / "reports/search_metrics.json").read_text())["logged"]
    assert logged["searches"] == searches > 100
    assert all(0.0 < logged[mode] < 1.0 for mode in ("lexical", "semantic", "hybrid"))
    assert json.loads((root / "reports/headline.json").read_text())["search_logged"] == logged


def test_defining_words_learned_from_the_logs_are_product_types_not_colours_or_brands(pipeline_run):
    import pandas as pd

    from shoprec.search.index.titles import title_tokens

    defining = json.loads((pipeline_run.root / "models/search/lexical/defining.json").read_text())
    assert {"mug", "lamp", "candle"} <= defining.keys()  # shoppers name the product type
    assert not defining.keys() & {"red", "blue", "green", "black", "white", "grey"}  # ... and its colour as they please
    brands = pd.read_parquet(pipeline_run.root / "data/clean/items.parquet", columns=["brand"])["brand"]
    assert not defining.keys() & {t for b in title_tokens(brands) for t in b}


def test_saved_query_model_takes_raw_strings_and_matches_in_process_scores(pipeline_run):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (tokenizer ops of the graph)

    from shoprec.config import load_params
    from shoprec.layout import Layout
    from shoprec.search.store import load_layout_engine

    root = pipeline_run.root
    params = load_params(root / "params.yaml")
    assert params.search.query_encoder == "int8"
    float_params = params.model_copy(update={"search": params.search.model_copy(update={"query_encoder": "float"})})
    engine = load_layout_engine(float_params, Layout(root), personalise=False)
    assert engine.semantic.projection is not None and engine.intent is not None  # sample events carry queries
    saved = tf.saved_model.load(str(root / "models/search/query_model/saved_model"))
    out = saved.signatures["serving_default"](query=tf.constant(["red ceramic mug"]))
    scores = engine.semantic.scores(engine.embed(["red ceramic mug"]))[0]
    best = np.argsort(-scores)[:10]
    np.testing.assert_array_equal(out["item_ids"].numpy()[0, :10].astype(str), engine.item_ids[best].astype(str))
    np.testing.assert_allclose(out["scores"].numpy()[0, :10], scores[best], atol=1e-4)
    # what the service and the evaluation run: the same model with int8 weights, nearly the same top 10
    served = load_layout_engine(params, Layout(root), personalise=False)
    int8_scores = served.semantic.scores(served.embed(["red ceramic mug"]))[0]
    assert len(set(np.argsort(-int8_scores)[:10]) & set(best)) >= 8
    np.testing.assert_allclose(int8_scores[best], scores[best], atol=0.07)  # measured <= 0.01; text term alone <= 0.06


def test_cli_search_prints_parsed_query_and_items_as_json(pipeline_run):
    proc = subprocess.run([sys.executable, "-m", "shoprec.cli", "search", "red mug under 30", "--user", "U00001",
                           "--k", "5", "--json"], cwd=pipeline_run.root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["parsed"]["max_price"] == 30.0 and result["parsed"]["colour"] == "red"
    assert 0 < len(result["items"]) <= 5
    for item in result["items"]:
        assert {"item_id", "title", "score", "price"} <= item.keys() and item["price"] <= 30.0
        assert "red" in item["title"].lower()

"""The trained models of a real small pipeline run: exports, determinism, recommendations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from shoprec.config import load_params
from shoprec.models.diversity import mmr
from shoprec.models.multistage import ranker_inputs
from shoprec.models.candidates import Events
from shoprec.models.recommend import Request, recommend, recommend_many, recommend_now
from shoprec.models.retrieval import query_inputs
from shoprec.layout import Layout, RetrievalFiles
from shoprec.models.store import cutoffs, load_layout, phases, stored_state
from shoprec.stages.train_retrieval import train_retrieval


@pytest.fixture(scope="module")
def system(pipeline_run):
    return load_layout(load_params(pipeline_run.root / "params.yaml"), Layout(pipeline_run.root))


@pytest.fixture(scope="module")
def sample_users(pipeline_run):
    truth = pd.read_parquet(pipeline_run.root / "data/split/test_truth.parquet")
    return np.asarray(sorted(truth["user_id"].unique())[:8], dtype=object)


@pytest.fixture(scope="module", params=["pooled", "gru"])
def towers(request, pipeline_run, system, tmp_path_factory):
    """(params, retrieval files, user state at the test cut-off) of each user tower: the pipeline run's
    (pooled), and a GRU two-tower retrained on its data for one epoch (parity needs no quality)."""
    root = pipeline_run.root
    params = load_params(root / "params.yaml")
    if request.param == "pooled":
        return params, RetrievalFiles(root / "models/retrieval"), system.state
    params = params.model_copy(update={"retrieval": params.retrieval.model_copy(
        update={"user_tower": "gru", "epochs": 1})})
    a = Layout(root)
    folder = train_retrieval(a.split.folder, a.items, a.text_embeddings, tmp_path_factory.mktemp("gru") / "retrieval",
                             params)
    train, test_start = phases(a.split)["final"]
    return params, RetrievalFiles(folder), stored_state(train, system.catalog, test_start, params,
                                                         RetrievalFiles(folder), "final")


def test_retrieval_savedmodel_takes_raw_ids_and_matches_in_memory(pipeline_run, system, sample_users, towers):
    params, retrieval, state = towers
    train = pd.read_parquet(pipeline_run.root / "data/split/train.parquet")
    _, test_start = cutoffs(Layout(pipeline_run.root).split)
    user_index = {u: i + 1 for i, u in enumerate(np.load(retrieval.embeddings("final"))["user_ids"])}
    event_types = tuple(params.interactions.weights)
    inputs = query_inputs(sample_users, train, user_index, system.catalog, params.interactions.history_types,
                          event_types, params.retrieval.history_length, test_start)
    history = np.where(inputs["history"] > 0, system.catalog.item_ids[np.maximum(inputs["history"] - 1, 0)], "")
    loaded = tf.saved_model.load(str(retrieval.saved_model))
    events = {}
    if params.retrieval.user_tower == "gru":  # the events' types and days before the cut-off, as raw values
        events = {"event_type": tf.constant(np.where(inputs["history"] > 0, np.array(("",) + event_types)[
                      inputs["history_type"]], "").astype(str)),
                  "days_ago": tf.constant(np.expm1(inputs["history_age"]))}
    out = loaded.signatures["serving_default"](
        user_id=tf.constant(sample_users.astype(str)), history=tf.constant(history.astype(str)),
        day_of_week=tf.constant(inputs["dow"]), **events)
    expected = state.at(state.inter.rows(sample_users)).query @ state.items.item_emb.T
    top = np.sort(expected, axis=1)[:, ::-1][:, : out["scores"].shape[1]]
    np.testing.assert_allclose(out["scores"].numpy(), top, atol=1e-4)
    ids = out["item_ids"].numpy().astype(str)
    assert all(i.startswith("I") for i in ids.ravel())


def test_numpy_query_tower_matches_the_trained_one(towers):
    """Scoring recomputes query vectors with the stored arrays (from each shopper's events, their types and
    ages as of the cut-off): they must be the TensorFlow tower's."""
    _, retrieval, state = towers
    stored = np.load(retrieval.embeddings("final"))
    rows = state.inter.rows(stored["user_ids"].astype(object))
    assert (rows >= 0).all()
    np.testing.assert_allclose(state.at(rows).query, stored["query_emb"], atol=1e-5)
    np.testing.assert_allclose(state.at(np.array([-1])).query[0], stored["cold_query_emb"], atol=1e-5)


def test_ranking_savedmodel_matches_in_memory(pipeline_run, system, sample_users):
    shoppers = system.state.at(system.state.inter.rows(sample_users))
    cands, pred = system.rank_shoppers(shoppers)
    loaded = tf.saved_model.load(str(pipeline_run.root / "models/ranking/saved_model"))
    inputs = ranker_inputs(shoppers, system.catalog, cands)
    out = loaded.signatures["serving_default"](**{k: tf.constant(v) for k, v in inputs.items()})
    for head, values in pred.items():
        np.testing.assert_allclose(out[head].numpy(), values, atol=1e-5)
    assert np.allclose(system.ranker(inputs)["purchase"], pred["purchase"])  # projected per pair: the same


def test_retraining_with_same_data_and_params_gives_the_same_model(pipeline_run, tmp_path):
    root = pipeline_run.root
    params = load_params(root / "params.yaml")
    a = Layout(root)
    train_retrieval(a.split.folder, a.items, a.text_embeddings, tmp_path, params)
    first = np.load(root / "models/retrieval/final/embeddings.npz")
    again = np.load(tmp_path / "final/embeddings.npz")
    for key in ("query_emb", "item_emb", "cold_query_emb"):
        np.testing.assert_allclose(again[key], first[key], atol=1e-6)


def test_recommendations_explain_themselves(system, sample_users):
    state = system.state
    buyer = next(u for u in sample_users if state.inter.purchased[state.inter.rows([u])[0]].nnz)
    items = recommend(system, buyer, 20)
    assert len(items) == 20 and [i["score"] for i in items] == sorted((i["score"] for i in items), reverse=True)
    assert all(i["explanation"] for i in items)
    bought = set(system.catalog.item_ids[state.inter.purchased[state.inter.rows([buyer])[0]].indices])
    assert all(i["explanation"].startswith("you bought this") for i in items if i["item_id"] in bought)
    fresh = recommend(system, buyer, 20, exclude_purchased=True)
    assert not {i["item_id"] for i in fresh} & bought
    cold = recommend(system, "a-shopper-never-seen", 5)
    assert len(cold) == 5 and all(i["explanation"].startswith("popular") for i in cold)


def test_real_time_list_is_the_precomputed_one_on_the_same_history(pipeline_run, system, bundle, sample_users):
    """One scoring path: given a user's training events as of the training cut-off, the real-time
    function answers exactly what the bundle precomputed for them (order, reasons; scores to 1e-6)."""
    train = pd.read_parquet(pipeline_run.root / "data/split/train.parquet")
    _, test_start = cutoffs(Layout(pipeline_run.root).split)
    lists = pd.read_parquet(bundle / "serving/recommendations.parquet")
    known = [u for u in sample_users if u in system.state.inter.user_index][:3]
    assert known
    for user in known + [""]:  # "": the new visitor, no history
        history = train.loc[train["user_id"] == user, ["item_id", "event_type", "timestamp"]]
        now = recommend_now(system, Events.of(history.itertuples(index=False, name=None), system.catalog), test_start,
                            user or None, k=20)
        pre = lists[(lists["user_id"] == user) & (lists["view"] == "all")].sort_values("rank").head(20)
        assert [i["item_id"] for i in now] == list(system.catalog.item_ids[pre["item"]])
        np.testing.assert_allclose([i["score"] for i in now], pre["score"], rtol=0, atol=1e-6)
        assert [i["explanation"] for i in now] == list(pre["explanation"])


def test_two_tower_candidates_through_an_hnsw_graph_give_the_exact_lists(pipeline_run, system, sample_users):
    """At catalog scale the service hands scoring its HNSW graph for the two-tower top-N; on the sample's
    catalog, with a candidate list wide enough that the graph finds the exact neighbours, the lists must be the
    exact index's: the graph replaces the scan and nothing else changes."""
    from dataclasses import replace

    from shoprec.search.index.vectors import ExactIndex, FaissIndex

    assert isinstance(system.state.items.index, ExactIndex)
    items = system.state.items
    graph = replace(system, state=replace(system.state, items=replace(items, index=FaissIndex(items.item_emb, ef_search=2000))))
    train = pd.read_parquet(pipeline_run.root / "data/split/train.parquet")
    _, test_start = cutoffs(Layout(pipeline_run.root).split)
    for user in list(sample_users) + [""]:
        history = Events.of(train.loc[train["user_id"] == user, ["item_id", "event_type", "timestamp"]]
                            .itertuples(index=False, name=None), system.catalog)
        exact, approximate = (recommend_now(s, history, test_start, user or None, k=20) for s in (system, graph))
        assert [i["item_id"] for i in approximate] == [i["item_id"] for i in exact]
        np.testing.assert_allclose([i["score"] for i in approximate], [i["score"] for i in exact], atol=1e-6)


def test_lists_computed_in_one_pass_are_the_lists_computed_alone(pipeline_run, system, sample_users):
    """The service computes the lists that wait together in one pass (``recommend_many``): each shopper's list,
    with their own clock, recent items, k and options, must be the one they get alone."""
    train = pd.read_parquet(pipeline_run.root / "data/split/train.parquet")
    _, test_start = cutoffs(Layout(pipeline_run.root).split)
    viewed = tuple(system.catalog.item_ids[:2])
    requests = [
        Request(Events.of(train.loc[train["user_id"] == user, ["item_id", "event_type", "timestamp"]]
                          .itertuples(index=False, name=None), system.catalog),
                test_start + pd.Timedelta(hours=5 * n), user or None, viewed if n % 2 else (), 10 + n, n % 3 == 1,
                0.3 * (n % 2))
        for n, user in enumerate(list(sample_users)[:5] + [""])
    ]
    together = recommend_many(system, requests)
    for request, batched in zip(requests, together, strict=True):
        alone = recommend_now(system, request.events, request.now, request.user_id, request.recent_items,
                              request.k, request.exclude_purchased, request.diversity)
        assert len(batched) == request.k
        assert [(i["item_id"], i["explanation"]) for i in batched] == [(i["item_id"], i["explanation"]) for i in alone]
        np.testing.assert_allclose([i["score"] for i in batched], [i["score"] for i in alone], rtol=0, atol=1e-6)
    assert together[0] != together[2]  # different shoppers: the pass keeps them apart


def test_what_a_visitor_just_viewed_changes_their_list(pipeline_run, system):
    _, test_start = cutoffs(Layout(pipeline_run.root).split)
    cold = recommend_now(system, Events.of([], system.catalog), test_start, k=10)
    buys = system.state.items.copurchase.getnnz(axis=1)
    viewed = str(system.catalog.item_ids[np.argmax(buys)])  # the item with the most co-purchase neighbours
    title = system.catalog.titles[np.argmax(buys)]
    now = recommend_now(system, Events.of([], system.catalog), test_start, recent_items=[viewed], k=10)
    assert [i["item_id"] for i in now] != [i["item_id"] for i in cold]
    assert all(i["explanation"] == f"because you just viewed {title}" for i in now)


def test_diversity_spreads_the_list(system, sample_users):
    index = {item: i for i, item in enumerate(system.catalog.item_ids)}

    def similarity(items):
        e = system.state.items.item_emb[[index[i["item_id"]] for i in items]]
        s = e @ e.T
        return (s.sum() - np.trace(s)) / (len(e) * (len(e) - 1))

    user = sample_users[0]
    assert similarity(recommend(system, user, 10, diversity=0.7)) < similarity(recommend(system, user, 10))


def test_mmr_by_hand():
    scores = np.array([1.0, 0.99, 0.5])
    emb = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert list(mmr(scores, emb, 0.0, 3)) == [0, 1, 2]
    assert list(mmr(scores, emb, 0.5, 2)) == [0, 2]  # the near-duplicate of item 0 gives way

"""The retrieval towers and the DCN ranker on tiny in-memory tensors, as TFRS tests its own layers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import shoprec  # noqa: F401  (legacy Keras switch before TensorFlow)
import tensorflow as tf

from shoprec.config import RankingParams, RetrievalParams
from shoprec.models.catalog import Catalog
from shoprec.models.query_tower import QueryTowerWeights
from shoprec.models.ranking import Ranker, RankerArrays, predict
from shoprec.models.retrieval import TwoTower, build_examples
from shoprec.models.towers import CandidateTower, ItemEncoder, QueryTower

TEXT_DIM, DIM = 6, 4


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    items = pd.DataFrame({"item_id": ["a", "b", "c", "d"], "title": ["A", "B", "C", "D"],
                          "category": ["mugs", "mugs", "lamps", ""], "brand": ["x", "", "y", "y"],
                          "price": [3.0, 5.0, 40.0, 0.0]})
    text = np.random.default_rng(0).normal(size=(4, TEXT_DIM)).astype(np.float32)
    return Catalog.build(items, text / np.linalg.norm(text, axis=1, keepdims=True), n_price_buckets=2)


def test_item_tokens_gather_each_items_own_content(catalog):
    tf.keras.utils.set_random_seed(0)
    encoder = ItemEncoder(catalog, id_buckets=np.array([1, 2, 0, 0]), dim=DIM)
    vectors = encoder(tf.constant([1, 2, 3, 4])).numpy()
    assert vectors.shape == (4, DIM)
    # items 3 and 4 share id bucket 0 (rare items) but differ by content, so their vectors differ
    assert not np.allclose(vectors[2], vectors[3])
    # the same token gives the same vector wherever it stands in a batch
    np.testing.assert_allclose(encoder(tf.constant([[3, 1], [1, 3]])).numpy()[1, ::-1], vectors[[2, 0]], atol=1e-6)


def test_query_and_candidate_vectors_are_unit_length_and_padding_is_ignored(catalog):
    tf.keras.utils.set_random_seed(0)
    items = ItemEncoder(catalog, id_buckets=np.array([1, 2, 3, 4]), dim=DIM)
    query, candidate = QueryTower(n_users=3, items=items, dim=DIM), CandidateTower(items)
    features = {"user": tf.constant([1, 2]), "history": tf.constant([[1, 2, 0], [1, 2, 3]]), "dow": tf.constant([0, 6])}
    q, c = query(features).numpy(), candidate(tf.constant([1, 2, 3, 4])).numpy()
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(c, axis=1), 1.0, atol=1e-5)
    # masked mean: a history padded with zeros pools exactly as the same history unpadded
    pooled = query.pooled_history(tf.constant([[1, 2, 0, 0]])).numpy()
    np.testing.assert_allclose(pooled, query.pooled_history(tf.constant([[1, 2]])).numpy(), atol=1e-6)
    np.testing.assert_allclose(pooled[0], items(tf.constant([1, 2])).numpy().mean(axis=0), atol=1e-6)


def test_two_tower_learns_to_retrieve_each_users_item(catalog):
    """Four users, each always buying one item: a few steps of the in-batch softmax put every
    user's own item first (the logQ-corrected retrieval loss falls as it does so)."""
    tf.keras.utils.set_random_seed(0)
    cfg = RetrievalParams(embedding_dim=DIM, temperature=0.1, user_dropout=0.0, learning_rate=0.05, batch_size=4)
    model = TwoTower(catalog, id_buckets=np.array([1, 2, 3, 4]), n_users=4, cfg=cfg)
    model.compile(optimizer=tf.keras.optimizers.Adam(cfg.learning_rate))
    n = 64
    users = np.tile(np.array([1, 2, 3, 4], np.int32), n // 4)
    features = {"user": users, "history": np.zeros((n, 2), np.int32), "dow": np.zeros(n, np.int32),
                "item": users.copy(), "weight": np.ones(n, np.float32), "probability": np.full(n, 0.25, np.float32)}
    history = model.fit(tf.data.Dataset.from_tensor_slices(features).batch(4), epochs=8, verbose=0).history["loss"]
    assert history[-1] < history[0]
    q = model.query_tower({"user": tf.constant([1, 2, 3, 4]), "history": tf.zeros((4, 2), tf.int32),
                           "dow": tf.zeros(4, tf.int32)}).numpy()
    c = model.candidate_tower(tf.constant([1, 2, 3, 4])).numpy()
    assert (np.argmax(q @ c.T, axis=1) == np.arange(4)).all()


def test_feature_switches_build_only_the_parts_named(catalog):
    """An ids-only item encoder cannot tell two items apart by content: items sharing the rare
    bucket get one vector; a query tower without the user id ignores it."""
    tf.keras.utils.set_random_seed(0)
    items = ItemEncoder(catalog, id_buckets=np.array([1, 2, 0, 0]), dim=DIM, features=("id",))
    vectors = items(tf.constant([1, 2, 3, 4])).numpy()
    np.testing.assert_allclose(vectors[2], vectors[3])
    assert not np.allclose(vectors[0], vectors[1])
    query = QueryTower(n_users=3, items=items, dim=DIM, features=("history",))
    assert query.user_embedding is None and query.dow_embedding is None
    same_history = {"history": tf.constant([[1, 2], [1, 2]]), "dow": tf.constant([0, 5])}
    q = query(same_history | {"user": tf.constant([1, 2])}).numpy()
    np.testing.assert_allclose(q[0], q[1], atol=1e-6)


def test_examples_are_distinct_per_user_item_session(catalog):
    """A re-clicked item and an invoice's duplicate lines are one example, at the first event, with the
    strongest event's weight; the same item in another session (or without one) is another example."""
    t = pd.Timestamp("2024-01-01", tz="UTC")
    events = pd.DataFrame({
        "user_id": ["u1", "u1", "u1", "u1", "u1", "u2", "u2"],
        "item_id": ["a", "a", "a", "a", "b", "a", "a"],
        "event_type": ["click", "click", "purchase", "purchase", "purchase", "purchase", "purchase"],
        "session_id": ["s1", "s1", "s1", "s2", "s2", None, None],
        "timestamp": [t, t + pd.Timedelta(minutes=1), t + pd.Timedelta(minutes=2), t + pd.Timedelta(days=1),
                      t + pd.Timedelta(days=1), t, t + pd.Timedelta(hours=1)],
    })
    weights, types = {"view": 0.0, "click": 0.3, "add_to_cart": 0.6, "purchase": 1.0}, ["click", "purchase"]
    distinct = build_examples(events, catalog, weights, types, RetrievalParams(history_length=3, examples="distinct"))
    every = build_examples(events, catalog, weights, types, RetrievalParams(history_length=3))
    assert len(every.features["item"]) == 7
    f = distinct.features
    # u1: (a, s1) at its first click with weight 1.0, (a, s2), (b, s2); u2: two sessionless purchases of a
    assert f["user"].tolist() == [1, 1, 1, 2, 2]
    assert f["item"].tolist() == [1, 1, 2, 1, 1]
    assert f["weight"].tolist() == [1.0, 1.0, 1.0, 1.0, 1.0]
    # the history before (a, s1) is empty: it starts at the session's first event
    assert f["history"][0].tolist() == [0, 0, 0]
    assert f["history"][1].tolist() == [1, 1, 1]
    # with each event's type (its position in interactions.weights + 1) and its age at the example's time
    assert f["history_type"][1].tolist() == [2, 2, 4]
    np.testing.assert_allclose(f["history_age"][1], np.log1p([1.0, 1 - 1 / 1440, 1 - 2 / 1440]), rtol=1e-6)
    assert f["history_type"][0].tolist() == [0, 0, 0] and f["history_age"][0].tolist() == [0.0, 0.0, 0.0]


def _pairs(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"numeric": rng.normal(size=(n, 3)).astype(np.float32),
            "user_text": rng.normal(size=(n, TEXT_DIM)).astype(np.float32),
            "item_text": rng.normal(size=(n, TEXT_DIM)).astype(np.float32)}


def test_ranker_heads_follow_esmm_purchase_is_click_times_conversion():
    tf.keras.utils.set_random_seed(0)
    features = _pairs(8)
    ranker = Ranker(["purchase", "click"], RankingParams(cross_layers=2, deep_units=[8]), features["numeric"])
    out = ranker(features)
    assert set(out) == {"click", "purchase"}
    click, purchase = out["click"].numpy(), out["purchase"].numpy()
    assert ((0 < purchase) & (purchase <= click) & (click < 1)).all()  # p(purchase) = pCTR * pCVR <= pCTR
    only = Ranker(["purchase"], RankingParams(cross_layers=1, deep_units=[8]), features["numeric"])
    assert set(only(features)) == {"purchase"}  # no click events: one head, no conversion factor


def test_ranker_learns_a_feature_cross():
    """The label is 1 exactly when two numeric features have the same sign (a pure cross, no
    main effect): the DCN ranker separates the pairs after a few epochs (AUC well above chance)."""
    tf.keras.utils.set_random_seed(0)
    features = _pairs(2048, seed=1)
    label = (features["numeric"][:, 0] * features["numeric"][:, 1] > 0).astype(np.float32)
    cfg = RankingParams(cross_layers=1, deep_units=[16], learning_rate=0.02)
    ranker = Ranker(["purchase"], cfg, features["numeric"])
    ranker.compile(optimizer=tf.keras.optimizers.Adam(cfg.learning_rate))
    ranker.fit(tf.data.Dataset.from_tensor_slices(features | {"label_purchase": label}).batch(128), epochs=10,
               verbose=0)
    scores = ranker(features)["purchase"].numpy()
    auc = tf.keras.metrics.AUC()
    auc.update_state(label, scores)
    assert auc.result().numpy() > 0.9


@pytest.mark.parametrize("user_tower", ["pooled", "gru"])
def test_numpy_query_tower_is_the_tensorflow_one(catalog, user_tower):
    """The arrays scoring runs give the TensorFlow tower's vectors, padding, empty histories and unknown types
    included (the GRU's equations are re-implemented in NumPy, so this is where they are checked)."""
    tf.keras.utils.set_random_seed(0)
    cfg = RetrievalParams(embedding_dim=DIM, user_tower=user_tower)
    model = TwoTower(catalog, id_buckets=np.array([1, 2, 0, 3]), n_users=3, cfg=cfg,
                     event_types=("view", "click", "purchase"))
    rng = np.random.default_rng(1)
    history = rng.integers(1, 5, size=(6, 5)).astype(np.int32)
    history[0] = 0  # no history: the cold-start shopper
    history[1, :3] = 0  # left padding
    inputs = {"user": np.array([0, 1, 2, 3, 1, 2], np.int32), "history": history,
              "history_type": np.where(history > 0, rng.integers(0, 4, size=history.shape), 0).astype(np.int32),
              "history_age": np.where(history > 0, rng.uniform(0, 5, size=history.shape), 0).astype(np.float32),
              "dow": rng.integers(0, 7, size=6).astype(np.int32)}
    expected = model.query_tower({k: tf.constant(v) for k, v in inputs.items()}).numpy()
    arrays = QueryTowerWeights.from_model(model, np.array(["u1", "u2", "u3"]), catalog.n_items)
    assert arrays.sequential == (user_tower == "gru")
    got = arrays.embed(inputs["user"], inputs["dow"], inputs["history"], inputs["history_type"],
                       inputs["history_age"])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    if user_tower == "gru":  # the sequence tower reads the events' order, types and ages; the pooled one does not
        for change in ({"history": history[:, ::-1].copy()}, {"history_type": inputs["history_type"] % 3 + 1},
                       {"history_age": inputs["history_age"] + 1}):
            moved = model.query_tower({k: tf.constant(v) for k, v in (inputs | change).items()}).numpy()
            assert not np.allclose(moved[2:], expected[2:], atol=1e-4)


def test_numpy_ranker_is_the_keras_one():
    """Scoring runs the ranker's arrays in NumPy: both head layouts, to float rounding."""
    tf.keras.utils.set_random_seed(0)
    features = _pairs(64, seed=2)
    for heads in (["purchase", "click"], ["purchase"]):
        ranker = Ranker(heads, RankingParams(cross_layers=2, deep_units=[16, 8]), features["numeric"])
        expected = ranker(features)
        arrays, n = RankerArrays.from_model(ranker), len(features["numeric"])
        assert set(arrays(features)) == set(heads)
        for head in heads:  # pair by pair
            np.testing.assert_allclose(arrays(features)[head], expected[head].numpy(), rtol=0, atol=1e-5)
        users, order = arrays.project(features["user_text"][::-1]), np.arange(n)[::-1]  # projected apart, in batches
        got = predict(arrays, features["numeric"], users, order, arrays.project(features["item_text"]), np.arange(n),
                      batch=40)  # two batches
        assert set(got) == set(heads)
        for head in heads:
            np.testing.assert_allclose(got[head], expected[head].numpy(), rtol=0, atol=1e-5)

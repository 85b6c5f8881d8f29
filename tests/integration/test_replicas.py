"""Several replicas train what one trains: the multi-GPU code path, run on two logical CPUs.

``MirroredStrategy`` over two logical CPU devices is the strategy ``distribution()`` picks
on a two-GPU machine, with the same replica split, in-batch gather and gradient all-reduce;
only the devices differ. Logical devices must be set before TensorFlow starts, so the
training runs in a child process (this file, run as a script), which prints its losses.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

EPOCHS = 3


def test_two_replicas_train_what_one_trains():
    done = subprocess.run([sys.executable, __file__], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = json.loads(done.stdout.strip().splitlines()[-1])
    for model in ("two_tower", "two_tower_gru", "ranker"):
        one, two = np.array(runs["one"][model]), np.array(runs["two"][model])
        assert len(one) == len(two) == EPOCHS and one[-1] < one[0]
        # the in-batch softmax over each replica's half of the batch alone would be clearly lower
        np.testing.assert_allclose(two, one, rtol=1e-3, err_msg=model)
    for model in ("two_tower", "two_tower_gru"):
        mixed = np.array(runs["two_mixed_precision"][model])
        assert np.isfinite(mixed).all() and mixed[-1] < mixed[0], model


def _train(strategy, mixed_precision: bool = False) -> dict[str, list[float]]:
    """The two-tower (each user tower) and the ranker, each fitted on fixed synthetic data under ``strategy``."""
    import pandas as pd
    import tensorflow as tf

    from shoprec.config import RankingParams, RetrievalParams
    from shoprec.models.catalog import Catalog
    from shoprec.models.ranking import train_ranker
    from shoprec.models.retrieval import RetrievalData, train_two_tower
    from shoprec.models.training import set_seeds

    rng = np.random.default_rng(0)
    n_items, n_users, n = 12, 24, 512
    items = pd.DataFrame({"item_id": [f"i{k}" for k in range(n_items)], "title": [f"item {k}" for k in range(n_items)],
                          "category": ["a", "b", "c"] * (n_items // 3), "brand": ["x", "y"] * (n_items // 2),
                          "price": rng.uniform(1, 50, n_items)})
    text = rng.normal(size=(n_items, 6)).astype(np.float32)
    catalog = Catalog.build(items, text / np.linalg.norm(text, axis=1, keepdims=True), n_price_buckets=2)
    users = rng.integers(1, n_users + 1, n).astype(np.int32)
    liked = (users % n_items + 1).astype(np.int32)
    item = np.where(rng.random(n) < 0.8, liked, rng.integers(1, n_items + 1, n)).astype(np.int32)
    counts = np.bincount(item - 1, minlength=n_items)
    history = rng.integers(0, n_items + 1, (n, 4)).astype(np.int32)
    data = RetrievalData({"user": users, "history": history,
                          "history_type": np.where(history > 0, rng.integers(1, 3, history.shape), 0).astype(np.int32),
                          "history_age": np.where(history > 0, rng.uniform(0, 3, history.shape), 0).astype(np.float32),
                          "dow": rng.integers(0, 7, n).astype(np.int32), "item": item,
                          "weight": np.ones(n, np.float32), "probability": (counts / n)[item - 1].astype(np.float32)},
                         {f"u{k}": k for k in range(1, n_users + 1)}, np.arange(1, n_items + 1, dtype=np.int32),
                         ("click", "purchase"))
    pairs = {"numeric": rng.normal(size=(n, 3)).astype(np.float32),
             "user_text": rng.normal(size=(n, 6)).astype(np.float32),
             "item_text": rng.normal(size=(n, 6)).astype(np.float32)}
    pairs["label_purchase"] = (pairs["numeric"][:, 0] > 0.5).astype(np.float32)
    tf.keras.mixed_precision.set_global_policy("mixed_float16" if mixed_precision else "float32")
    set_seeds(0)
    retrieval = RetrievalParams(embedding_dim=8, batch_size=64, epochs=EPOCHS, learning_rate=0.01, user_dropout=0.0,
                                temperature=0.1)
    _, two_tower = train_two_tower(data, catalog, retrieval, strategy, seed=0)
    set_seeds(0)
    _, two_tower_gru = train_two_tower(data, catalog, retrieval.model_copy(update={"user_tower": "gru"}), strategy,
                                       seed=0)
    set_seeds(0)
    _, ranker = train_ranker(pairs, ["purchase"], RankingParams(deep_units=[8], batch_size=64, epochs=EPOCHS),
                             strategy, seed=0)
    return {"two_tower": two_tower, "two_tower_gru": two_tower_gru, "ranker": ranker}


def main() -> None:
    import shoprec  # noqa: F401  (legacy Keras switch before TensorFlow)
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    runs = {"one": _train(tf.distribute.get_strategy()), "two": _train(two),
            "two_mixed_precision": _train(two, mixed_precision=True)}
    print(json.dumps(runs))


if __name__ == "__main__":
    main()

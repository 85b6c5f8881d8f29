"""Benchmark: the public-practice reference two-tower on Online Retail, beside popularity.

The yardstick the retrieval stage must reach (issue 17): an ids-only TFRS two-tower,
user id -> 64-d, item id -> 64-d, both L2-normalised, in-batch softmax at temperature
0.1 with logQ correction and ``remove_accidental_hits``, Adam at 0.005, batch 1,024,
10 epochs over the distinct (customer, item, invoice) purchase rows of train. Scored
like the evaluate stage (known-item test truth, "all" and "new" views) on the pipeline's
own split, with popularity measured in the same run.

Run: .venv/bin/python bench/bench_reference_two_tower.py [epochs] [temperature]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "helpers"))
from repo_copy import REPO, copy_repo  # noqa: E402

import shoprec  # noqa: E402,F401  (TF_USE_LEGACY_KERAS before TensorFlow)
import tensorflow as tf  # noqa: E402
import tensorflow_recommenders as tfrs  # noqa: E402

from shoprec.evaluation.metrics import ranking_metrics  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "online_retail" / "online_retail.csv.gz"
SEED, DIM, BATCH, LEARNING_RATE = 42, 64, 1024, 0.005


class IdsTwoTower(tfrs.Model):
    def __init__(self, n_users: int, n_items: int, temperature: float) -> None:
        super().__init__()
        self.users = tf.keras.layers.Embedding(n_users, DIM)
        self.items = tf.keras.layers.Embedding(n_items, DIM)
        self.task = tfrs.tasks.Retrieval(temperature=temperature, remove_accidental_hits=True)

    def user_vectors(self, users: tf.Tensor) -> tf.Tensor:
        return tf.math.l2_normalize(self.users(users), axis=-1)

    def item_vectors(self, items: tf.Tensor) -> tf.Tensor:
        return tf.math.l2_normalize(self.items(items), axis=-1)

    def compute_loss(self, features: dict, training: bool = False) -> tf.Tensor:
        return self.task(self.user_vectors(features["user"]), self.item_vectors(features["item"]),
                         candidate_sampling_probability=features["probability"], candidate_ids=features["item"],
                         compute_metrics=False)


def split_of_online_retail(root: Path) -> Path:
    """The pipeline's own ingest -> validate -> split of the shared file, in a scratch copy."""
    for stage in ("ingest", "validate", "split"):
        subprocess.run([sys.executable, "-m", "dvc", "repro", "--single-item", stage], cwd=root, check=True,
                       stdout=subprocess.DEVNULL)
    return root / "data" / "split"


def scores(lists: dict, truth: pd.DataFrame) -> dict[str, float]:
    """R@20 and nDCG@20 in the evaluate stage's two views."""
    known = truth[truth["known_item"]]
    out = {}
    for view, rows in (("all", known), ("new", known[~known["bought_before"]])):
        m = ranking_metrics(lists, rows.groupby("user_id")["item_id"].agg(set).to_dict(), [20])
        out |= {f"R@20 {view}": m["recall@20"], f"nDCG@20 {view}": m["ndcg@20"]}
    return out


def top20(user_vectors: np.ndarray, item_vectors: np.ndarray, item_ids: np.ndarray, bought: list[set] | None):
    """Each user's 20 best items (without those in ``bought``, the "new" view)."""
    out = []
    for s in range(0, len(user_vectors), 2048):
        block = user_vectors[s:s + 2048] @ item_vectors.T
        if bought is not None:
            for r, items in enumerate(bought[s:s + 2048]):
                block[r, list(items)] = -np.inf
        out.extend(item_ids[np.argsort(-block, axis=1)[:, :20]])
    return out


@dataclass
class Reference:
    """The fitted reference: normalised user and item vectors over the ids of its training rows."""

    user_of: dict
    item_ids: np.ndarray
    user_vectors: np.ndarray
    item_vectors: np.ndarray
    rows: int
    seconds: float

    def top20(self, users: np.ndarray, bought: dict | None) -> dict:
        """Top 20 of each user with a vector (without the items in ``bought[user]`` when given)."""
        known = [u for u in users if u in self.user_of]
        vectors = self.user_vectors[[self.user_of[u] for u in known]]
        item_of = {t: i for i, t in enumerate(self.item_ids)}
        masks = None if bought is None else [{item_of[i] for i in bought.get(u, ()) if i in item_of} for u in known]
        return dict(zip(known, top20(vectors, self.item_vectors, self.item_ids, masks)))


def fit_reference(train: pd.DataFrame, epochs: int, temperature: float) -> Reference:
    """Train the reference on the distinct (customer, item, invoice) purchase rows of ``train``."""
    tf.keras.utils.set_random_seed(SEED)
    buys = train[train["event_type"] == "purchase"]
    rows = buys.drop_duplicates(["user_id", "item_id", "session_id"])
    user_ids, item_ids = np.array(sorted(rows["user_id"].unique())), np.array(sorted(rows["item_id"].unique()))
    user_of, item_of = {u: i for i, u in enumerate(user_ids)}, {t: i for i, t in enumerate(item_ids)}
    items = rows["item_id"].map(item_of).to_numpy(np.int32)
    frequency = np.bincount(items, minlength=len(item_ids)) / len(items)
    features = {"user": rows["user_id"].map(user_of).to_numpy(np.int32), "item": items,
                "probability": frequency[items].astype(np.float32)}
    data = (tf.data.Dataset.from_tensor_slices(features).shuffle(len(items), seed=SEED, reshuffle_each_iteration=True)
            .batch(BATCH, drop_remainder=True).prefetch(tf.data.AUTOTUNE))
    model = IdsTwoTower(len(user_ids), len(item_ids), temperature)
    model.compile(optimizer=tf.keras.optimizers.Adam(LEARNING_RATE))
    started = time.perf_counter()
    model.fit(data, epochs=epochs, verbose=0)
    seconds = time.perf_counter() - started
    return Reference(user_of, item_ids, model.user_vectors(tf.range(len(user_ids))).numpy(),
                     model.item_vectors(tf.range(len(item_ids))).numpy(), len(items), seconds)


def popularity_top20(train: pd.DataFrame, users: np.ndarray, bought: dict | None) -> dict:
    """The 20 items with the most distinct (customer, item, invoice) purchase rows, minus ``bought``."""
    rows = train[train["event_type"] == "purchase"].drop_duplicates(["user_id", "item_id", "session_id"])
    popular = rows["item_id"].value_counts(sort=False).sort_index().sort_values(ascending=False, kind="stable").index
    fresh = lambda u: [i for i in popular[:20 + len(bought.get(u, ()))] if i not in bought.get(u, ())][:20]  # noqa: E731
    return {u: list(popular[:20]) if bought is None else fresh(u) for u in users}


def both_views(recommend, users: np.ndarray, truth: pd.DataFrame, bought: dict) -> dict[str, float]:
    """R@20 and nDCG@20, "all" from ``recommend(users, None)`` and "new" from ``recommend(users, bought)``."""
    fresh = {k: v for k, v in scores(recommend(users, bought), truth).items() if k.endswith("new")}
    return scores(recommend(users, None), truth) | fresh


def print_table(results: dict[str, dict[str, float]], header: bool = True) -> None:
    if header:
        print(f"{'system':<28} {'R@20 all':>9} {'nDCG@20 all':>12} {'R@20 new':>9} {'nDCG@20 new':>12}")
    for name, m in results.items():
        print(f"{name:<28} {m['R@20 all']:>9.3f} {m['nDCG@20 all']:>12.3f} {m['R@20 new']:>9.3f} {m['nDCG@20 new']:>12.3f}")


def main() -> None:
    if not DATA.exists():
        sys.exit(f"skipped: {DATA} not found")
    epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    temperature = float(sys.argv[2]) if len(sys.argv) > 2 else 0.1
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    with tempfile.TemporaryDirectory() as tmp:
        root = copy_repo(Path(tmp), {"ingest.source": "online_retail", "ingest.path": str(DATA)})
        split = split_of_online_retail(root)
        train, truth = pd.read_parquet(split / "train.parquet"), pd.read_parquet(split / "test_truth.parquet")
    reference = fit_reference(train, epochs, temperature)
    users = np.array(sorted(set(truth.loc[truth["known_item"], "user_id"])))
    bought = train[train["event_type"] == "purchase"].groupby("user_id")["item_id"].agg(set).to_dict()
    results = {"reference two-tower": both_views(reference.top20, users, truth, bought),
               "popularity": both_views(lambda u, b: popularity_top20(train, u, b), users, truth, bought)}
    print(f"{reference.rows:,} distinct (customer, item, invoice) rows, {len(reference.user_of):,} customers, "
          f"{len(reference.item_ids):,} items; {epochs} epochs at temperature {temperature} in {reference.seconds:.0f} s")
    print_table(results)
    ratio = results["reference two-tower"]["R@20 all"] / results["popularity"]["R@20 all"]
    print(f"reference / popularity R@20 (all): {ratio:.2f}")


if __name__ == "__main__":
    main()

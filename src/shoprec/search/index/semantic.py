"""Semantic retrieval: a TFRS retrieval model whose query tower reads raw query text.

Query tower: the frozen MiniLM encoder (``x``, 384-d, unit length) and a trainable
projection into the recommender's item space,

    q = normalise( W2 relu(W1 x + b1) + b2 ),

Item tower: *shared with recommendation*: the candidate embeddings ``c_i`` of the final
two-tower (``models/retrieval/item_embeddings.parquet``), kept fixed, so search and
recommendation place items identically, items without interactions included (their
embedding comes from content), and no second item model has to be trained or served.

Training: (query, clicked / carted / bought item) pairs of the events (see
:mod:`shoprec.search.pairs`), the in-batch sampled softmax of ``tfrs.tasks.Retrieval``
with temperature ``T`` and the logQ correction of the recommender,

    L = - sum_b w_b log softmax_j( q_b . c_j / T - log Q(j) )_b .

Only the projection learns, on MiniLM vectors computed once per distinct query.

Score: the tower's cosine plus the zero-shot cosine of the frozen language model,

    s(query, i) = x . t_i + w q . c_i ,

``t_i`` the item's MiniLM text embedding and ``w`` = ``tower_weight``. The two-tower item
space is learned for *who buys what*, so it blurs attributes a query names (colour,
material) that the text embedding keeps; the sum keeps both (docs/search.md has the figures).
One dot product computes it: the index holds ``[t_i ; c_i]`` and the query is
``[x ; w q]``. Without logged queries (Online Retail) there is nothing to train on:
the index is ``t_i`` alone and the query ``x`` (``projection = None``).

Export: ``serving_default(query: tf.string[B]) -> {scores, item_ids}[B, K]``, MiniLM,
projection and a ``BruteForce`` top-K index in one SavedModel: raw strings in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

import shoprec  # noqa: F401  (legacy Keras switch before TensorFlow)
import tensorflow as tf
import tensorflow_recommenders as tfrs

from shoprec import saved_model

TOP_K = 100


class QueryProjection(tf.keras.layers.Layer):
    """MiniLM vector -> unit vector in the item space (the trainable half of the query tower)."""

    def __init__(self, hidden: int, dim: int, **kwargs):
        super().__init__(**kwargs)
        self.hidden = tf.keras.layers.Dense(hidden, activation="relu")
        self.out = tf.keras.layers.Dense(dim)

    def call(self, text_emb: tf.Tensor) -> tf.Tensor:
        return tf.math.l2_normalize(self.out(self.hidden(text_emb)), axis=-1)


class QueryRetrieval(tfrs.Model):
    def __init__(self, item_emb: np.ndarray, hidden: int, temperature: float, **kwargs):
        super().__init__(**kwargs)
        self.projection = QueryProjection(hidden, item_emb.shape[1])
        self.items = tf.constant(item_emb, tf.float32)
        self.task = tfrs.tasks.Retrieval(temperature=temperature, remove_accidental_hits=True)

    def compute_loss(self, features: dict, training: bool = False) -> tf.Tensor:
        return self.task(
            self.projection(features["text_emb"]),
            tf.gather(self.items, features["item"]),
            sample_weight=features["weight"],
            candidate_sampling_probability=features["probability"],
            candidate_ids=features["item"],
            compute_metrics=False,
        )


def train_projection(text_emb: np.ndarray, item: np.ndarray, weight: np.ndarray, item_emb: np.ndarray, hidden: int,
                     temperature: float, epochs: int, batch_size: int, learning_rate: float,
                     seed: int) -> tuple[list[np.ndarray], list[float]]:
    """Fit the projection on pairs (MiniLM vector, catalog index, weight); its weights and loss per epoch."""
    tf.keras.utils.set_random_seed(seed)
    mass = np.bincount(item, weights=weight, minlength=len(item_emb))
    features = {"text_emb": text_emb.astype(np.float32), "item": item.astype(np.int32),
                "weight": (weight / weight.mean()).astype(np.float32),
                "probability": (mass / mass.sum())[item].astype(np.float32)}
    n = len(item)
    ds = (tf.data.Dataset.from_tensor_slices(features).shuffle(n, seed=seed)
          .batch(batch_size, drop_remainder=n >= batch_size))
    model = QueryRetrieval(item_emb, hidden, temperature)
    model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate))
    history = model.fit(ds, epochs=epochs, verbose=0)
    return model.projection.get_weights(), [float(x) for x in history.history["loss"]]


@dataclass
class SemanticIndex:
    """Item vectors and, when trained, the projection that maps MiniLM query vectors onto them."""

    item_vectors: np.ndarray  # [n_items, d_text (+ d)]: [t_i ; c_i], or t_i alone
    projection: list[np.ndarray] | None  # [W1, b1, W2, b2]; None: zero-shot MiniLM vs item text
    tower_weight: float = 0.5

    @classmethod
    def of(cls, text_emb: np.ndarray, item_emb: np.ndarray | None = None, projection: list[np.ndarray] | None = None,
           tower_weight: float = 0.5) -> "SemanticIndex":
        """Index over item text vectors and, with a trained projection, the shared two-tower item vectors."""
        if projection is None:
            return cls(np.asarray(text_emb, np.float32), None, tower_weight)
        return cls(np.concatenate([text_emb, item_emb], axis=1).astype(np.float32), projection, tower_weight)

    def query_vectors(self, text_emb: np.ndarray) -> np.ndarray:
        if self.projection is None:
            return text_emb
        w1, b1, w2, b2 = self.projection
        q = np.maximum(text_emb @ w1 + b1, 0.0) @ w2 + b2
        q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        return np.concatenate([text_emb, self.tower_weight * q], axis=1)

    def scores(self, text_emb: np.ndarray) -> np.ndarray:
        """Cosine of every item with each query: ``[n_queries, n_items]``."""
        return self.query_vectors(text_emb) @ self.item_vectors.T

    def save(self, path: Path) -> Path:
        arrays = {f"p{i}": w for i, w in enumerate(self.projection or [])}
        np.savez(path, item_vectors=self.item_vectors, tower_weight=self.tower_weight, **arrays)
        return path

    @classmethod
    def load(cls, path: Path) -> "SemanticIndex":
        f = np.load(path, allow_pickle=False)
        projection = [f[f"p{i}"] for i in range(4)] if "p0" in f.files else None
        return cls(f["item_vectors"], projection, float(f["tower_weight"]))


class QueryModule(tf.Module):
    def __init__(self, encoder, index: SemanticIndex, item_ids: np.ndarray, k: int = TOP_K):
        super().__init__()
        self.encoder = encoder
        self.projection = None
        self.tower_weight = index.tower_weight
        if index.projection is not None:
            self.projection = QueryProjection(index.projection[0].shape[1], index.projection[2].shape[1])
            self.projection(tf.zeros((1, index.projection[0].shape[0])))
            self.projection.set_weights(index.projection)
        self.index = tfrs.layers.factorized_top_k.BruteForce(k=min(k, len(item_ids)))
        self.index.index(tf.constant(index.item_vectors, tf.float32), tf.constant(list(item_ids)))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="query")])
    def search(self, query):
        x = self.encoder(query, training=False)
        if self.projection is not None:
            x = tf.concat([x, self.tower_weight * self.projection(x)], axis=1)
        scores, ids = self.index(x)
        return {"scores": scores, "item_ids": ids}


def export_query_model(encoder, index: SemanticIndex, item_ids: np.ndarray, path: Path) -> Path:
    """SavedModel: raw query strings -> top-K item ids and cosines (reload after ``import tensorflow_text``)."""
    module = QueryModule(encoder, index, item_ids)
    module.search(tf.constant(["build"]))
    saved_model.save(module, Path(path), module.search)
    return path

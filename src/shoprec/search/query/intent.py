"""Category intent: which catalog category a query asks for, with a confidence.

A softmax regression on the frozen MiniLM query embedding ``x`` (384-d, unit length):

    p(c | x) = softmax(W x + b)_c,

fitted with weighted cross-entropy on the logged (query, category of the clicked or
bought item) pairs. The confidence is ``max_c p(c | x)``; below ``threshold`` the
parser reports the guess but applies no category filter, because a wrong filter
removes every relevant item while a missing one only costs some precision. A linear
model suffices: MiniLM already separates "mug" from "sneakers", the classifier only has
to learn where this shop draws its category borders. Inference is one small matrix
product in NumPy, well under a millisecond.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

import shoprec  # noqa: F401  (legacy Keras switch before TensorFlow)


@dataclass
class CategoryIntent:
    categories: np.ndarray  # class index -> category name
    weight: np.ndarray  # [d, n_classes]
    bias: np.ndarray  # [n_classes]
    threshold: float

    def predict(self, query_emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Most likely category per row and its probability."""
        logits = query_emb @ self.weight + self.bias
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        best = p.argmax(axis=1)
        return self.categories[best], p[np.arange(len(best)), best]

    @classmethod
    def fit(cls, query_emb: np.ndarray, labels: np.ndarray, sample_weight: np.ndarray, threshold: float,
            epochs: int = 30, learning_rate: float = 0.01, seed: int = 42) -> "CategoryIntent":
        import tensorflow as tf

        categories, y = np.unique(labels.astype(str), return_inverse=True)
        tf.keras.utils.set_random_seed(seed)
        model = tf.keras.Sequential([tf.keras.layers.Dense(len(categories), input_shape=(query_emb.shape[1],))])
        model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate),
                      loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(query_emb, y, sample_weight=sample_weight / sample_weight.mean(), batch_size=256, epochs=epochs,
                  shuffle=True, verbose=0)
        weight, bias = model.layers[0].get_weights()
        return cls(categories.astype(object), weight, bias, threshold)

    def save(self, path: Path) -> Path:
        np.savez(path, categories=self.categories.astype(str), weight=self.weight, bias=self.bias,
                 threshold=self.threshold)
        return path

    @classmethod
    def load(cls, path: Path) -> "CategoryIntent":
        f = np.load(path, allow_pickle=False)
        return cls(f["categories"].astype(object), f["weight"], f["bias"], float(f["threshold"]))

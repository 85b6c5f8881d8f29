"""The trained query tower as NumPy arrays: a shopper's vector from their history as of now.

``train_retrieval`` stores each two-tower's query tower (:class:`QueryTowerWeights`, in
``<phase>/query_tower.npz``) beside the query vectors it computed at the cut-off. Scoring
(:mod:`shoprec.models.scoring`) recomputes a shopper's vector from the history it is given,
so events that arrived after packaging move the vector too. The forward pass mirrors
:class:`~shoprec.models.towers.QueryTower` (masked mean of the item encoder's vectors,
user and day-of-week embeddings, two dense layers, L2 norm); in NumPy because one shopper's
vector is a gather and two small matrix products (tens of microseconds), where a TensorFlow
call costs a millisecond of dispatch. A test checks it against the TensorFlow tower.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np


def _batched(fn, tokens: np.ndarray, batch: int = 65536) -> np.ndarray:
    return np.concatenate([np.asarray(fn(tokens[s:s + batch]), dtype=np.float32) for s in range(0, len(tokens), batch)])


@dataclass(frozen=True)
class QueryTowerWeights:
    features: tuple[str, ...]  # the query tower's parts, in its concatenation order
    user_ids: np.ndarray  # user token - 1 -> user id (token 0: unknown shopper)
    history_vectors: np.ndarray  # [n_items + 1, d]: the item encoder's vector per token, row 0 (padding) zeros
    user_table: np.ndarray  # [n_users + 1, d] (empty when "user" is not a part)
    dow_table: np.ndarray  # [7, 8] (empty when "dow" is not a part)
    hidden_w: np.ndarray
    hidden_b: np.ndarray
    out_w: np.ndarray
    out_b: np.ndarray

    @classmethod
    def from_model(cls, model, user_ids: np.ndarray, n_items: int) -> "QueryTowerWeights":
        """Arrays of a fitted :class:`~shoprec.models.retrieval.TwoTower` (``user_ids`` in token order)."""
        tower = model.query_tower
        vectors = _batched(model.items, np.arange(1, n_items + 1, dtype=np.int32))
        empty = np.zeros((0, 0), np.float32)
        table = lambda layer: empty if layer is None else layer.embeddings.numpy().astype(np.float32)  # noqa: E731
        return cls(tuple(tower.features), np.asarray(user_ids, dtype=str),
                   np.concatenate([np.zeros((1, vectors.shape[1]), np.float32), vectors]),
                   table(tower.user_embedding), table(tower.dow_embedding),
                   *(w.numpy().astype(np.float32) for w in (tower.hidden.kernel, tower.hidden.bias,
                                                           tower.out.kernel, tower.out.bias)))

    def save(self, path: Path) -> Path:
        np.savez(path, features=np.asarray(self.features, dtype=str), user_ids=self.user_ids,
                 history_vectors=self.history_vectors, user_table=self.user_table, dow_table=self.dow_table,
                 hidden_w=self.hidden_w, hidden_b=self.hidden_b, out_w=self.out_w, out_b=self.out_b)
        return path

    @classmethod
    def load(cls, path: Path) -> "QueryTowerWeights":
        stored = np.load(path, allow_pickle=False)
        return cls(tuple(str(f) for f in stored["features"]), *(stored[k] for k in (
            "user_ids", "history_vectors", "user_table", "dow_table", "hidden_w", "hidden_b", "out_w", "out_b")))

    @cached_property
    def user_token(self) -> dict[str, int]:
        return {str(u): i + 1 for i, u in enumerate(self.user_ids)}

    def tokens(self, user_ids) -> np.ndarray:
        """User tokens of ``user_ids``; 0 (the cold-start embedding) for users the tower never saw."""
        return np.fromiter((self.user_token.get(str(u), 0) for u in user_ids), dtype=np.int64, count=len(user_ids))

    def embed(self, users: np.ndarray, history: np.ndarray, dow: np.ndarray) -> np.ndarray:
        """Query vectors of user tokens ``users[B]``, item tokens ``history[B, H]`` (0 = padding), ``dow[B]``."""
        mask = (history > 0)[..., None]
        pooled = (self.history_vectors[history] * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1)
        parts = {"user": lambda: self.user_table[users], "history": lambda: pooled,
                 "dow": lambda: self.dow_table[dow]}
        x = np.concatenate([parts[f]() for f in self.features], axis=1).astype(np.float32)
        out = np.maximum(x @ self.hidden_w + self.hidden_b, 0.0) @ self.out_w + self.out_b
        return out / np.sqrt(np.maximum((out * out).sum(axis=1, keepdims=True), 1e-12))

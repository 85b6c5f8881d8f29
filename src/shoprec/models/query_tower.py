"""The trained query tower as NumPy arrays: a shopper's vector from their history as of now.

``train_retrieval`` stores each two-tower's query tower (:class:`QueryTowerWeights`, in
``<phase>/query_tower.npz``) beside the query vectors it computed at the cut-off. Scoring
(:mod:`shoprec.models.scoring`) recomputes a shopper's vector from the history it is given,
so events that arrived after packaging move the vector too. The forward pass mirrors
:class:`~shoprec.models.towers.QueryTower` (the history part: masked mean of the item
encoder's vectors, or the GRU over the events, :func:`gru_state`; user and day-of-week
embeddings, two dense layers, L2 norm); in NumPy because one shopper's vector is a gather
and a few small matrix products (tens of microseconds), where a TensorFlow call costs a
millisecond of dispatch. A test checks it against the TensorFlow tower.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

# the sequence tower's arrays: empty in a pooled tower (and in files written before it existed)
SEQUENCE_ARRAYS = ("type_table", "gru_kernel", "gru_recurrent", "gru_bias")


def _batched(fn, tokens: np.ndarray, batch: int = 65536) -> np.ndarray:
    return np.concatenate([np.asarray(fn(tokens[s:s + batch]), dtype=np.float32) for s in range(0, len(tokens), batch)])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)  # = 1 / (1 + exp(-x)), without overflow warnings


def gru_state(steps: np.ndarray, mask: np.ndarray, kernel: np.ndarray, recurrent: np.ndarray,
              bias: np.ndarray) -> np.ndarray:
    """Last state of a Keras ``GRU`` (``reset_after=True``, tanh, sigmoid) over ``steps[B, T, F]``.

    Gates are laid out ``[z | r | h]`` in the kernels; ``bias[0]`` is the input bias and
    ``bias[1]`` the recurrent one::

        z = s(x Wz + bz + h Uz + cz)     r = s(x Wr + br + h Ur + cr)
        n = tanh(x Wn + bn + r * (h Un + cn))     h' = z * h + (1 - z) * n

    A masked step keeps the state. Histories are left-padded, so the steps before the
    first unmasked column of the batch are skipped (the state is still zeros there).
    """
    units = recurrent.shape[0]
    state = np.zeros((steps.shape[0], units), np.float32)
    filled = np.flatnonzero(mask.any(axis=0))
    if not len(filled):
        return state
    inputs = steps[:, filled[0]:] @ kernel + bias[0]
    for t, keep in zip(range(inputs.shape[1]), mask[:, filled[0]:].T):
        x = inputs[:, t]
        h = state @ recurrent + bias[1]
        z = _sigmoid(x[:, :units] + h[:, :units])
        r = _sigmoid(x[:, units:2 * units] + h[:, units:2 * units])
        n = np.tanh(x[:, 2 * units:] + r * h[:, 2 * units:])
        state = np.where(keep[:, None], z * state + (1.0 - z) * n, state).astype(np.float32)
    return state


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
    type_table: np.ndarray  # [n_event_types + 1, TYPE_DIM]: the GRU tower's event-type embedding (else empty)
    gru_kernel: np.ndarray  # [d + TYPE_DIM + 1, 3 d] (else empty)
    gru_recurrent: np.ndarray  # [d, 3 d] (else empty)
    gru_bias: np.ndarray  # [2, 3 d] (else empty)

    @classmethod
    def from_model(cls, model, user_ids: np.ndarray, n_items: int) -> "QueryTowerWeights":
        """Arrays of a fitted :class:`~shoprec.models.retrieval.TwoTower` (``user_ids`` in token order)."""
        tower = model.query_tower
        vectors = _batched(model.items, np.arange(1, n_items + 1, dtype=np.int32))
        empty = np.zeros((0, 0), np.float32)
        table = lambda layer: empty if layer is None else layer.embeddings.numpy().astype(np.float32)  # noqa: E731
        gru = [empty] * 3 if tower.gru is None else [w.numpy().astype(np.float32) for w in tower.gru.weights]
        return cls(tuple(tower.features), np.asarray(user_ids, dtype=str),
                   np.concatenate([np.zeros((1, vectors.shape[1]), np.float32), vectors]),
                   table(tower.user_embedding), table(tower.dow_embedding),
                   *(w.numpy().astype(np.float32) for w in (tower.hidden.kernel, tower.hidden.bias,
                                                           tower.out.kernel, tower.out.bias)),
                   table(tower.type_embedding), *gru)

    def save(self, path: Path) -> Path:
        np.savez(path, features=np.asarray(self.features, dtype=str), user_ids=self.user_ids,
                 history_vectors=self.history_vectors, user_table=self.user_table, dow_table=self.dow_table,
                 hidden_w=self.hidden_w, hidden_b=self.hidden_b, out_w=self.out_w, out_b=self.out_b,
                 **{k: getattr(self, k) for k in SEQUENCE_ARRAYS})
        return path

    @classmethod
    def load(cls, path: Path) -> "QueryTowerWeights":
        stored = np.load(path, allow_pickle=False)
        sequence = [stored[k] if k in stored.files else np.zeros((0, 0), np.float32) for k in SEQUENCE_ARRAYS]
        return cls(tuple(str(f) for f in stored["features"]), *(stored[k] for k in (
            "user_ids", "history_vectors", "user_table", "dow_table", "hidden_w", "hidden_b", "out_w", "out_b")),
            *sequence)

    @property
    def sequential(self) -> bool:
        """Whether the history part is the GRU (else the pooled mean)."""
        return self.gru_kernel.size > 0

    @cached_property
    def user_token(self) -> dict[str, int]:
        return {str(u): i + 1 for i, u in enumerate(self.user_ids)}

    def tokens(self, user_ids) -> np.ndarray:
        """User tokens of ``user_ids``; 0 (the cold-start embedding) for users the tower never saw."""
        return np.fromiter((self.user_token.get(str(u), 0) for u in user_ids), dtype=np.int64, count=len(user_ids))

    def history_part(self, history: np.ndarray, history_type: np.ndarray, history_age: np.ndarray) -> np.ndarray:
        mask = history > 0
        if self.sequential:
            steps = np.concatenate([self.history_vectors[history], self.type_table[history_type],
                                    history_age[..., None].astype(np.float32)], axis=-1)
            return gru_state(steps, mask, self.gru_kernel, self.gru_recurrent, self.gru_bias)
        return (self.history_vectors[history] * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1), 1)[:, None]

    def embed(self, users: np.ndarray, dow: np.ndarray, history: np.ndarray, history_type: np.ndarray,
              history_age: np.ndarray) -> np.ndarray:
        """Query vectors of user tokens ``users[B]``, days of week ``dow[B]`` and the histories of
        :func:`~shoprec.models.history.sequences` (``[B, H]`` each; the pooled tower reads the item tokens alone)."""
        parts = {"user": lambda: self.user_table[users],
                 "history": lambda: self.history_part(history, history_type, history_age),
                 "dow": lambda: self.dow_table[dow]}
        x = np.concatenate([parts[f]() for f in self.features], axis=1).astype(np.float32)
        out = np.maximum(x @ self.hidden_w + self.hidden_b, 0.0) @ self.out_w + self.out_b
        return out / np.sqrt(np.maximum((out * out).sum(axis=1, keepdims=True), 1e-12))

"""TFRS two-tower retrieval: training examples, the model, and in-process scoring.

Loss: in-batch sampled softmax over the batch's candidates,

    L = - sum_b w_b log softmax_j( (q_b . c_j) / T - log Q(j) )_b ,

where ``T`` is the temperature and ``log Q(j)`` the logQ correction: in-batch negatives
are drawn in proportion to item frequency, so without the correction popular items are
over-penalised as negatives and the model under-recommends them (Yi et al., 2019,
"Sampling-bias-corrected neural modeling"). ``remove_accidental_hits`` drops in-batch
"negatives" that are the positive item itself. ``w_b`` weighs event types (a purchase
counts more than a click).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import tensorflow as tf
import tensorflow_recommenders as tfrs

from shoprec.config import RetrievalParams
from shoprec.models.catalog import Catalog
from shoprec.models.history import example_bounds, latest_histories, nanoseconds, sequences, type_tokens
from shoprec.models.towers import CandidateTower, ItemEncoder, QueryTower
from shoprec.models.training import ScaledLossModel, batches, float32_layers, global_batch


class TwoTower(ScaledLossModel):
    def __init__(self, catalog: Catalog, id_buckets: np.ndarray, n_users: int, cfg: RetrievalParams,
                 event_types: tuple[str, ...] = ()):
        """``event_types``: the vocabulary of the history's type tokens, which the ``gru`` user tower embeds."""
        super().__init__()
        if cfg.user_tower == "gru" and not event_types:
            raise ValueError("retrieval.user_tower: gru embeds event types; the two-tower was given none")
        self.items = ItemEncoder(catalog, id_buckets, cfg.embedding_dim, tuple(cfg.item_features))
        self.query_tower = QueryTower(n_users, self.items, cfg.embedding_dim, tuple(cfg.query_features),
                                      len(event_types) if cfg.user_tower == "gru" else 0)
        self.candidate_tower = CandidateTower(self.items)
        with float32_layers():
            self.task = tfrs.tasks.Retrieval(temperature=cfg.temperature, remove_accidental_hits=True)
        self.user_dropout = cfg.user_dropout
        self.logq = cfg.logq_correction

    def compute_loss(self, features: dict, training: bool = False) -> tf.Tensor:
        user = features["user"]
        if training and self.user_dropout > 0:
            # some examples train the shared "unknown user" vector used for cold starts
            keep = tf.random.uniform(tf.shape(user)) >= self.user_dropout
            user = tf.where(keep, user, tf.zeros_like(user))
        query = self.query_tower(features | {"user": user})
        # every replica scores its queries against the whole global batch's candidates
        candidates, items, probability = global_batch(
            self.candidate_tower(features["item"]), features["item"], features["probability"])
        with float32_layers():  # the task makes its logQ and accidental-hit layers as it runs
            return self.task(
                query,
                candidates,
                sample_weight=features["weight"],
                candidate_sampling_probability=probability if self.logq else None,
                candidate_ids=items,
                compute_metrics=False,
            )


@dataclass
class RetrievalData:
    """Integer-encoded training examples; ``user_index`` maps user_id -> token (>= 1)."""

    features: dict[str, np.ndarray]
    user_index: dict[str, int]
    id_buckets: np.ndarray  # per catalog item: its id-embedding bucket (0 = shared rare bucket)
    event_types: tuple[str, ...]  # type token - 1 -> event type (the keys of interactions.weights)


def distinct_examples(events: pd.DataFrame) -> pd.DataFrame:
    """One example per (user, item, session), at its first event, weighted by its strongest event.

    Repeats inside a session (an invoice's duplicate lines, a re-clicked item) say the
    same thing once; counting them would tilt the softmax towards what shoppers repeat.
    Events without a session stay one example each. ``events`` is sorted by (user, time).
    """
    session = events["session_id"] if "session_id" in events else pd.Series(None, index=events.index, dtype=object)
    session = session.astype(object).where(session.notna(), events["timestamp"].astype(str))
    keys = pd.DataFrame({"user": events["user_id"], "item": events["item_id"], "session": session})
    strongest = events["w"].groupby([keys["user"], keys["item"], keys["session"]], sort=False).transform("max")
    first = ~keys.duplicated()
    return events[first].assign(w=strongest[first])


def build_examples(
    train: pd.DataFrame, catalog: Catalog, weights: dict[str, float], history_types: list[str], cfg: RetrievalParams
) -> RetrievalData:
    """Training examples (``cfg.examples``: distinct (user, item, session) or every weighted event), each with
    the user's history before it."""
    item_index = catalog.row_of
    ev = train[train["item_id"].isin(item_index.keys())].copy()
    ev["w"] = ev["event_type"].map(weights).fillna(0.0)
    ev["token"] = ev["item_id"].map(item_index).to_numpy(dtype=np.int64) + 1
    ev = ev.sort_values(["user_id", "timestamp"], kind="stable")
    users = sorted(ev["user_id"].unique())
    user_index = {u: i + 1 for i, u in enumerate(users)}

    hist = ev[ev["event_type"].isin(history_types)]
    examples = ev[ev["w"] > 0]
    if cfg.examples == "distinct":
        examples = distinct_examples(examples)
    ex_tokens = examples["token"].to_numpy(dtype=np.int64)
    ends, starts = example_bounds(examples["user_id"].to_numpy(), examples["timestamp"].to_numpy(),
                                  hist["user_id"].to_numpy(), hist["timestamp"].to_numpy())
    event_types = tuple(weights)
    history = sequences(hist["token"].to_numpy(), type_tokens(hist["event_type"].to_numpy(), event_types),
                        nanoseconds(hist["timestamp"]), ends, starts, nanoseconds(examples["timestamp"]),
                        cfg.history_length)
    counts = np.bincount(ex_tokens - 1, minlength=catalog.n_items)
    frequent = counts >= cfg.min_item_count
    id_buckets = np.where(frequent, np.cumsum(frequent), 0).astype(np.int32)
    probability = (counts / counts.sum())[ex_tokens - 1]
    features = {
        "user": examples["user_id"].map(user_index).to_numpy(dtype=np.int32),
        **history,
        "dow": examples["timestamp"].dt.dayofweek.to_numpy(dtype=np.int32),
        "item": ex_tokens.astype(np.int32),
        "weight": examples["w"].to_numpy(dtype=np.float32),
        "probability": probability.astype(np.float32),
    }
    return RetrievalData(features, user_index, id_buckets, event_types)


def train_two_tower(
    data: RetrievalData, catalog: Catalog, cfg: RetrievalParams, strategy: tf.distribute.Strategy, seed: int
) -> tuple[TwoTower, list[float]]:
    """Fit the model; returns it and the loss per epoch."""
    ds = batches(data.features, cfg.batch_size, seed, drop_remainder=len(data.features["item"]) >= cfg.batch_size)
    with strategy.scope():
        model = TwoTower(catalog, data.id_buckets, len(data.user_index), cfg, data.event_types)
        model.compile(optimizer=tf.keras.optimizers.Adam(cfg.learning_rate))
    # Keras splits each global batch across replicas itself when the model was built in the scope
    history = model.fit(ds, epochs=cfg.epochs, verbose=2)
    return model, [float(x) for x in history.history["loss"]]


def query_inputs(
    user_ids: np.ndarray, events: pd.DataFrame, user_index: dict[str, int], catalog: Catalog,
    history_types: list[str], event_types: tuple[str, ...], length: int, when: pd.Timestamp,
) -> dict[str, np.ndarray]:
    """Query-tower inputs for scoring ``user_ids`` as of ``when`` (history = events before it; ``event_types``:
    :attr:`RetrievalData.event_types`)."""
    item_index = catalog.row_of
    hist = events[events["event_type"].isin(history_types)]
    return {
        "user": np.fromiter((user_index.get(u, 0) for u in user_ids), dtype=np.int32, count=len(user_ids)),
        **latest_histories(hist, np.asarray(user_ids), item_index, event_types, length, when),
        "dow": np.full(len(user_ids), when.dayofweek, dtype=np.int32),
    }


def embed_queries(model: TwoTower, inputs: dict[str, np.ndarray], batch: int = 4096) -> np.ndarray:
    out = [model.query_tower({k: v[s : s + batch] for k, v in inputs.items()}).numpy()
           for s in range(0, len(inputs["user"]), batch)]
    return np.concatenate(out) if out else np.zeros((0, model.items.mix.units), np.float32)


def embed_candidates(model: TwoTower, n_items: int, batch: int = 65536) -> np.ndarray:
    tokens = np.arange(1, n_items + 1, dtype=np.int32)
    return np.concatenate([model.candidate_tower(tokens[s : s + batch]).numpy() for s in range(0, n_items, batch)])

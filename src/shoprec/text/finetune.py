"""Contrastive fine-tuning of MiniLM on text pairs (:mod:`shoprec.text.pairs`).

For a batch of ``B`` pairs ``(a_i, p_i)``, both sides go through the same encoder (unit
vectors) and the loss is the softmax cross-entropy of each anchor against every positive
of the global batch, ``-log softmax_j(a_i . p_j / T)[i]``: the other pairs' positives are
the negatives (TFRS's retrieval task; a positive text that appears twice in a batch is not
counted as a negative of itself). Only the top ``finetune_layers`` Transformer layers
learn (:class:`~shoprec.text.minilm.MiniLMEncoder`); the layers below keep what
pre-training put there, which a few thousand shop pairs could otherwise wash out.

AdamW (decoupled weight decay, none on biases and LayerNorm) with a linear warm-up and
cosine decay: the warm-up keeps the first, noisy steps from moving pretrained weights far,
the decay lets the last epochs settle. Held-out pairs are scored after every epoch;
training stops after ``finetune_patience`` epochs without a better held-out loss and the
best epoch's weights are kept. Runs on the training strategy the towers share
(:mod:`shoprec.models.training`): seeded and bit-for-bit reproducible on CPU, mixed
precision and data parallelism on GPUs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

import shoprec  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf
import tensorflow_recommenders as tfrs

from shoprec.config import TextParams
from shoprec.models.training import ScaledLossModel, batches, float32_layers, global_batch
from shoprec.text.minilm import MiniLMEncoder


class PairModel(ScaledLossModel):
    """The encoder and the in-batch softmax loss over (anchor, positive) text pairs."""

    def __init__(self, encoder: MiniLMEncoder, temperature: float):
        super().__init__()
        self.encoder = encoder
        with float32_layers():
            self.task = tfrs.tasks.Retrieval(temperature=temperature, remove_accidental_hits=True)

    def compute_loss(self, features: dict, training: bool = False) -> tf.Tensor:
        anchors = tf.cast(self.encoder(features["anchor"], training=training), tf.float32)
        positives = tf.cast(self.encoder(features["positive"], training=training), tf.float32)
        positives, ids = global_batch(positives, features["positive_id"])
        with float32_layers():
            return self.task(anchors, positives, candidate_ids=ids, compute_metrics=False)


class KeepBest(tf.keras.callbacks.Callback):
    """Early stopping on the held-out loss, with the best epoch's trainable weights restored at the end."""

    def __init__(self, patience: int):
        super().__init__()
        self.patience, self.best, self.best_epoch, self.weights, self.waited = patience, np.inf, 0, None, 0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        loss = float((logs or {})["val_loss"])
        if loss < self.best:
            self.best, self.best_epoch, self.waited = loss, epoch + 1, 0
            self.weights = [v.numpy() for v in self.model.trainable_variables]
            return
        self.waited += 1
        self.model.stop_training = self.waited >= self.patience

    def on_train_end(self, logs: dict | None = None) -> None:
        for variable, value in zip(self.model.trainable_variables, self.weights or []):
            variable.assign(value)


@dataclass(frozen=True)
class FineTuned:
    encoder: MiniLMEncoder
    losses: list[float]  # training loss per epoch
    held_out: list[float]  # held-out loss per epoch
    best_epoch: int


def _features(pairs: pd.DataFrame) -> dict[str, np.ndarray]:
    """String columns, and an id per distinct positive text (for the accidental-hit mask)."""
    ids, _ = pd.factorize(pairs["positive"])
    return {"anchor": pairs["anchor"].to_numpy(dtype=object), "positive": pairs["positive"].to_numpy(dtype=object),
            "positive_id": ids.astype(np.int64)}


def _optimizer(cfg: TextParams, steps: int) -> tf.keras.optimizers.Optimizer:
    warmup = int(cfg.finetune_warmup * steps)
    schedule = tf.keras.optimizers.schedules.CosineDecay(0.0, max(steps - warmup, 1),
                                                         warmup_target=cfg.finetune_learning_rate, warmup_steps=warmup)
    optimizer = tf.keras.optimizers.AdamW(learning_rate=schedule, weight_decay=cfg.finetune_weight_decay)
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return optimizer


def fine_tune(pairs: pd.DataFrame, cfg: TextParams, strategy: tf.distribute.Strategy, seed: int) -> FineTuned:
    """Fine-tune MiniLM (``cfg.model_dir``) on ``anchor, positive`` pairs; a seeded share is held out."""
    if len(pairs) < 4:
        raise ValueError(f"finetune_text: {len(pairs)} text pairs mined, too few to fine-tune on; "
                         "set text.finetune_layers: 0 for this data")
    order = np.random.default_rng(seed).permutation(len(pairs))
    n_held = max(2, int(round(cfg.finetune_holdout * len(pairs))))
    held, train = pairs.iloc[order[:n_held]], pairs.iloc[order[n_held:]]
    size = cfg.finetune_batch_size
    train_ds = batches(_features(train), size, seed, drop_remainder=len(train) >= size)
    held_ds = tf.data.Dataset.from_tensor_slices(_features(held)).batch(size, drop_remainder=len(held) >= size)
    steps = max(len(train) // size, 1) * cfg.finetune_epochs
    with strategy.scope():
        encoder = MiniLMEncoder(cfg.model_dir or None, cfg.max_length, trainable_layers=cfg.finetune_layers)
        model = PairModel(encoder, cfg.finetune_temperature)
        model.compile(optimizer=_optimizer(cfg, steps))
    keep = KeepBest(cfg.finetune_patience)
    history = model.fit(train_ds, validation_data=held_ds, epochs=cfg.finetune_epochs, callbacks=[keep], verbose=2)
    return FineTuned(encoder, [float(x) for x in history.history["loss"]],
                     [float(x) for x in history.history["val_loss"]], keep.best_epoch)

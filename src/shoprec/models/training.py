"""What every TensorFlow training in shoprec shares: seeds, devices, precision, workers.

One code path for one CPU, several GPUs and several machines: ``distribution()`` returns

- a ``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` names a cluster (every worker runs
  the same command with its own ``task``; each uses its local GPUs, or its CPU);
- else a ``MirroredStrategy`` over the visible GPUs;
- else the default strategy (a CPU-only machine).

All are synchronous data parallelism: each replica gets ``batch / n_replicas`` examples
of every global batch (:func:`batches`) and gradients are all-reduced, so the global
batch, and with it the learning rate's meaning, does not depend on the hardware. Models
are built inside ``strategy.scope()`` either way. Every worker computes the same model,
so every worker runs the whole stage, saves included (a save may itself take part in
collective ops); only the chief's files land in the output folder (:func:`output_folder`).

Mixed precision (``mixed_float16``) computes in float16 on GPUs and keeps float32
variables, losses (:func:`float32_layers`) and loss scaling (:class:`ScaledLossModel`);
it is ignored on CPU, where float16 is slower, so a CPU run is bit-for-bit reproducible.
"""

from __future__ import annotations

import shoprec  # noqa: F401  (legacy Keras switch before TensorFlow)

import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf
import tensorflow_recommenders as tfrs


def set_seeds(seed: int) -> None:
    """Python, NumPy and TF seeds plus deterministic ops: same data + params, same model."""
    tf.keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def gpus() -> list:
    return tf.config.list_physical_devices("GPU")


TF_CONFIG_EXAMPLE = ('{"cluster": {"worker": ["10.0.0.1:12345", "10.0.0.2:12345"]}, '
                     '"task": {"type": "worker", "index": 0}}')


class ClusterConfigError(ValueError):
    """``TF_CONFIG`` is set but does not describe a cluster and this process's place in it."""


def cluster_config() -> dict | None:
    """``TF_CONFIG`` parsed, or None when it is unset or empty (one machine)."""
    raw = os.environ.get("TF_CONFIG", "").strip()
    if not raw:
        return None
    try:
        config = json.loads(raw)
    except ValueError:
        config = None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not (isinstance(cluster, dict) and cluster and isinstance(task, dict)
            and isinstance(cluster.get(task.get("type")), list) and isinstance(task.get("index"), int)
            and 0 <= task["index"] < len(cluster[task["type"]])):
        raise ClusterConfigError(
            "TF_CONFIG: must be JSON naming the cluster's hosts and this process's task in it (type and index "
            f"within that list), e.g. {TF_CONFIG_EXAMPLE}; unset it to train on one machine")
    return config


def distribution() -> tf.distribute.Strategy:
    """The strategy for this process (see the module docstring); call it before any other TensorFlow op.

    ``MultiWorkerMirroredStrategy`` starts this worker's gRPC server and waits for the
    others, and collective ops can only be configured before TensorFlow's runtime starts.
    """
    if cluster_config() is not None:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        task = strategy.cluster_resolver
        role = "the chief: it writes the outputs" if is_chief(strategy) else "its outputs go to a temporary folder"
        print(f"shoprec: {task.task_type} {task.task_id} of a cluster training {strategy.num_replicas_in_sync} replicas "
              f"in sync; {role}", file=sys.stderr, flush=True)
        return strategy
    return tf.distribute.MirroredStrategy() if gpus() else tf.distribute.get_strategy()


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """The process whose outputs count: the ``chief`` task, else worker 0 (TensorFlow's convention)."""
    resolver = strategy.cluster_resolver
    if resolver is None or resolver.task_type is None:
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0
                                             and not has_chief)


@contextmanager
def output_folder(out_dir: Path, strategy: tf.distribute.Strategy) -> Iterator[Path]:
    """Where this process writes: ``out_dir`` on the chief, a temporary folder (deleted after) elsewhere.

    The other workers still run every save, into a folder of their own, so that the
    code path, and any collective op a save takes part in, is the same on every worker,
    while the outputs on a shared file system are written once, by the chief.
    """
    if is_chief(strategy):
        yield out_dir
        return
    with tempfile.TemporaryDirectory(prefix="shoprec-worker-") as tmp:
        yield Path(tmp) / out_dir.name


def global_batch(*tensors: tf.Tensor) -> list[tf.Tensor]:
    """Each tensor gathered over every replica's share of the global batch, this replica's share first.

    In-batch negatives must come from the global batch, not from this replica's share of
    it: else ``n`` replicas each train against ``batch / n`` negatives and the model
    changes with the hardware. This replica's rows first keep example ``i``'s positive in
    column ``i``; gradients flow back through the gather to the replica that computed
    each row. One replica: the tensors as they are.
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return list(tensors)
    # a tensor fed from the distributed iterator has no device, and a collective needs one: a copy
    # made here takes the replica's (each replica runs under its device's scope)
    tensors = [tf.identity(t) for t in tensors]
    sizes = context.all_gather(tf.shape(tensors[0])[:1], axis=0)
    offset = tf.reduce_sum(sizes[: context.replica_id_in_sync_group])
    return [tf.roll(context.all_gather(t, axis=0), -offset, axis=0) for t in tensors]


def batches(features: dict[str, np.ndarray], batch_size: int, seed: int, drop_remainder: bool) -> tf.data.Dataset:
    """Shuffled global batches of in-memory examples, the same on every worker.

    Every worker builds the same examples and the same seeded order; under several
    workers the ``DATA`` sharding policy gives each worker its part of every global batch
    (there are no files to shard by, which the default policy would try first).
    """
    n = len(next(iter(features.values())))
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return (
        tf.data.Dataset.from_tensor_slices(features)
        .shuffle(n, seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size, drop_remainder=drop_remainder)
        .prefetch(tf.data.AUTOTUNE)
        .with_options(options)
    )


def configure_precision(mixed_precision: bool) -> str:
    """Set the global Keras policy; returns the policy name in force."""
    policy = "mixed_float16" if mixed_precision and gpus() else "float32"
    tf.keras.mixed_precision.set_global_policy(policy)
    return policy


@contextmanager
def float32_layers() -> Iterator[None]:
    """Layers made inside compute in float32 whatever the global policy.

    For TFRS's tasks, which take no ``dtype`` and make helper layers as they run (so both
    making and calling one go inside): under ``mixed_float16`` a task would cast its
    first input (the queries) to float16 and meet float32 candidates, and a softmax over
    ``score / temperature`` needs float32 anyway. Only Python runs inside (layers are made
    and traced), with no collective op, so no other replica's thread runs meanwhile.
    """
    policy = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy("float32")
    try:
        yield
    finally:
        tf.keras.mixed_precision.set_global_policy(policy)


class ScaledLossModel(tfrs.Model):
    """A TFRS model whose training step scales the loss under mixed precision.

    Keras wraps the optimizer in a ``LossScaleOptimizer`` under ``mixed_float16``, but
    TFRS's ``train_step`` neither scales the loss nor unscales the gradients, so small
    float16 gradients would flush to zero. This step does both; under float32 it is
    TFRS's step, op for op.
    """

    def train_step(self, inputs):
        scaling = isinstance(self.optimizer, tf.keras.mixed_precision.LossScaleOptimizer)
        with tf.GradientTape() as tape:
            loss = self.compute_loss(inputs, training=True)
            regularization_loss = tf.reduce_sum([tf.reduce_sum(extra) for extra in self.losses])
            total_loss = loss + regularization_loss
            scaled = self.optimizer.get_scaled_loss(total_loss) if scaling else total_loss
        gradients = tape.gradient(scaled, self.trainable_variables)
        if scaling:
            gradients = self.optimizer.get_unscaled_gradients(gradients)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        return {metric.name: metric.result() for metric in self.metrics} | {
            "loss": loss, "regularization_loss": regularization_loss, "total_loss": total_loss}


def write_losses(losses: dict[str, list[float]], path: Path) -> Path:
    """Training loss per epoch, one column per model (``dvc plots`` draws one line per column)."""
    width = max((len(v) for v in losses.values()), default=0)
    frame = pd.DataFrame({"epoch": range(1, width + 1)} | {
        name: pd.Series(values, index=range(len(values)), dtype="float64") for name, values in losses.items()})
    frame.to_csv(path, index=False)
    return path

"""What every TensorFlow training in shoprec shares: seeds, devices and precision.

One code path for CPU and GPU: ``distribution()`` returns a ``MirroredStrategy`` over the
visible GPUs (synchronous data parallelism: each replica gets ``batch / n_replicas``
examples and gradients are all-reduced), or the default strategy on a CPU-only machine;
models are built inside ``strategy.scope()`` either way. Mixed precision
(``mixed_float16``) computes in float16 on GPUs and keeps float32 variables; it is
ignored on CPU, where float16 is slower, so a CPU run is bit-for-bit reproducible.
"""

from __future__ import annotations

import shoprec  # noqa: F401  (legacy Keras switch before TensorFlow)

from pathlib import Path

import pandas as pd
import tensorflow as tf


def set_seeds(seed: int) -> None:
    """Python, NumPy and TF seeds plus deterministic ops: same data + params, same model."""
    tf.keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def gpus() -> list:
    return tf.config.list_physical_devices("GPU")


def distribution() -> tf.distribute.Strategy:
    return tf.distribute.MirroredStrategy() if gpus() else tf.distribute.get_strategy()


def configure_precision(mixed_precision: bool) -> str:
    """Set the global Keras policy; returns the policy name in force."""
    policy = "mixed_float16" if mixed_precision and gpus() else "float32"
    tf.keras.mixed_precision.set_global_policy(policy)
    return policy


def write_losses(losses: dict[str, list[float]], path: Path) -> Path:
    """Training loss per epoch, one column per model (``dvc plots`` draws one line per column)."""
    width = max((len(v) for v in losses.values()), default=0)
    frame = pd.DataFrame({"epoch": range(1, width + 1)} | {
        name: pd.Series(values, index=range(len(values)), dtype="float64") for name, values in losses.items()})
    frame.to_csv(path, index=False)
    return path

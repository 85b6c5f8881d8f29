"""Save a SavedModel whose bytes depend on the model only.

``tf.saved_model.save`` writes a fresh random ``uuid`` into ``fingerprint.pb`` on every
save, so the same weights and graph give a different folder hash each run and DVC sees
a changed output. The other fingerprint fields are already hashes of the graph, the
signatures and the checkpoint; the uuid is replaced by a hash of those, which names the
model as well as the random one did and is the same for the same model.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import shoprec  # noqa: F401  (legacy Keras switch before TensorFlow)

import tensorflow as tf
from tensorflow.core.protobuf import fingerprint_pb2

FINGERPRINT = "fingerprint.pb"


def save(module: tf.Module, path: Path, signature) -> Path:
    """``tf.saved_model.save(module, path)`` with ``signature`` as ``serving_default``, reproducibly."""
    tf.saved_model.save(module, str(path), signatures={"serving_default": signature})
    fingerprint_file = path / FINGERPRINT
    if fingerprint_file.is_file():
        fingerprint = fingerprint_pb2.FingerprintDef.FromString(fingerprint_file.read_bytes())
        fingerprint.ClearField("uuid")
        digest = hashlib.sha256(fingerprint.SerializeToString(deterministic=True)).digest()
        fingerprint.uuid = str(int.from_bytes(digest[:16], "big"))
        fingerprint_file.write_bytes(fingerprint.SerializeToString(deterministic=True))
    return path

"""MiniLM for one query at a time: int8 weights run by LiteRT, for search at serving time.

Why: a search encodes one short query (about 8 word pieces). At that size each of the
6 layers is a handful of ``[8, 384] x [384, 1536]``-sized products, so the time goes into
reading 42 MB of float32 weights, not into arithmetic: 3.2 ms per query on one core,
against 1.3 ms each in a batch of 8. Dynamic-range quantisation stores every weight
matrix as int8 with one scale per output channel,

    W ~ s * Q,   s_j = max_i |W_ij| / 127,   Q_ij = round(W_ij / s_j) in [-127, 127],

and quantises each activation row on the fly the same way (``x ~ r * p``), so a dense
layer is an int8 product with int32 sums, rescaled once: ``x W ~ r s * (p Q)``. A
quarter of the bytes, and int8 dot products: 0.9 ms per query (tokenising included),
cosine with the float encoder's vector 0.998 typically, 0.993 at worst, for the empty
text (``tests/test_text_encoder.py``).

Only the query side is quantised: item vectors are computed once, offline, by the float
encoder, and search compares a query vector with them. A per-query error of ``1 - cos``
~ 0.002 moves the text cosine ``x . t`` by at most ``|dx| = sqrt(2 * 0.002)`` ~ 0.06; the
query tower's term (an MLP, then renormalised) has no such bound, so the search
evaluation (``evaluate_search``, which loads the engine the service loads) measures what
it costs (docs/search.md).
``search.query_encoder: float`` switches back.

Tokenising stays in TensorFlow (the same :class:`WordPieceTokenizer` graph); LiteRT runs
the network from word-piece ids on. An interpreter is not thread-safe, so calls are
serialised with a lock (the server encodes in one thread per worker anyway).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

import shoprec  # noqa: F401  (legacy Keras switch before TensorFlow)
import tensorflow as tf

from shoprec.text.minilm import STRING_BATCH, MiniLMEncoder
from shoprec.text.tokenizer import WordPieceTokenizer
from shoprec.text.weights import TOKENIZER_FILES, read_do_lower_case, read_vocab, resolve_model_dir

IDS = tf.TensorSpec([None, None], tf.int32, name="input_ids")
MASK = tf.TensorSpec([None, None], tf.int32, name="attention_mask")


def export_int8(encoder: MiniLMEncoder, path: Path) -> Path:
    """Write ``encoder``'s network (ids and mask -> unit vectors) as a LiteRT flatbuffer with int8 weights."""

    @tf.function(input_signature=[IDS, MASK])
    def network(input_ids, attention_mask):
        return {"embedding": encoder.encode_ids(input_ids, attention_mask, training=False)}

    converter = tf.lite.TFLiteConverter.from_concrete_functions([network.get_concrete_function()], encoder)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]  # dynamic range: int8 weights, float activations
    path.write_bytes(converter.convert())
    return path


class QuantizedEncoder:
    """``embed(texts: tf.string [batch]) -> float32 [batch, 384]``, like :meth:`MiniLMEncoder.embed`.

    ``model_dir`` names the vocabulary (the one the flatbuffer was exported with: the
    same ``text.model_dir``, or the serving bundle's copy of its tokenizer files);
    ``threads`` the interpreter's CPU threads (None: LiteRT's default).
    """

    def __init__(self, path: Path, model_dir: str | Path | None = None, max_length: int = 128,
                 threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no quantised query encoder; re-run finetune_text "
                                    f"or set search.query_encoder: float")
        vocab_dir = resolve_model_dir(model_dir, TOKENIZER_FILES)
        tokenizer = WordPieceTokenizer(read_vocab(vocab_dir), max_length, read_do_lower_case(vocab_dir))
        self._tokenize = tf.function(tokenizer, input_signature=[STRING_BATCH])
        self._run = Interpreter(model_path=str(path), num_threads=threads).get_signature_runner()
        self.dim = int(self._run.get_output_details()["embedding"]["shape"][-1])
        self._lock = threading.Lock()

    def embed(self, texts: tf.Tensor) -> np.ndarray:
        if texts.shape[0] == 0:  # the interpreter cannot resize to an empty batch
            return np.zeros((0, self.dim), np.float32)
        input_ids, attention_mask = self._tokenize(texts)
        with self._lock:
            return self._run(input_ids=input_ids.numpy(), attention_mask=attention_mask.numpy())["embedding"]

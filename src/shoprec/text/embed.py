"""Embed a whole catalog (or query log) in batches, and the text an item is embedded from.

Batches are formed after sorting the texts by length: the tokenizer pads each batch to
its longest sequence, so grouping similar lengths removes most padding (attention is
quadratic in the padded length). Rows are put back in input order at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

import shoprec  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf

from shoprec.text.minilm import MiniLMEncoder

ITEM_TEXT_FIELDS = ("title", "category", "brand", "description")


def embed_texts(
    texts: Sequence[str],
    encoder: MiniLMEncoder | Callable[[tf.Tensor], tf.Tensor],
    batch_size: int = 256,
    progress: bool = True,
) -> np.ndarray:
    """``[len(texts), dim]`` float32 embeddings, row i for ``texts[i]``.

    ``encoder``: a ``MiniLMEncoder`` (its compiled ``embed`` path is used) or any
    callable from a ``tf.string [batch]`` tensor to ``[batch, dim]``, e.g. the signature
    of a reloaded SavedModel.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    embed = encoder.embed if isinstance(encoder, MiniLMEncoder) else encoder
    texts = list(texts)  # positional indexing even for a pandas Series with another index
    if not texts:
        return np.asarray(embed(tf.constant([], dtype=tf.string)), dtype=np.float32)
    order = np.argsort([len(t) for t in texts], kind="stable")
    chunks = []
    for start in tqdm(range(0, len(texts), batch_size), desc="embedding", unit="batch", disable=not progress):
        batch = [texts[i] for i in order[start : start + batch_size]]
        chunks.append(np.asarray(embed(tf.constant(batch, dtype=tf.string)), dtype=np.float32))
    out = np.empty((len(texts), chunks[0].shape[1]), np.float32)
    out[order] = np.concatenate(chunks)
    return out


def item_text(items_df: pd.DataFrame) -> list[str]:
    """One text per item: ``"title. category. brand. description"``, empty fields skipped.

    Why this order: the encoder truncates at ``max_length`` word pieces, so the fields go
    from most to least identifying per token, and the long free-text description comes
    last where truncation may cut it. Category and brand are short and are the words a
    shopper types ("nike running shoes"); joining with ". " keeps them separate phrases
    the way the model saw sentences in pre-training. Missing values (NaN/None) count as
    empty; missing columns are an error (the items contract has all four).
    """
    missing = [c for c in ITEM_TEXT_FIELDS if c not in items_df.columns]
    if missing:
        raise KeyError(f"items table lacks column(s) {', '.join(missing)}")
    fields = items_df[list(ITEM_TEXT_FIELDS)].astype(object)
    fields = fields.where(fields.notna(), "")
    return [
        ". ".join(part for part in (str(v).strip().rstrip(".").strip() for v in row) if part)
        for row in fields.itertuples(index=False, name=None)
    ]

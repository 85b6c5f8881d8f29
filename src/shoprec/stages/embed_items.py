"""DVC stage ``embed_items``: MiniLM text embeddings of the whole catalog, computed once.

Transfer learning: the language model (``text.model_dir``: the ``finetune_text`` stage's,
fine-tuned on the shop's pairs or pretrained as is) is run once per catalog; the towers
learn a projection on top. Rows follow ``items.parquet`` order.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from shoprec.config import TextParams
from shoprec.text.catalog_embeddings import write_embeddings
from shoprec.text.embed import embed_texts, item_text
from shoprec.text.minilm import MiniLMEncoder


def embed_items(items_path: Path, out_path: Path, params: TextParams) -> Path:
    items = pd.read_parquet(items_path)
    encoder = MiniLMEncoder(params.model_dir or None, max_length=params.max_length)
    vectors = embed_texts(item_text(items), encoder, batch_size=params.batch_size)
    return write_embeddings(items["item_id"].to_numpy(), vectors, out_path)

"""DVC stage ``embed_items``: MiniLM text embeddings of the whole catalog, computed once.

Transfer learning: the language model is frozen and run once per catalog; the towers
learn a projection on top. Rows follow ``items.parquet`` order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from shoprec.config import TextParams
from shoprec.text.embed import embed_texts, item_text
from shoprec.text.minilm import MiniLMEncoder


def write_embeddings(ids: np.ndarray, vectors: np.ndarray, path: Path, id_column: str = "item_id") -> Path:
    """``id, embedding`` Parquet (fixed-size float32 lists), the layout ANN indexes read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).ravel())
    table = pa.table({id_column: pa.array(list(ids), pa.string()),
                      "embedding": pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])})
    pq.write_table(table, path)
    return path


def read_embeddings(path: Path, id_column: str = "item_id") -> tuple[np.ndarray, np.ndarray]:
    table = pq.read_table(path)
    col = table.column("embedding").combine_chunks()
    vectors = col.values.to_numpy(zero_copy_only=False).reshape(len(col), col.type.list_size)
    return table.column(id_column).to_numpy(zero_copy_only=False), vectors.astype(np.float32)


def embed_items(items_path: Path, out_path: Path, params: TextParams) -> Path:
    items = pd.read_parquet(items_path)
    encoder = MiniLMEncoder(params.model_dir or None, max_length=params.max_length)
    vectors = embed_texts(item_text(items), encoder, batch_size=params.batch_size)
    return write_embeddings(items["item_id"].to_numpy(), vectors, out_path)

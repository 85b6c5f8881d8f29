"""Vectors per id on disk: ``id, embedding`` Parquet with fixed-size float32 lists.

The catalog's MiniLM text vectors and the two-tower's item vectors are stored this way,
rows in ``items.parquet`` order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


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

"""Vectors per id on disk: ``id, embedding`` Parquet with fixed-size float32 lists.

The catalog's MiniLM text vectors and the two-tower's item vectors are stored this way,
rows in ``items.parquet`` order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

READ_BATCH = 65536  # rows per Parquet row group, and decoded at a time when read


def write_embeddings(ids: np.ndarray, vectors: np.ndarray, path: Path, id_column: str = "item_id") -> Path:
    """``id, embedding`` Parquet (fixed-size float32 lists), the layout ANN indexes read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).ravel())
    table = pa.table({id_column: pa.array(list(ids), pa.string()),
                      "embedding": pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])})
    pq.write_table(table, path, row_group_size=READ_BATCH)  # groups a reader can take one at a time
    return path


def read_embeddings(path: Path, id_column: str = "item_id") -> tuple[np.ndarray, np.ndarray]:
    """The ids and the ``[n, d]`` float32 vectors, filled a batch of rows at a time: the memory is the
    vectors plus one row group (:func:`write_embeddings` writes ``READ_BATCH`` rows per group), not the whole
    table and its copies (a 1M-item catalog's text vectors are 1.5 GB)."""
    file = pq.ParquetFile(path)
    size = file.schema_arrow.field("embedding").type.list_size
    ids, vectors, at = [], np.empty((file.metadata.num_rows, size), np.float32), 0
    for batch in file.iter_batches(batch_size=READ_BATCH, columns=[id_column, "embedding"]):
        ids.append(batch.column(id_column).to_numpy(zero_copy_only=False))
        rows = batch.column("embedding")
        vectors[at : at + len(rows)] = rows.flatten().to_numpy(zero_copy_only=False).reshape(len(rows), size)
        at += len(rows)
    pa.default_memory_pool().release_unused()  # Arrow's allocator would keep the decoded batches' pages
    return (np.concatenate(ids) if ids else np.zeros(0, object)), vectors

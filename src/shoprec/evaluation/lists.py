"""Turn any scorer into top-K lists, in batches, for the two evaluation views.

* ``all``: the scorer's ranking as it is (repurchases count);
* ``new``: items the user purchased in train are masked out (``-inf``) before the
  top-K, and are removed from that user's truth by the caller.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from shoprec.topk import top_k

VIEWS = ("all", "new")


def mask_rows(scores: np.ndarray, exclude: sp.csr_matrix) -> np.ndarray:
    """Set ``scores[r, c] = -inf`` wherever ``exclude[r, c]`` is non-zero."""
    coo = exclude.tocoo()
    scores[coo.row, coo.col] = -np.inf
    return scores


def recommend_batches(scorer, rows: np.ndarray, k: int, exclude: sp.csr_matrix | None, batch: int = 512):
    """Yield ``(row_slice, top-k indices)`` for ``rows``; ``exclude`` rows align with ``rows``."""
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        scores = scorer.score(chunk).astype(np.float32, copy=False)
        if exclude is not None:
            scores = mask_rows(scores, exclude[start : start + batch])
        yield slice(start, start + len(chunk)), top_k(scores, k)[0]

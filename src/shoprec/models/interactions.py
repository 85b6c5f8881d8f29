"""The user x item matrices every model and baseline is fitted on.

Items are indexed over the whole catalog (so items never seen in train still have a
row for content-based scoring); users over those seen in train. Two matrices:

* ``weighted``: per (user, item) the weight of the strongest event the user gave the
  item (``max weight[event_type]``), the implicit-feedback signal; repeats do not
  inflate it, so popularity over it counts each shopper once;
* ``purchased``: number of purchase events, the target the evaluation checks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shoprec.models.catalog import row_index


@dataclass
class Interactions:
    user_ids: np.ndarray  # index -> user_id
    item_ids: np.ndarray  # index -> item_id (whole catalog)
    user_index: dict[str, int]
    item_index: dict[str, int]
    weighted: sp.csr_matrix
    purchased: sp.csr_matrix

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def item_popularity(self) -> np.ndarray:
        """Weighted interaction mass per item (column sums)."""
        return np.asarray(self.weighted.sum(axis=0)).ravel()

    def rows(self, user_ids) -> np.ndarray:
        """Matrix rows of ``user_ids``; -1 for users unseen in train."""
        return np.fromiter((self.user_index.get(u, -1) for u in user_ids), dtype=np.int64)


def build_interactions(train: pd.DataFrame, item_ids: np.ndarray, weights: dict[str, float]) -> Interactions:
    """Aggregate train events into sparse matrices over the catalog ``item_ids``."""
    item_ids = np.asarray(item_ids, dtype=object)
    item_index = row_index(item_ids)
    train = train[train["item_id"].isin(item_index.keys())]
    user_ids = np.asarray(sorted(train["user_id"].unique()), dtype=object)
    user_index = {u: i for i, u in enumerate(user_ids)}
    rows = train["user_id"].map(user_index).to_numpy()
    cols = train["item_id"].map(item_index).to_numpy()
    w = train["event_type"].map(weights).fillna(0.0).to_numpy(dtype=np.float32)
    shape = (len(user_ids), len(item_ids))
    strongest = pd.DataFrame({"r": rows, "c": cols, "w": w}).groupby(["r", "c"], sort=False)["w"].max()
    r, c = strongest.index.get_level_values(0), strongest.index.get_level_values(1)
    weighted = sp.csr_matrix((strongest.to_numpy(), (r, c)), shape=shape, dtype=np.float32)
    buy = (train["event_type"] == "purchase").to_numpy()
    purchased = sp.csr_matrix(
        (np.ones(buy.sum(), dtype=np.float32), (rows[buy], cols[buy])), shape=shape, dtype=np.float32
    )
    purchased.sum_duplicates()
    return Interactions(user_ids, item_ids, user_index, item_index, weighted, purchased)

"""Item-side features as dense arrays aligned with the catalog index.

Every model indexes items by their row in ``items.parquet`` (the catalog), so the
towers can gather an item's content by integer index inside the TF graph, and items
with no interactions still have content (text embedding, category, brand, price).

Index 0 of every vocabulary is reserved for "unknown / empty", so an item with no brand
and a category never seen at training time share one learned vector.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd


def row_index(item_ids: Iterable[str]) -> dict[str, int]:
    """item_id -> its row in the catalog, the index every model and artifact uses."""
    return {item: row for row, item in enumerate(item_ids)}


def vocabulary(values: pd.Series) -> dict[str, int]:
    """Value -> index starting at 1 (0 = unknown/empty), in sorted order for determinism."""
    distinct = sorted(v for v in values.unique() if v)
    return {v: i + 1 for i, v in enumerate(distinct)}


def price_buckets(prices: np.ndarray, n_buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """Quantile bucket edges over the catalog, and each item's bucket (1..n; 0 = no price)."""
    positive = prices[prices > 0]
    if len(positive) == 0:
        return np.zeros(0), np.zeros(len(prices), dtype=np.int32)
    edges = np.unique(np.quantile(positive, np.linspace(0, 1, n_buckets + 1)[1:-1]))
    buckets = np.where(prices > 0, np.searchsorted(edges, prices, side="right") + 1, 0)
    return edges, buckets.astype(np.int32)


@dataclass
class Catalog:
    item_ids: np.ndarray  # index -> item_id
    titles: np.ndarray
    categories: np.ndarray  # raw category strings
    category_idx: np.ndarray  # int32, 0 = none
    brand_idx: np.ndarray
    price: np.ndarray  # float32
    price_bucket: np.ndarray  # int32
    text_emb: np.ndarray  # [n_items, d_text] float32, L2-normalised
    n_categories: int
    n_brands: int
    n_price_buckets: int

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @cached_property
    def rows(self) -> pd.Index:
        """The item ids as an index: ``rows.get_indexer(ids)`` is their rows (-1: not in the catalog), one hash
        lookup per id (a ``Series.map`` over :attr:`row_of` rebuilds its table on every call). Python strings,
        not Arrow-backed ones: an Arrow-backed index converts all its ids at every look-up."""
        return pd.Index(np.asarray(self.item_ids, dtype=object), dtype=object)

    @cached_property
    def row_of(self) -> dict[str, int]:
        """item_id -> row (:func:`row_index`)."""
        return row_index(self.item_ids)

    @classmethod
    def build(cls, items: pd.DataFrame, text_emb: np.ndarray, n_price_buckets: int = 10) -> "Catalog":
        if len(text_emb) != len(items):
            raise ValueError(f"text embeddings have {len(text_emb)} rows for {len(items)} catalog items")
        cats, brands = vocabulary(items["category"]), vocabulary(items["brand"])
        price = items["price"].to_numpy(dtype=np.float32)
        _, bucket = price_buckets(price, n_price_buckets)
        return cls(
            item_ids=items["item_id"].to_numpy(dtype=object),
            titles=items["title"].to_numpy(dtype=object),
            categories=items["category"].to_numpy(dtype=object),
            category_idx=items["category"].map(cats).fillna(0).to_numpy(dtype=np.int32),
            brand_idx=items["brand"].map(brands).fillna(0).to_numpy(dtype=np.int32),
            price=price,
            price_bucket=bucket,
            text_emb=np.asarray(text_emb, dtype=np.float32),
            n_categories=len(cats) + 1,
            n_brands=len(brands) + 1,
            n_price_buckets=n_price_buckets + 1,
        )

"""Lexical retrieval: BM25 over title, description, category and brand, built once per catalog.

Library: ``bm25s`` (0.3.16, pinned). It stores the BM25 weight of every (token, item)
pair in a sparse matrix at index time, so scoring a query is a sum of a few sparse
rows in NumPy: well under a millisecond for thousands of items, no JVM or Rust build
(Tantivy) and no Python loop over documents per query (``rank-bm25``). Its index saves
to plain ``.npy``/``.json`` files that DVC can track.

Scoring (Lucene's BM25): for query tokens ``q`` and item ``d``,

    score(d) = sum_{t in q} idf(t) * tf(t, d) (k1 + 1) / (tf(t, d) + k1 (1 - b + b |d| / avgdl)),
    idf(t) = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5)).

The title is written ``title_weight`` times into the item's text: the title is what a
shopper's words are most likely to match, the description is generic prose.
Tokens come from :func:`shoprec.search.normalize.tokens`, on both sides. Extra tokens
with weights ``w_t`` (query expansion, :mod:`shoprec.search.expansion`) add
``sum_t w_t BM25(t, d)``: BM25 is a sum over query tokens, so a weight scales one term.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import bm25s
import numpy as np
import pandas as pd

from shoprec.search.normalize import tokens

FIELDS = ("title", "category", "brand", "description")


def item_tokens(items: pd.DataFrame, title_weight: int = 2) -> list[list[str]]:
    """Index tokens per item: the title ``title_weight`` times, then category, brand and description."""
    fields = items[list(FIELDS)].astype(object)
    fields = fields.where(fields.notna(), "")
    return [tokens(" ".join([title] * title_weight + [cat, brand, desc]))
            for title, cat, brand, desc in fields.itertuples(index=False, name=None)]


@dataclass
class LexicalIndex:
    bm25: bm25s.BM25
    n_items: int

    @classmethod
    def build(cls, items: pd.DataFrame, title_weight: int = 2, k1: float = 1.5, b: float = 0.75) -> "LexicalIndex":
        bm25 = bm25s.BM25(k1=k1, b=b)
        bm25.index(item_tokens(items, title_weight), show_progress=False)
        return cls(bm25, len(items))

    def scores(self, query_tokens: list[str], extra: Mapping[str, float] | None = None) -> np.ndarray:
        """BM25 score of every item (row order of the catalog), plus ``w x BM25(t)`` per extra token; 0: no match."""
        known = [t for t in query_tokens if t in self.bm25.vocab_dict]
        out = np.asarray(self.bm25.get_scores(known), np.float32) if known else np.zeros(self.n_items, np.float32)
        for token, weight in (extra or {}).items():
            if token in self.bm25.vocab_dict:
                out += np.float32(weight) * np.asarray(self.bm25.get_scores([token]), np.float32)
        return out

    def save(self, path: Path) -> Path:
        self.bm25.save(str(path), show_progress=False)
        return path

    @classmethod
    def load(cls, path: Path, n_items: int) -> "LexicalIndex":
        return cls(bm25s.BM25.load(str(path), show_progress=False), n_items)


def token_counts(items: pd.DataFrame) -> Counter:
    """Document frequency of each index token: the speller's catalog vocabulary."""
    return Counter(t for doc in item_tokens(items, title_weight=1) for t in set(doc))

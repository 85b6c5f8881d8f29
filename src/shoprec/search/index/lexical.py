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
Tokens come from :func:`shoprec.search.query.normalize.tokens`, on both sides. Extra tokens
with weights ``w_t`` (translations and guesses, :mod:`shoprec.search.query.terms`) add
``sum_t w_t BM25(t, d)``: BM25 is a sum over query tokens, so a weight scales one term.

Scoring reads the index's token rows directly (bm25s keeps them as a CSC matrix: per
token, the sorted ids of the items that have it and their BM25 weights), so a query
costs its tokens' posting lists plus one zeroed array, not a pass over the catalog per
token; the same sorted lists answer "which of these items contain the token?" by binary
search (:meth:`LexicalIndex.contains`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import bm25s
import numpy as np
import pandas as pd

from shoprec.search.query.normalize import tokens

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
        docs = item_tokens(items, title_weight)
        # bm25s numbers tokens in set order, which changes with Python's string hashing from run to run;
        # a sorted vocabulary gives the same index bytes for the same catalog.
        vocab = {token: i for i, token in enumerate(sorted({t for doc in docs for t in doc}))}
        bm25 = bm25s.BM25(k1=k1, b=b)
        bm25.index(([[vocab[t] for t in doc] for doc in docs], vocab), show_progress=False)
        return cls(bm25, len(items))

    def _postings(self, token: str) -> tuple[np.ndarray, np.ndarray]:
        """Sorted item rows that contain ``token`` and their BM25 weights (empty for an unknown token)."""
        tid, m = self.bm25.vocab_dict.get(token), self.bm25.scores
        if tid is None or tid + 1 >= len(m["indptr"]):  # bm25s lists "" in its vocabulary without a column
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        start, end = m["indptr"][tid], m["indptr"][tid + 1]
        return m["indices"][start:end], m["data"][start:end]

    def knows(self, token: str) -> bool:
        return len(self._postings(token)[0]) > 0

    def scores(self, query_tokens: list[str], extra: Mapping[str, float] | None = None) -> np.ndarray:
        """BM25 score of every item (row order of the catalog), plus ``w x BM25(t)`` per extra token; 0: no match.

        A token typed twice counts twice, as in BM25's sum over the query's tokens.
        """
        weights = Counter(query_tokens)
        for token, weight in (extra or {}).items():
            weights[token] += weight
        out = np.zeros(self.n_items, np.float32)
        for token, weight in weights.items():
            rows, bm25 = self._postings(token)
            out[rows] += np.float32(weight) * bm25
        return out

    def contains(self, token: str, rows: np.ndarray) -> np.ndarray:
        """Which of the item ``rows`` have ``token`` in their index text."""
        return in_posting(self._postings(token)[0], rows)

    def save(self, path: Path) -> Path:
        self.bm25.save(str(path), show_progress=False)
        return path

    @classmethod
    def load(cls, path: Path, n_items: int) -> "LexicalIndex":
        return cls(bm25s.BM25.load(str(path), show_progress=False), n_items)


def in_posting(posting: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Which of ``rows`` are in the sorted ``posting`` list (binary search)."""
    if not len(posting):
        return np.zeros(len(rows), bool)
    return posting[np.minimum(np.searchsorted(posting, rows), len(posting) - 1)] == rows


def token_counts(items: pd.DataFrame) -> Counter:
    """Document frequency of each index token: the speller's catalog vocabulary."""
    return Counter(t for doc in item_tokens(items, title_weight=1) for t in set(doc))

"""What the titles say: which items' titles carry a word, and which title words define a product.

The BM25 index answers "does the item's text have the word?" for title, category, brand
and description together. The hybrid's order also asks what the *title* says: a word
found only in the description or the category ("candle" in a reed diffuser's "Candles"
category) is weaker evidence that the item is what the query names than a word in its
title (:mod:`shoprec.search.query.terms`).

:class:`TitleIndex`: per title token, the sorted rows of the items whose title has it
(a CSR posting list), so "which of these items' titles have ``t``?" is a binary search.

:class:`DefiningWords`: the title words that say what a product *is*, learned from the
click logs. A shopper who wants a travel mug types "travel mug"; one who wants a grey
mug types "mug" or "grey mug". Over the logged searches after which the item chosen
first has title word ``t``,

    m(t) = |{(q, i): t in title(i), t in q}| / (|{(q, i): t in title(i)}| + 2),

the share whose query named ``t`` (as the engine reads it: price phrase cut, folded,
spelling corrected; the +2 keeps a word seen a few times from counting). Every search
counts (the share is a probability over searches), but a word needs ``min_items``
distinct chosen items, so no single bestseller makes its words defining; brand words are
left out, as a brand is not a product type however loyal its shoppers. (Counting distinct
``(query, item)`` pairs instead lowers the product types' shares, "travel" to below 0.6,
and scored 0.874 against 0.876 on the labels.) On the default sample the
product type is named most of the time (mug 0.67, lamp 0.83, travel 0.64, pillow 0.86:
the rest are shoppers' synonyms), colour and material as often as shoppers bother
(colours 0.4-0.5, materials 0.2-0.3), adjectives ("Classic") never; a few words sit near the line (plush 0.58,
planter 0.57). A word with ``m(t) >= min_share`` is a *defining* word. An item whose title
has a defining word that the query does not name is probably another product: "mug"
should not rank a travel mug among mugs, nor "lamp" a desk lamp among lamps
(:meth:`shoprec.search.query.terms.QueryTerms.unnamed`). A catalog without logged queries has none.

Learning from the logs of a ranker that uses the result is a loop: once "phone" ranks
items with a defining "apple" lower, shoppers reach them mostly by typing "apple", and
its share rises. The penalty is mild for that reason (less than one word of coverage,
:mod:`shoprec.search.engine` step 5), and the share is measured on first choices, which
the penalty only reorders within the list.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np
import pandas as pd

from shoprec.search.index.lexical import in_posting
from shoprec.search.query.normalize import tokens


def title_tokens(titles: Iterable) -> list[list[str]]:
    """Each title's index tokens (a missing title has none)."""
    return [tokens(t) if isinstance(t, str) else [] for t in titles]


@dataclass
class TitleIndex:
    vocabulary: dict[str, int]  # title token -> its posting list's number
    indptr: np.ndarray  # posting list j is rows[indptr[j]:indptr[j + 1]]
    rows: np.ndarray  # item rows, sorted within each list
    n_items: int  # the catalog's size when built (checked on load)

    @classmethod
    def build(cls, titles: Sequence[Sequence[str]]) -> "TitleIndex":
        """``titles``: each item's title tokens, in catalog row order.

        Vectorised (one sort of ``word code x n + row`` keys): a million titles in seconds.
        """
        n = len(titles)
        lengths = np.fromiter(map(len, titles), np.int64, n)
        codes, vocabulary = pd.factorize(pd.Series(list(chain.from_iterable(titles)), dtype=object), sort=True)
        keys = np.unique(codes.astype(np.int64) * n + np.repeat(np.arange(n, dtype=np.int64), lengths))
        word, rows = np.divmod(keys, max(n, 1))
        indptr = np.concatenate([[0], np.cumsum(np.bincount(word, minlength=len(vocabulary)))]).astype(np.int64)
        return cls({str(t): j for j, t in enumerate(vocabulary)}, indptr, rows.astype(np.int32), n)

    def rows_of(self, token: str) -> np.ndarray:
        """Sorted rows of the items whose title has ``token`` (empty for a word no title has)."""
        j = self.vocabulary.get(token)
        return self.rows[self.indptr[j]:self.indptr[j + 1]] if j is not None else self.rows[:0]

    def contains(self, token: str, rows: np.ndarray) -> np.ndarray:
        """Which of the item ``rows`` have ``token`` in their title."""
        return in_posting(self.rows_of(token), rows)

    def save(self, path: Path) -> Path:
        np.savez(path, tokens=np.array(list(self.vocabulary), dtype=str), indptr=self.indptr, rows=self.rows,
                 n_items=self.n_items)
        return path

    @classmethod
    def load(cls, path: Path, n_items: int) -> "TitleIndex":
        """The saved index, checked to be of a catalog of ``n_items`` items."""
        with np.load(path, allow_pickle=False) as f:
            if "n_items" not in f.files:
                raise ValueError(f"{path} was built before title indexes recorded their catalog's size; "
                                 "re-run build_lexical_index (dvc repro), then `shoprec package` and promote")
            index = cls({str(t): j for j, t in enumerate(f["tokens"])}, f["indptr"], f["rows"], int(f["n_items"]))
        if index.n_items != n_items:
            raise ValueError(f"{path} indexes {index.n_items} titles, the catalog has {n_items} items; "
                             "re-run build_lexical_index")
        return index


@dataclass
class DefiningWords:
    shares: dict[str, float]  # defining title word -> m(t) (module docstring)

    @classmethod
    def learn(cls, chosen: Iterable[tuple[str, int]], titles: Sequence[Sequence[str]], brands: Sequence[Sequence[str]],
              analyse: Callable[[str], list[str]], min_share: float, min_items: int) -> "DefiningWords":
        """From ``(query, catalog row)`` pairs of items chosen first (module docstring).

        ``titles`` and ``brands``: each item's title and brand tokens; ``analyse``: a logged
        query -> the words the engine reads in it.
        """
        named, seen = Counter(), Counter()
        items: dict[str, set[int]] = defaultdict(set)
        for query, row in chosen:
            words = set(titles[row]) - set(brands[row])
            seen.update(words)
            named.update(words & set(analyse(query)))
            for t in words:
                items[t].add(row)
        return cls({t: round(named[t] / (n + 2), 4) for t, n in sorted(seen.items())
                    if named[t] / (n + 2) >= min_share and len(items[t]) >= min_items})

    def per_item(self, titles: TitleIndex) -> np.ndarray:
        """How many defining words each item's title has."""
        counts = np.zeros(titles.n_items, np.int16)
        for t in self.shares:
            counts[titles.rows_of(t)] += 1
        return counts

    def save(self, path: Path) -> Path:
        path.write_text(json.dumps(self.shares, sort_keys=True))
        return path

    @classmethod
    def load(cls, path: Path) -> "DefiningWords":
        return cls(json.loads(path.read_text()))

"""What the titles say: which items' titles carry a word, and which title words define a product.

The BM25 index answers "does the item's text have the word?" for title, category, brand
and description together. The hybrid's order also asks what the *title* says: a word
found only in the description or the category ("candle" in a reed diffuser's "Candles"
category) is weaker evidence that the item is what the query names than a word in its
title (:mod:`shoprec.search.terms`).

:class:`TitleIndex`: per title token, the sorted rows of the items whose title has it
(a CSR posting list), so "which of these items' titles have ``t``?" is a binary search.

:class:`DefiningWords`: the title words that say what a product *is*, learned from the
click logs. A shopper who wants a travel mug types "travel mug"; one who wants a grey
mug types "mug" or "grey mug". Over the logged searches after which the item chosen
first has title word ``t``,

    m(t) = |{(q, i): t in title(i), t in q}| / (|{(q, i): t in title(i)}| + 2),

the share whose query named ``t`` (as the engine reads it: price phrase cut, folded,
spelling corrected; the +2 keeps a word seen a few times from counting). The logs split
title words in two: the product type is named most of the time (mug, lamp, travel,
tealight: 0.6-1, the rest are shoppers' synonyms), colour, material and brand as often as
shoppers bother (0.1-0.5 on the default sample), adjectives ("Classic") never. A word
with ``m(t) >= min_share`` is a *defining* word. An item whose title has a defining word
that the query does not name is probably another product: "mug" should not rank a
travel mug among mugs, nor "lamp" a desk lamp among lamps (:meth:`QueryTerms.unnamed`).
A catalog without logged queries has none.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shoprec.search.lexical import in_posting


@dataclass
class TitleIndex:
    vocabulary: dict[str, int]  # title token -> its posting list's number
    indptr: np.ndarray  # posting list j is rows[indptr[j]:indptr[j + 1]]
    rows: np.ndarray  # item rows, sorted within each list

    @classmethod
    def build(cls, titles: Sequence[Sequence[str]]) -> "TitleIndex":
        """``titles``: each item's title tokens, in catalog row order."""
        pairs = sorted({(t, r) for r, title in enumerate(titles) for t in title})
        vocabulary = {t: j for j, t in enumerate(dict.fromkeys(t for t, _ in pairs))}
        counts = np.bincount([vocabulary[t] for t, _ in pairs], minlength=len(vocabulary))
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return cls(vocabulary, indptr, np.fromiter((r for _, r in pairs), np.int32, len(pairs)))

    def rows_of(self, token: str) -> np.ndarray:
        """Sorted rows of the items whose title has ``token`` (empty for a word no title has)."""
        j = self.vocabulary.get(token)
        return self.rows[self.indptr[j]:self.indptr[j + 1]] if j is not None else self.rows[:0]

    def contains(self, token: str, rows: np.ndarray) -> np.ndarray:
        """Which of the item ``rows`` have ``token`` in their title."""
        return in_posting(self.rows_of(token), rows)

    def save(self, path: Path) -> Path:
        np.savez(path, tokens=np.array(list(self.vocabulary), dtype=str), indptr=self.indptr, rows=self.rows)
        return path

    @classmethod
    def load(cls, path: Path) -> "TitleIndex":
        with np.load(path, allow_pickle=False) as f:
            return cls({str(t): j for j, t in enumerate(f["tokens"])}, f["indptr"], f["rows"])


@dataclass
class DefiningWords:
    shares: dict[str, float]  # defining title word -> m(t) (module docstring)

    @classmethod
    def learn(cls, chosen: Iterable[tuple[str, int]], titles: Sequence[Sequence[str]],
              analyse: Callable[[str], list[str]], min_share: float) -> "DefiningWords":
        """From ``(query, catalog row)`` pairs of items chosen first; ``analyse``: query -> the words the engine reads."""
        named, seen = Counter(), Counter()
        words: dict[str, set[str]] = {}
        for query, row in chosen:
            if query not in words:
                words[query] = set(analyse(query))
            title = set(titles[row])
            seen.update(title)
            named.update(title & words[query])
        shares = {t: round(named[t] / (n + 2), 4) for t, n in sorted(seen.items())}
        return cls({t: m for t, m in shares.items() if m >= min_share})

    def per_item(self, titles: TitleIndex, n_items: int) -> np.ndarray:
        """How many defining words each item's title has."""
        counts = np.zeros(n_items, np.int16)
        for t in self.shares:
            counts[titles.rows_of(t)] += 1
        return counts

    def save(self, path: Path) -> Path:
        path.write_text(json.dumps(self.shares, sort_keys=True))
        return path

    @classmethod
    def load(cls, path: Path) -> "DefiningWords":
        return cls(json.loads(path.read_text()))

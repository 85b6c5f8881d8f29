"""What each query word may stand for in the catalog, and how much of a query an item covers.

A query word, typed ``w`` and spelling-corrected to ``w'``, may stand for several catalog
tokens ``t``, its *alternatives* ``A(w)``, each with a credit in (0, 1]:

* ``w'`` itself, credit 1, when the index has it;
* the other words the typed ``w`` may have been meant as, its *guesses* ``G(w)``: every
  longer catalog word it begins with ("gran" -> granite, granola; "tea" -> teal,
  tealight), as shoppers stop before autocomplete, or else, when ``w`` is no known word
  and begins none, every catalog word one edit away ("bas" -> bag, bar; "nay" -> navy)
  (the speller's own order of rules), except ``w'``:

      credit(c) = lambda f(c) / (f(w) + sum_{c' in G(w)} f(c')),

  the guess's share of their catalog frequency ``f`` (``w`` itself counted when the
  catalog has it), ``lambda`` = ``search.guess_weight`` <= 1. The speller keeps one
  reading for the text (``w'``, credit 1); the guesses let the other words of the query
  choose ("lumen honey gran" is read "lumen honey granite", and the honey granola by
  Lumen is the item that covers all three words);
* the translations of the query units holding ``w'``, learned from the click logs
  (:meth:`shoprec.search.query.expansion.QueryExpansion.by_word`), credit ``P(t | u)``.

The hybrid's BM25 leg searches every alternative other than the words themselves as an
extra token weighted by its credit (:meth:`QueryTerms.extra_weights`). After fusion, an
item's *coverage* is the mean over the query's words of the best credit among the
alternatives its text contains, in full when its title has them and ``rho`` (``search.body_credit``)
of it when only the description, category or brand does,

    cov(i) = 1/|q| sum_{w in q} max_{t in A(w), t in d_i} credit(t) (1 if t in title(i) else rho)   (0: none),

so "red ceramic mug" covers a blue ceramic mug 2/3, "lumen candle" a Lumen reed diffuser
(category "Candles") 1/2 + rho/2, "jumper" covers a sweater by
P(sweater | jumper), and "gran" (read as granite) covers granite 1 and granola by its
share of the other completions' frequency (1 where granola is the only one). Coverage is
the shop's "match every word" rule made soft: rank fusion alone lets an item that matches the rare
words strongly (BM25's idf) or reads similarly (the cosine) outrank one that matches
all of them.

Coverage looks from the query to the item; :meth:`QueryTerms.unnamed` looks back: the
number of the item's *defining* title words (:class:`shoprec.search.index.titles.DefiningWords`,
what shoppers type to ask for that product) that the query does not name,

    u(i) = [N(q) != {}] |{t in D : t in title(i), t not in N(q)}|,    N(q) = {t in D : c(t) >= 1/2},

``c(t)`` the best credit of ``t`` among the alternatives ``A(q)`` (0: not among them): a
word is *named* when the query types it, translates to it with P >= 1/2, or guesses it
with at least half of the typed word's other readings' frequency (a sole guess has 1).
So "mug" covers a grey mug and a travel mug alike, but
leaves the travel mug's "travel" unnamed (u = 1); "jumper" names sweaters (P = 0.8), not
the scarves its weak translation (0.2) lets it cover a little. A query that names no
defining word at all ("ember", "red", "under 20") says nothing about which product it
means: u = 0 for every item. (Counting ``1 - c(t)`` instead scored 0.875 against 0.876 on
the default sample's labels: a translation's credit is already in the coverage.)
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from shoprec.search.index.lexical import LexicalIndex
from shoprec.search.index.titles import TitleIndex
from shoprec.search.query.expansion import QueryExpansion, merged
from shoprec.search.query.spelling import Speller

NAMED_CREDIT = 0.5  # an alternative this sure names its word (``unnamed``)


@dataclass
class QueryTerms:
    words: list[str]  # the query's words after spelling correction
    alternatives: list[dict[str, float]]  # per word: catalog token -> credit (module docstring)
    guesses: dict[str, dict[str, float]]  # typed word -> its guesses' credits (``parsed["guesses"]``)
    translations: dict[str, float]  # catalog token -> max P(t | u) over the query's units (``parsed["expansion"]``)

    @classmethod
    def of(cls, typed: Sequence[str], words: Sequence[str], lexical: LexicalIndex, speller: Speller,
           expansion: QueryExpansion | None, guess_weight: float) -> "QueryTerms":
        """Alternatives of each word; ``typed[j]`` is ``words[j]`` before correction."""
        translations = expansion.by_word(words) if expansion is not None else [{} for _ in words]
        alternatives, guesses = [], {}
        for w, corrected, translated in zip(typed, words, translations):
            alt = dict(translated)
            meant = [c for c in speller.readings(w) if c != corrected and lexical.knows(c)]
            total = sum(speller.frequency[c] for c in meant) + (speller.frequency.get(w, 0) if lexical.knows(w) else 0)
            shares = {c: round(guess_weight * speller.frequency[c] / total, 4) for c in meant}
            for c, credit in shares.items():
                alt[c] = max(alt.get(c, 0.0), credit)
            if shares:
                guesses[w] = shares
            if lexical.knows(corrected):
                alt[corrected] = 1.0
            alternatives.append(alt)
        return cls(list(words), alternatives, guesses, merged(translations))

    def extra_weights(self) -> dict[str, float]:
        """Alternatives other than the query's own words, each at its best credit: extra BM25 tokens."""
        own = set(self.words)
        return {t: credit for t, credit in merged(self.alternatives).items() if t not in own}

    def coverage(self, rows: np.ndarray, lexical: LexicalIndex, titles: TitleIndex, body_credit: float) -> np.ndarray:
        """``cov(i)`` of the module docstring for the item ``rows``; ``body_credit`` = ``rho``."""
        total = np.zeros(len(rows))
        for alt in self.alternatives:
            best = np.zeros(len(rows))
            for t, credit in alt.items():
                found = np.where(titles.contains(t, rows), 1.0, body_credit * lexical.contains(t, rows))
                best = np.maximum(best, credit * found)
            total += best
        return total / max(len(self.alternatives), 1)

    def unnamed(self, rows: np.ndarray, titles: TitleIndex, defining: Collection[str],
                defining_per_item: np.ndarray) -> np.ndarray:
        """``u(i)`` of the module docstring for the item ``rows``; ``defining_per_item``: defining title words per item."""
        credit = merged(self.alternatives) | {w: 1.0 for w in self.words}
        named = [t for t, c in credit.items() if t in defining and c >= NAMED_CREDIT]
        if not named:
            return np.zeros(len(rows))
        u = defining_per_item[rows].astype(np.float64)
        for t in named:
            u -= titles.contains(t, rows)
        return u

"""Spelling tolerance: each unknown query word is completed or corrected to a catalog word.

Known words are the catalog's index tokens, plus words of the logged queries that are
frequent in their own right (synonyms shoppers use, like "trainers", are not typos).
A logged word counts as known when it occurs at least ``min_query_count`` times and at
least ``ratio`` times as often as its most frequent catalog neighbour (a typo is a rare
variant of a common word, a synonym is common itself), or when the shoppers who typed it
chose items that mostly do not carry that neighbour: under ``typo_share`` of the titles
chosen first after it (at least 3) have it. "tee" is one edit from "the", "band" from
"and", "powder" from "power", and no count tells a rare word from a typo; what shoppers
chose after typing it does (T-shirts, rings, face powder). A logged word that begins a
catalog word is not one ("slipp", "pho" are slippers and phone cut short, however often
shoppers stop there): completion reads it.

For an unknown word ``w`` (length >= ``min_length``):

1. completion: the most frequent known word that starts with ``w`` ("cera" -> "ceramic"),
   since shoppers stop typing before autocomplete (:meth:`Speller.completions` lists them
   all, for the hybrid's alternatives, :mod:`shoprec.search.query.terms`);
2. otherwise correction at Damerau distance 1 (one character dropped, added, replaced,
   or two neighbours swapped) by *symmetric deletes* (Garbe's SymSpell): every known
   word is indexed under each of its one-character deletions, so the neighbours of ``w``
   are the words ``d`` with ``w in del(d)``, ``d in del(w)`` or ``del(w) & del(d) != {}``,
   found with dictionary lookups instead of a scan, then checked to be one edit away
   (two words can share a deletion at different positions); the most frequent wins.

Words shorter than ``min_length`` and numbers are left alone (three letters have too
many neighbours to guess from).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


def deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))}


def one_edit_apart(a: str, b: str) -> bool:
    """Damerau distance exactly 1: one character dropped, added or replaced, or two neighbours swapped."""
    if len(a) < len(b):
        a, b = b, a
    if len(a) - len(b) > 1 or a == b:
        return False
    i = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), len(b))
    if len(a) != len(b):
        return a[i + 1:] == b[i:]
    return a[i + 1:] == b[i + 1:] or (a[i + 2:] == b[i + 2:] and a[i:i + 2] == b[i:i + 2][::-1])


@dataclass
class Speller:
    frequency: dict[str, int]  # known word -> count (catalog document frequency + log count)
    by_delete: dict[str, list[str]]
    by_prefix: dict[str, list[str]]  # prefix (3+ letters) -> the longer known words with it, most frequent first
    min_length: int = 4

    @classmethod
    def build(cls, catalog_counts: Mapping[str, int], query_counts: Mapping[str, int] | None = None,
              min_length: int = 4, min_query_count: int = 5, ratio: float = 0.2,
              chosen_titles: Mapping[str, list[set[str]]] | None = None, typo_share: float = 0.35) -> "Speller":
        """``chosen_titles``: per logged word, the title tokens of the items chosen first after it."""
        frequency = Counter({w: c for w, c in catalog_counts.items() if c > 0})
        catalog_only = cls.from_frequency(frequency, min_length)
        for word, count in (query_counts or {}).items():
            if word in frequency or count < min_query_count or catalog_only.completions(word):
                continue
            neighbour = catalog_only._neighbour(word)
            titles = (chosen_titles or {}).get(word, [])
            chose_other = len(titles) >= 3 and sum(neighbour in t for t in titles) < typo_share * len(titles)
            common = neighbour is None or count >= ratio * (query_counts.get(neighbour, 0) + frequency[neighbour])
            if common or chose_other:
                frequency[word] += count
        return cls.from_frequency(frequency, min_length)

    @classmethod
    def from_frequency(cls, frequency: Mapping[str, int], min_length: int) -> "Speller":
        by_delete: dict[str, list[str]] = defaultdict(list)
        by_prefix: dict[str, list[str]] = defaultdict(list)
        for word in sorted(frequency, key=lambda w: (-frequency[w], w)):  # most frequent first
            if word.isdigit():
                continue
            for d in deletes(word):
                by_delete[d].append(word)
            for end in range(3, len(word)):
                by_prefix[word[:end]].append(word)
        return cls(dict(frequency), dict(by_delete), dict(by_prefix), min_length)

    def neighbours(self, word: str) -> list[str]:
        """Known words at Damerau distance 1 from ``word``, most frequent first.

        A shared deletion is only a candidate: "geen" and "even" share "een" but are two
        edits apart, so every candidate is checked (:func:`one_edit_apart`) and "geen"
        gets "green", not the more frequent "even".
        """
        found = set(self.by_delete.get(word, ())) | {d for d in deletes(word) if d in self.frequency}
        for d in deletes(word):
            found.update(self.by_delete.get(d, ()))
        return sorted((w for w in found if one_edit_apart(word, w)), key=lambda w: (self.frequency[w], w), reverse=True)

    def _neighbour(self, word: str) -> str | None:
        """The most frequent of :meth:`neighbours`, if any."""
        return next(iter(self.neighbours(word)), None)

    def completions(self, word: str) -> list[str]:
        """Longer known words that begin with ``word``, most frequent first ("gran" -> granite, granola)."""
        return self.by_prefix.get(word, [])

    def readings(self, word: str) -> list[str]:
        """Known words ``word`` may have been typed for, most frequent first: its completions, or,
        when it is no known word and begins none, its one-edit neighbours (3+ letters, not numbers)."""
        if len(word) < 3 or word.isdigit():
            return []
        return self.completions(word) or ([] if word in self.frequency else self.neighbours(word))

    def correct(self, word: str) -> str:
        """``word`` itself when known, short or numeric; else its completion or correction."""
        if word in self.frequency or len(word) < 3 or word.isdigit():
            return word
        completions = self.completions(word)
        if completions:
            return completions[0]
        if len(word) < self.min_length:
            return word
        return self._neighbour(word) or word

    def correct_all(self, query_words: Iterable[str]) -> tuple[list[str], dict[str, str]]:
        """Corrected words and the changes made (``{typed: corrected}``)."""
        out, changes = [], {}
        for w in query_words:
            c = self.correct(w)
            out.append(c)
            if c != w:
                changes[w] = c
        return out, changes

"""Query expansion: shoppers' words translated into the catalog's words, learned from the click logs.

A shopper who types "jumper" clicks sweaters; the titles never say "jumper", so BM25
finds nothing. The logs hold the translation: for a query *unit* ``u`` (a word or two
adjacent words, so "tea light" can mean "tealight" while "light" alone means lamps) and
the set ``I(u)`` of distinct items shoppers chose first (clicked, carted or bought) after
a query containing it (:func:`shoprec.search.pairs.first_choices`: later choices in the
session wander to other nouns and brands),

    P(t | u) = |{i in I(u): t in title(i)}| / |I(u)|,
    P(t)     = |{i in I: t in title(i)}| / |I|          (I: every item chosen first after a search),

the share of ``u``'s chosen items whose title has token ``t``, against its share among
all chosen items. Only units the titles do not say translate: a word no title uses
("jumper") or a word pair no title has side by side ("throw pillow", "portable charger",
"floor cushion"; not "mug" or "ceramic mug"): a query in the catalog's own words is
answered by BM25 already, and sessions that wander from the wanted item would otherwise
lend its words their neighbours' brands and materials. A unit translates to ``t`` when

    P(t | u) >= min_share,  P(t | u) / P(t) >= min_lift,  |I(u)| >= min_items,  t not in u,

i.e. a good part of what the unit leads to carries ``t``, far more often than chance, on
enough distinct items to be a pattern. Counting *distinct* items, not clicks, keeps one
popular product from lending its brand and material to a word. Words that come with a
category (its brands, materials) pass the lift too; the thresholds trade that noise
against coverage of rare synonyms and were set on logged clicks (see ``params.yaml``).
This is the co-occurrence form of a translation model for retrieval (Berger & Lafferty,
1999) mined from click-through (Riezler et al., 2007); no synonym list is written by hand.

At query time each translation ``t`` of a unit in the query gets the weight
``w_t = max_u P(t | u)`` and the expanded BM25 score is

    s(d) = BM25(q, d) + beta sum_t w_t BM25(t, d),

(``beta`` = ``search.expansion_weight``) so a translated word counts as a typed one scaled
by how sure the logs are. Only the hybrid's lexical leg expands; ``lexical`` mode stays plain
BM25 as the baseline. A catalog without logged queries (Online Retail) has no translations.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path


def _pairs(words: Sequence[str]) -> list[str]:
    return [f"{a} {b}" for a, b in zip(words, words[1:])]


def units(words: Sequence[str]) -> list[str]:
    """The query's words and its adjacent word pairs ("tea light" -> tea, light, "tea light")."""
    return list(words) + _pairs(words)


def merged(per_word: Sequence[dict[str, float]]) -> dict[str, float]:
    """One ``{t: weight}`` from per-word translations, each token at its largest weight."""
    out: dict[str, float] = {}
    for found in per_word:
        for t, p in found.items():
            out[t] = max(out.get(t, 0.0), p)
    return out


@dataclass
class QueryExpansion:
    translations: dict[str, dict[str, float]]  # query unit -> {title token: P(t | u)}

    @classmethod
    def learn(cls, chosen: Iterable[tuple[str, int]], titles: Sequence[Sequence[str]],
              analyse: Callable[[str], list[str]], min_share: float = 0.2, min_lift: float = 3.0,
              min_items: int = 3) -> "QueryExpansion":
        """Translations from ``(query, catalog index)`` pairs of chosen items (see module docstring).

        ``titles`` are the items' title tokens in order; ``analyse`` turns a logged query
        into the words the engine would search for (price phrase cut, folded, spelling
        corrected), so logs and queries agree.
        """
        token_sets = [set(t) for t in titles]
        said = set().union(*token_sets) | {p for t in titles for p in _pairs(t)}  # words and adjacent pairs
        analysed: dict[str, list[str]] = {}
        seen: set[tuple[str, int]] = set()
        items: set[int] = set()
        for query, item in chosen:
            if query not in analysed:
                analysed[query] = [u for u in units(analyse(query)) if u not in said]
            seen.update((u, item) for u in analysed[query])
            items.add(item)
        base = Counter(t for i in items for t in token_sets[i])
        n_unit: Counter = Counter()
        with_token: dict[str, Counter] = defaultdict(Counter)
        for u, i in seen:
            n_unit[u] += 1
            with_token[u].update(token_sets[i])
        translations: dict[str, dict[str, float]] = {}
        for u, n in sorted(n_unit.items()):
            if n < min_items:
                continue
            own = set(u.split())
            kept = {t: round(c / n, 4) for t, c in sorted(with_token[u].items())
                    if t not in own and c / n >= min_share and (c / n) / (base[t] / len(items)) >= min_lift}
            if kept:
                translations[u] = kept
        return cls(translations)

    def by_word(self, words: Sequence[str]) -> list[dict[str, float]]:
        """Per query word: the translations of the units that contain it, ``{t: max_u P(t | u)}``; none already typed."""
        typed, pairs = set(words), _pairs(words)
        out: list[dict[str, float]] = []
        for j, word in enumerate(words):
            found: dict[str, float] = {}
            for u in [word] + pairs[max(j - 1, 0):j + 1]:  # the word, the pair ending and the pair starting with it
                for t, p in self.translations.get(u, {}).items():
                    if t not in typed and p > found.get(t, 0.0):
                        found[t] = p
            out.append(found)
        return out

    def save(self, path: Path) -> Path:
        path.write_text(json.dumps(self.translations, sort_keys=True))
        return path

    @classmethod
    def load(cls, path: Path) -> "QueryExpansion":
        return cls(json.loads(path.read_text()))

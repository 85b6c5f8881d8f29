"""Structured constraints in a query: price range and colour; the rest stays free text.

Price: phrases such as "under 20", "below £15", "less than $9.99", "up to 30",
"over 50", "from 10", "between 5 and 10", "5-10", "10 to 20" become ``min_price`` /
``max_price`` and are cut from the text (the words carry no product meaning).

Colour: the colour vocabulary is *learned from the catalog*: the words of a fixed list
of common colour names (:data:`KNOWN_COLOURS`) that appear in at least ``min_items`` titles. A catalog without
colours in its titles (or the words of one without any) gets an empty vocabulary and
no colour filter. Spelling variants ("gray", "dark blue", "cream") map to the catalog's
form when only that form is in the vocabulary. The colour word stays in the free text
too: it still helps rank ("red ceramic mug" is closer to the red one in every leg). A colour
word that names the product is not a colour: in a title, one followed by "by", "for" and
the like ("Face Cream by Tidewell"); in a query, one that ends it ("sun cream"), unless the
query is only a colour ("red", "dark blue").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from shoprec.search.query.normalize import normalise, words

KNOWN_COLOURS: tuple[str, ...] = (
    "red", "blue", "green", "black", "white", "grey", "navy", "pink", "yellow", "orange", "purple", "brown",
    "beige", "teal", "gold", "silver", "ivory", "cream", "turquoise", "lilac", "violet", "magenta", "maroon",
    "khaki", "olive", "copper", "bronze", "aqua", "mint", "coral", "peach",
)
VARIANTS: dict[str, str] = {"gray": "grey", "dark blue": "navy", "cream": "beige"}  # spelling -> the other form

_NUM = r"[£$€]?\s?(\d+(?:\.\d+)?)\s?(?:pounds?|dollars?|euros?|gbp|usd|eur)?"
_PRICE_PATTERNS: tuple[tuple[re.Pattern, str], ...] = (
    (re.compile(rf"\b(?:between|from)\s{_NUM}\s(?:and|to|-)\s{_NUM}"), "range"),
    (re.compile(rf"(?<![\w.]){_NUM}\s?(?:-|to)\s?{_NUM}(?![\w.])"), "range"),
    (re.compile(rf"\b(?:under|below|less than|cheaper than|up to|at most|max|no more than)\s{_NUM}"), "max"),
    (re.compile(rf"\b(?:over|above|more than|at least|min|from)\s{_NUM}"), "min"),
)


@dataclass
class PriceRange:
    min_price: float | None = None
    max_price: float | None = None


def extract_price(text: str) -> tuple[PriceRange, str]:
    """The price constraint of normalised ``text`` and the text without its phrase."""
    price = PriceRange()
    for pattern, kind in _PRICE_PATTERNS:
        match = pattern.search(text)
        if not match:
            continue
        values = [float(v) for v in match.groups()]
        if kind == "range":
            price.min_price, price.max_price = min(values), max(values)
        elif kind == "max":
            price.max_price = values[0]
        else:
            price.min_price = values[0]
        text = (text[: match.start()] + " " + text[match.end():])
        if kind == "range":
            break
    return price, " ".join(text.split())


@dataclass
class ColourVocabulary:
    """Colours found in the catalog's titles and, per colour, which items carry it."""

    colours: tuple[str, ...]
    item_mask: dict[str, np.ndarray] = field(repr=False)

    @classmethod
    def learn(cls, titles: Iterable[str], min_items: int = 3) -> "ColourVocabulary":
        title_colours = [{w for i, w in enumerate(ws) if not _names_the_product(ws, i + 1)} for ws in map(words, titles)]
        masks = {c: np.fromiter((c in w for w in title_colours), bool, len(title_colours)) for c in KNOWN_COLOURS}
        masks = {c: m for c, m in masks.items() if m.sum() >= min_items}
        return cls(tuple(masks), masks)

    def find(self, query_words: list[str]) -> str | None:
        """The first colour named in ``query_words`` (two-word variants like "dark blue" included)."""
        for i, w in enumerate(query_words):
            for candidate, end in ((" ".join(query_words[i:i + 2]), i + 2), (w, i + 1)):
                colour = candidate if candidate in self.item_mask else VARIANTS.get(candidate)
                whole = i == 0 and end >= len(query_words)  # the query is just a colour: "red", "dark blue"
                if colour and colour in self.item_mask and (whole or _modifies(query_words, end)):
                    return colour
        return None


CONNECTORS = frozenset({"by", "for", "with", "and", "in", "of", "from", "to"})


def _modifies(text_words: list[str], end: int) -> bool:
    """Whether the word(s) before ``end`` in a query modify a following word, as a colour does.

    Shoppers put the colour before the product ("red mug"), so a colour word that ends the
    query ("sun cream", "night cream") names the product, not its colour.
    """
    return end < len(text_words) and text_words[end] not in CONNECTORS


def _names_the_product(text_words: list[str], end: int) -> bool:
    """Whether the word(s) before ``end`` in a title are its product noun: followed by a
    connector ("Face Cream by Tidewell", "Cream for Dry Skin"). A title may end in its
    colour ("ALARM CLOCK BAKELIKE RED"), so the last word alone does not say so."""
    return end < len(text_words) and text_words[end] in CONNECTORS


def clean_text(query: str) -> tuple[PriceRange, str]:
    """Normalise ``query`` and take its price phrase out: ``(price, remaining text)``."""
    return extract_price(normalise(query))

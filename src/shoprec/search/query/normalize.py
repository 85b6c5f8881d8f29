"""Text normalisation shared by the index and the query side, so both see the same tokens.

``normalise``: Unicode NFKD with accents dropped, lower case, every run of characters
other than letters, digits, ``.``, ``£``, ``$``, ``€`` and ``-`` turned into one space
(prices like ``£12.50`` and ranges like ``5-10`` survive for the query parser).

``tokens``: words of the normalised text with ``.``/``-`` as separators, each folded by
``fold``, a deliberately tiny plural rule (``candles -> candle``, ``boxes -> box``,
``glasses -> glass``, ``bus`` kept): shoppers type singulars and plurals interchangeably, while a full
stemmer (Porter) also conflates words that differ in meaning (``marker``/``mark``)
and is a further dependency.
"""

from __future__ import annotations

import re
import unicodedata

_NOT_KEPT = re.compile(r"[^a-z0-9.£$€\-]+")
_WORD = re.compile(r"[a-z0-9]+")


def normalise(text: str) -> str:
    """Lower-case, accent-free text with single spaces (see module docstring)."""
    text = unicodedata.normalize("NFKD", str(text))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    return " ".join(_NOT_KEPT.sub(" ", text).split())


def fold(word: str) -> str:
    """Singular form by a minimal plural rule; short words and ``-ss``/``-us``/``-is`` endings are kept."""
    if len(word) <= 3 or word.endswith(("ss", "us", "is")) or not word.endswith("s") or word.isdigit():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "sses")):
        return word[:-2]
    return word[:-1]


def words(text: str) -> list[str]:
    """Alphanumeric words of ``text`` after :func:`normalise`, unfolded."""
    return _WORD.findall(normalise(text))


def tokens(text: str) -> list[str]:
    """Index/query tokens: :func:`words`, each :func:`fold`-ed."""
    return [fold(w) for w in words(text)]

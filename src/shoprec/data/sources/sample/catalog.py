"""The generated catalogue: item attributes as integer codes, then their text.

Every item draws a category (by the category weights), one of its nouns, a variant
(material/flavour/scent), a colour when the category is coloured, a brand from the
category's brand roster and an adjective. The title is composed from exactly those
words ("Red Ceramic Mug by Lumen"), so text carries the same signal the shoppers'
tastes act on.

Price is log-normal per category, shifted by the adjective and the brand's price tier:
``log p = log median + sigma * (z_adj + z_brand + e)``, ``e ~ N(0, 0.6)``; ``price_z``
keeps the standardised level, which is what shoppers' price tastes are compared with.

Popularity is Zipf-like: a random permutation gives each item a rank ``r`` and a
weight ``r ** -ZIPF_S``; shoppers draw candidates in proportion to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shoprec.data.sources.sample import vocab

ZIPF_S = 1.0
BRANDS_PER_CATEGORY = 8
NO_BRAND_SHARE = 0.04
NO_DESCRIPTION_SHARE = 0.05
ADJECTIVE_SHARE = 0.6
MATERIAL_SHARE = 0.85

@dataclass(frozen=True)
class Catalog:
    """Item attributes, one entry per item; ``-1`` means the attribute is absent."""

    category: np.ndarray  # index into vocab.CATEGORIES
    noun: np.ndarray  # index into vocab.NOUNS
    material: np.ndarray  # index into vocab.MATERIALS, -1 if not in the title
    colour: np.ndarray  # index into vocab.COLOURS, -1 for uncoloured
    brand: np.ndarray  # index into vocab.BRANDS, -1 for no brand
    adjective: np.ndarray  # index into vocab.ADJECTIVES, -1 if none
    price: np.ndarray  # float64 > 0
    price_z: np.ndarray  # standardised log-price within the category
    popularity: np.ndarray  # Zipf weight, float64 > 0
    has_description: np.ndarray  # bool

    @property
    def n(self) -> int:
        return len(self.category)

    def by_category(self) -> tuple[np.ndarray, np.ndarray]:
        """Items ordered by category, most popular first, and each category's start offset.

        Popular-first keeps the popularity-weighted binary searches in a small, cached
        head of each category's block.
        """
        order = np.lexsort((-self.popularity, self.category))
        starts = np.searchsorted(self.category[order], np.arange(len(vocab.CATEGORIES) + 1))
        return order, starts


def padded_ids(prefix: str, n: int, digits: int) -> pa.Array:
    """``prefix`` + zero-padded 0..n-1 (``I000123``); wider when ``n`` needs more digits."""
    width = max(digits, len(str(n - 1)))
    return pc.binary_join_element_wise(prefix, pc.utf8_lpad(pa.array(np.arange(n)).cast(pa.string()), width, "0"), "")


def _category_nouns() -> tuple[np.ndarray, np.ndarray]:
    """Per category: offset of its first noun in vocab.NOUNS, and its noun count."""
    counts = np.array([len(c.nouns) for c in vocab.CATEGORIES])
    return np.concatenate([[0], np.cumsum(counts)[:-1]]), counts


def _category_materials() -> np.ndarray:
    """``[category, k]`` -> index of the category's k-th variant in vocab.MATERIALS."""
    index = {m: i for i, m in enumerate(vocab.MATERIALS)}
    return np.array([[index[m] for m in c.materials] for c in vocab.CATEGORIES])


def make_catalog(rng: np.random.Generator, n_items: int) -> Catalog:
    cats = vocab.CATEGORIES
    weights = np.array([c.weight for c in cats])
    category = rng.choice(len(cats), size=n_items, p=weights / weights.sum())

    noun_start, noun_count = _category_nouns()
    noun = noun_start[category] + (rng.random(n_items) * noun_count[category]).astype(np.int64)

    mats = _category_materials()
    material = mats[category, rng.integers(0, mats.shape[1], n_items)]
    material = np.where(rng.random(n_items) < MATERIAL_SHARE, material, -1)

    colour_p = np.linspace(2.0, 0.5, len(vocab.COLOURS))
    colour = rng.choice(len(vocab.COLOURS), size=n_items, p=colour_p / colour_p.sum())
    coloured = np.array([c.coloured for c in cats])[category]
    # Candles are coloured, but a scent-named candle rarely carries a colour too.
    colour = np.where(coloured & ((material < 0) | (rng.random(n_items) < 0.7)), colour, -1)

    n_brands = len(vocab.BRANDS)
    brand_pop = 1.0 / np.arange(1, n_brands + 1) ** 0.6
    roster = np.stack([rng.choice(n_brands, BRANDS_PER_CATEGORY, replace=False, p=brand_pop / brand_pop.sum())
                       for _ in cats])
    slot_p = 1.0 / np.arange(1, BRANDS_PER_CATEGORY + 1) ** 0.8
    brand = roster[category, rng.choice(BRANDS_PER_CATEGORY, size=n_items, p=slot_p / slot_p.sum())]
    brand = np.where(rng.random(n_items) < NO_BRAND_SHARE, -1, brand)
    brand_tier = rng.normal(0.0, 0.4, n_brands)

    adj_names = list(vocab.ADJECTIVES)
    adjective = rng.integers(0, len(adj_names), n_items)
    adjective = np.where(rng.random(n_items) < ADJECTIVE_SHARE, adjective, -1)
    adj_shift = np.append(np.array(list(vocab.ADJECTIVES.values())), 0.0)  # [-1] -> 0

    price_z = adj_shift[adjective] + np.where(brand >= 0, brand_tier[brand], 0.0) + rng.normal(0, 0.6, n_items)
    median = np.array([c.price_median for c in cats])[category]
    sigma = np.array([c.price_sigma for c in cats])[category]
    price = np.round(np.maximum(median * np.exp(sigma * price_z), 0.5) - 0.01, 2)  # shop prices: x.99

    rank = rng.permutation(n_items) + 1
    popularity = rank.astype(np.float64) ** -ZIPF_S
    has_description = rng.random(n_items) >= NO_DESCRIPTION_SHARE
    return Catalog(category, noun, material, colour, brand, adjective, price, price_z, popularity, has_description)


def words(table: tuple[str, ...] | list[str], index: np.ndarray, fmt: str = "{}", title: bool = False) -> pa.Array:
    """``fmt`` applied to ``table[index]`` element-wise; empty string where ``index < 0``."""
    texts = [fmt.format(w.title() if title else w) for w in table]
    return pa.array(texts + [""]).take(np.where(index >= 0, index, len(texts)))


def _join(*parts: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def titles(cat: Catalog) -> pa.Array:
    """``[Adjective ][Colour ][Material ]Noun[ by Brand]``."""
    return _join(
        words(list(vocab.ADJECTIVES), cat.adjective, "{} ", title=True),
        words(vocab.COLOURS, cat.colour, "{} ", title=True),
        words(vocab.MATERIALS, cat.material, "{} ", title=True),
        words(vocab.NOUNS, cat.noun, "{}", title=True),
        words(vocab.BRANDS, cat.brand, " by {}"),
    )


def descriptions(cat: Catalog) -> pa.Array:
    """``[Adjective ]noun[ in material][, colour][, from Brand]. <category blurb>``.

    Empty for a small share of items, as in real feeds.
    """
    first = pc.if_else(
        pa.array(cat.adjective >= 0),
        _join(words(list(vocab.ADJECTIVES), cat.adjective, "{} "), words(vocab.NOUNS, cat.noun, "{}")),
        pa.array([n[0].upper() + n[1:] for n in vocab.NOUNS]).take(cat.noun),
    )
    text = _join(
        first,
        words(vocab.MATERIALS, cat.material, " in {}"),
        words(vocab.COLOURS, cat.colour, ", {}"),
        words(vocab.BRANDS, cat.brand, ", from {}"),
        pa.array([f". {c.blurb}" for c in vocab.CATEGORIES]).take(cat.category),
    )
    return pc.if_else(pa.array(cat.has_description), text, "")

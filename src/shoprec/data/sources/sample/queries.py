"""Search queries composed from a wanted item's attributes, and their graded labels.

A query is described by a *spec*: the wanted item, which of its attributes the shopper
mentions (colour, material, brand; the noun always), the query type and a small random
``variant`` that picks the synonym, price phrase, typo position and so on. Specs are
integer rows, so a whole chunk of search sessions is sampled with numpy and only the
distinct rows are rendered to text.

Query types (also the ``query_id`` prefix in ``query_labels``, e.g. ``typo-00012``):

* ``exact``   title words: ``red ceramic mug``, ``lumen candle``
* ``synonym`` the noun (and some colours) swapped for a shopper's word: ``red cup``
* ``partial`` the longest word cut short, as typed before autocomplete: ``red cera mug``
* ``typo``    one word with a dropped or swapped character: ``red cermaic mug``
* ``price``   noun plus a price cap at or above the item's price: ``mug under 20``
* ``clean``   labels only: the typo query's twin without the typo (same number, same
  wanted item), so typo robustness is the gap between ``typo-N`` and ``clean-N``.

Relevance (0..3) comes from the generator's ground truth: 3 the wanted item; 2 same
noun and every attribute the query names (and within the price cap); 1 same category;
0 another category.

Judgments are *complete* for grades 3, 2 and 1: every item of the wanted item's
category is labelled, so an unlabelled item is truly grade 0 and nDCG's "unlabelled
counts 0" is exact. Sampling them (10 per grade, the earlier generator) scored rankers
by luck: on the default sample 45% of queries have more than 10 grade-2 items, and
62-65% of each system's top-10 slots were true grade-2 or grade-1 items without a
label (27-28% grade 2), all counted as 0.
Grade 0 stays a small random sample of other categories (:data:`N_OTHER`), as
examples; it adds no gain either way.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from shoprec.data.sources.sample import vocab
from shoprec.data.sources.sample.catalog import Catalog

QUERY_TYPES: tuple[str, ...] = ("exact", "synonym", "partial", "typo", "price", "clean")
# Share of each type among search sessions in the event log (no "clean": that is a label twin).
SESSION_TYPE_SHARE: dict[str, float] = {"exact": 0.45, "synonym": 0.2, "partial": 0.1, "typo": 0.12, "price": 0.13}
# Distinct labelled queries per type; typo and clean come in twins.
LABEL_TYPE_COUNT: dict[str, int] = {"exact": 100, "synonym": 100, "partial": 60, "price": 80, "typo": 80, "clean": 80}
N_OTHER = 10  # grade-0 examples per query (items of other categories; fewer if the catalogue lacks them)
N_VARIANTS = 64
# How many variants make a different text, per type: fewer distinct specs, fewer renders.
_VARIANTS_USED = {"exact": 1, "synonym": 16, "partial": 12, "typo": N_VARIANTS, "price": 4, "clean": N_VARIANTS}

# Spec row layout.
KIND, NOUN, COLOUR, MATERIAL, BRAND, CAP, VARIANT = range(7)
_KIND = {name: code for code, name in enumerate(QUERY_TYPES)}


def query_type(query_id: str) -> str:
    """The type a ``query_labels`` id was generated as: ``"typo-00012"`` -> ``"typo"``."""
    return query_id.split("-", 1)[0]


def sample_specs(rng: np.random.Generator, cat: Catalog, wanted: np.ndarray, kinds: np.ndarray) -> np.ndarray:
    """One spec row per wanted item; ``kinds`` are codes into :data:`QUERY_TYPES`.

    A shopper names the colour half the time it exists, the material a third of the
    time, the brand a quarter of the time; a price query also names the cap.
    """
    n = len(wanted)
    spec = np.full((n, 7), -1, dtype=np.int32)
    spec[:, KIND] = kinds
    spec[:, NOUN] = cat.noun[wanted]
    spec[:, COLOUR] = np.where(rng.random(n) < 0.5, cat.colour[wanted], -1)
    spec[:, MATERIAL] = np.where(rng.random(n) < 0.35, cat.material[wanted], -1)
    spec[:, BRAND] = np.where(rng.random(n) < 0.25, cat.brand[wanted], -1)
    caps = np.searchsorted(np.array(vocab.PRICE_CAPS), cat.price[wanted])
    spec[:, CAP] = np.where(kinds == _KIND["price"], np.minimum(caps, len(vocab.PRICE_CAPS) - 1), -1)
    used = np.array([_VARIANTS_USED[k] for k in QUERY_TYPES])[kinds]
    spec[:, VARIANT] = rng.integers(0, N_VARIANTS, n) % used
    return spec


def sample_session_kinds(rng: np.random.Generator, n: int) -> np.ndarray:
    names = list(SESSION_TYPE_SHARE)
    p = np.array(list(SESSION_TYPE_SHARE.values()))
    return np.array([_KIND[k] for k in names])[rng.choice(len(names), size=n, p=p / p.sum())]


def typo(word: str, v: int) -> str:
    """Drop or swap one inner character (the first letter is kept, as people rarely miss it)."""
    pos = 1 + v % (len(word) - 2)
    if v & 1 or word[pos] == word[pos + 1]:
        return word[:pos] + word[pos + 1 :]
    return word[:pos] + word[pos + 1] + word[pos] + word[pos + 2 :]


def render(spec: np.ndarray) -> str:
    """The text a shopper types for one spec row (lower case, single spaces)."""
    kind = QUERY_TYPES[spec[KIND]]
    v = int(spec[VARIANT])
    noun = vocab.NOUNS[spec[NOUN]]
    colour = vocab.COLOURS[spec[COLOUR]] if spec[COLOUR] >= 0 else ""
    if kind == "synonym":
        noun = vocab.SYNONYMS[noun][v % len(vocab.SYNONYMS[noun])]
        colour = vocab.COLOUR_SYNONYMS.get(colour, (colour,))[0] if v & 8 else colour
    words = [
        vocab.BRANDS[spec[BRAND]].lower() if spec[BRAND] >= 0 else "",
        colour,
        vocab.MATERIALS[spec[MATERIAL]] if spec[MATERIAL] >= 0 else "",
        noun,
    ]
    words = " ".join(w for w in words if w).split()
    if kind in ("partial", "typo"):
        eligible = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()] or [
            max(range(len(words)), key=lambda i: len(words[i]))
        ]
        i = eligible[v % len(eligible)]
        if kind == "typo" and len(words[i]) >= 3:
            words[i] = typo(words[i], v // len(eligible))
        elif kind == "partial":
            words[i] = words[i][: max(3, len(words[i]) - 1 - v % 3)]
    if kind == "price":
        words.append(vocab.PRICE_PHRASES[v % len(vocab.PRICE_PHRASES)].format(cap=vocab.PRICE_CAPS[spec[CAP]]))
    return " ".join(words)


def render_all(specs: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Distinct query strings (sorted by spec) and, per row, the index of its string."""
    if len(specs) == 0:
        return [], np.zeros(0, dtype=np.int64)
    # One int64 key per row (mixed radix over the fields) sorts far faster than rows.
    dims = tuple(int(d) for d in specs.max(axis=0) + 2)
    keys, inverse = np.unique(np.ravel_multi_index(tuple((specs + 1).T), dims), return_inverse=True)
    unique = np.stack(np.unravel_index(keys, dims), axis=1) - 1
    return [render(row) for row in unique], inverse.reshape(-1)


def _matches(cat: Catalog, items: np.ndarray, spec: np.ndarray) -> np.ndarray:
    """Items that have the query's noun and every attribute it names (and fit its cap)."""
    ok = cat.noun[items] == spec[NOUN]
    for field, values in ((COLOUR, cat.colour), (MATERIAL, cat.material), (BRAND, cat.brand)):
        if spec[field] >= 0:
            ok &= values[items] == spec[field]
    if spec[CAP] >= 0:
        ok &= cat.price[items] <= vocab.PRICE_CAPS[spec[CAP]]
    return ok


def make_query_labels(rng: np.random.Generator, cat: Catalog, item_ids: pa.Array) -> pd.DataFrame:
    """Graded labels for :data:`LABEL_TYPE_COUNT` queries; ``query_id`` = ``<type>-<nnnnn>``.

    Wanted items are drawn in proportion to sqrt(popularity), so tail items are asked
    for too. Each query lists its wanted item (3), every other item of its category (2
    or 1, see the module docstring) and up to :data:`N_OTHER` items of other categories (0).
    """
    n_twins = LABEL_TYPE_COUNT["typo"]
    singles = [k for k in LABEL_TYPE_COUNT if k not in ("typo", "clean")]
    kinds = np.concatenate([np.full(LABEL_TYPE_COUNT[k], _KIND[k]) for k in singles] + [np.full(n_twins, _KIND["typo"])])
    weight = np.sqrt(cat.popularity)
    wanted = rng.choice(cat.n, size=len(kinds), p=weight / weight.sum())
    specs = sample_specs(rng, cat, wanted, kinds)
    twins = specs[kinds == _KIND["typo"]].copy()
    twins[:, KIND] = _KIND["clean"]
    specs = np.concatenate([specs, twins])
    wanted = np.concatenate([wanted, wanted[kinds == _KIND["typo"]]])

    order, starts = cat.by_category()
    numbers = np.concatenate([np.arange(len(kinds)), np.flatnonzero(kinds == _KIND["typo"])])
    rows: list[tuple[str, str, int, int]] = []
    for spec, want, number in zip(specs, wanted, numbers):
        c = cat.category[want]
        same = order[starts[c] : starts[c + 1]]
        same = same[same != want]
        match = _matches(cat, same, spec)
        other = rng.choice(cat.n, size=min(cat.n, 4 * N_OTHER), replace=False)
        other = other[cat.category[other] != c][:N_OTHER]
        graded = ((3, np.array([want])), (2, same[match]), (1, same[~match]), (0, other))
        qid, text = f"{QUERY_TYPES[spec[KIND]]}-{number:05d}", render(spec)
        for grade, pool in graded:
            rows.extend((qid, text, int(i), grade) for i in np.sort(pool))
    frame = pd.DataFrame(rows, columns=["query_id", "query", "item", "relevance"])
    return pd.DataFrame({
        "query_id": frame["query_id"].astype("str"),
        "query": frame["query"].astype("str"),
        "item_id": item_ids.take(frame["item"].to_numpy()).to_pandas(),
        "relevance": frame["relevance"].astype("int64"),
    })

"""Hybrid search: understand the query, retrieve two ways, fuse, filter, personalise.

1. *Understand*: normalise, cut the price phrase, complete / correct each word against
   the catalog vocabulary, find a colour, guess the category intent, translate shoppers'
   words into catalog words learned from the click logs, list the words a typed word may
   have been meant as (its completions; its one-edit neighbours when it is no word); see
   :mod:`~shoprec.search.query` (``parse``, ``spelling``, ``intent``, ``expansion``,
   ``terms``). Explicit ``filters`` override what the text said.
2. *Filter first*: price range, colour (title carries the colour word, or another colour the
   typed word may mean: "gre" is read "green", but grey plates stay in) and category
   (applied only when the intent is confident) become one item mask, applied to both
   legs' scores before their top-N, so no candidate slot is spent on an excluded item.
   If colour or category leave nothing, they are dropped (reported in
   ``parsed["relaxed"]``); a price range the catalog cannot meet is kept (no results).
3. *Retrieve*: BM25 top-N (items with a positive score) and semantic top-N (cosine; exact,
   or through an ANN index on a large catalog, see :class:`shoprec.search.index.vectors.FilteredSearch`).
   In ``hybrid`` mode the BM25 query carries the translations and guesses too
   (weighted by their credit times ``expansion_weight``); ``lexical`` mode is plain BM25
   on the corrected words, the baseline the evaluation compares with.
4. *Fuse* by reciprocal rank fusion (Cormack et al., 2009):

       rrf(i) = sum_legs w_leg / (k0 + rank_leg(i)),   k0 = ``rrf_k``,

   which needs no calibration between a BM25 score and a cosine, only ranks.
5. *Order* (``hybrid``): coverage weighs most, then the fused rank, then what shoppers choose,

       s(i) = rrf(i) / max rrf + alpha cov(i) + beta log(1 + n_i) / log(1 + max n) - delta u(i),

   ``cov`` the share of the query's words the item has (its title in full, its other text
   in part), ``u`` the number of the item's defining title words the query leaves unnamed
   (a travel mug's "travel" for "mug"; 0 when the query names no defining word at all:
   :mod:`~shoprec.search.query.terms`, :mod:`~shoprec.search.index.titles`), ``n_i`` the item's
   weighted interactions in the training window, ``alpha`` = ``coverage_weight``, ``beta`` =
   ``popularity_weight``, ``delta`` = ``unnamed_weight``. With ``alpha`` = 4 a word more
   covered outweighs the whole fused range on queries of up to four words; among items
   that match the words equally well, the one shoppers choose more often is the better
   guess (most matches of a one-word query are ties).
6. *Personalise* (``user_id`` given): the two-tower's affinity of the shopper for each of
   the fused top ``n_personalise``, ``p(i) = (1 + cos(q_u, e_i)) / 2``, blends in as

       s'(i) = (1 - lambda) s(i) / max s + lambda p(i) / max p,

   ``s`` the score of step 5 (the fused ``rrf`` in the other modes), so the query decides
   what is relevant and the shopper's history reorders within it (``lambda`` =
   ``personalisation``). An unknown user id gets the cold-start query
   vector (popularity-like). The affinity is one vector product per result, the same on
   any catalog size (see :func:`shoprec.search.store.affinity_scorer`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd

from shoprec.config import SearchParams
from shoprec.echo import shown
from shoprec.search.index.lexical import LexicalIndex
from shoprec.search.index.semantic import SemanticIndex
from shoprec.search.index.titles import DefiningWords, TitleIndex, title_tokens
from shoprec.search.index.vectors import FilteredSearch
from shoprec.search.query.expansion import QueryExpansion
from shoprec.search.query.intent import CategoryIntent
from shoprec.search.query.normalize import tokens
from shoprec.search.query.parse import ColourVocabulary, PriceRange, clean_text
from shoprec.search.query.spelling import Speller
from shoprec.search.query.terms import QueryTerms
from shoprec.topk import top_rows

MODES = ("lexical", "semantic", "hybrid")
FILTER_KEYS = ("category", "colour", "min_price", "max_price")
MAX_FILTER_CHARS = 200


@dataclass
class Parsed:
    query: str
    text: str
    corrections: dict[str, str] = field(default_factory=dict)
    min_price: float | None = None
    max_price: float | None = None
    colour: str | None = None
    colours_also: list[str] = field(default_factory=list)  # other colours the colour's typed word may mean ("gre": grey)
    category: str | None = None  # the intent's guess (None without a classifier)
    category_confidence: float | None = None
    category_applied: bool = False
    relaxed: list[str] = field(default_factory=list)
    expansion: dict[str, float] = field(default_factory=dict)  # catalog word -> P(word | query words), from the logs
    guesses: dict[str, dict[str, float]] = field(default_factory=dict)  # typed word -> {word it may mean: credit}

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _check_filter_value(key: str, value) -> None:
    """A filter value of the wrong type is the caller's mistake, said as such (not a crash further on)."""
    example = {"category": '"Candles"', "colour": '"red"', "min_price": "5", "max_price": "20"}[key]
    text = key in ("category", "colour")
    if value is not None and (not isinstance(value, str) or len(value) > MAX_FILTER_CHARS if text else
                              isinstance(value, bool) or not isinstance(value, (int, float))
                              or not math.isfinite(value)):
        kind = f"string of at most {MAX_FILTER_CHARS} characters" if text else "finite number"
        raise ValueError(f"filter {key!r} must be a {kind}, e.g. {{\"{key}\": {example}}}; got {shown(repr(value))}")


class Analysis(NamedTuple):
    price: PriceRange
    typed: list[str]  # the free text's folded words
    words: list[str]  # ... spelling-corrected
    corrections: dict[str, str]  # typed -> corrected, where they differ


def analyse(query: str, speller: Speller) -> Analysis:
    """Price constraint, the free text's words as typed and as corrected, and the corrections made."""
    price, text = clean_text(query)
    typed = tokens(text)
    return Analysis(price, typed, *speller.correct_all(typed))


def query_text(query: str, speller: Speller) -> str:
    """The text a query's MiniLM vector is of: its corrected free text (the query itself if none)."""
    return " ".join(analyse(query, speller).words) or query


def rrf(rankings: list[np.ndarray], weights: list[float], k0: float) -> dict[int, float]:
    """Reciprocal rank fusion of ranked item-index lists (best first)."""
    fused: dict[int, float] = {}
    for ranked, w in zip(rankings, weights):
        for rank, item in enumerate(ranked, 1):
            fused[int(item)] = fused.get(int(item), 0.0) + w / (k0 + rank)
    return fused


def _top_positive(scores: np.ndarray, n: int) -> np.ndarray:
    """The best ``n`` items with a positive score, best first."""
    valid = np.flatnonzero(scores > 0)
    return top_rows(valid, scores[valid], n)


@dataclass
class SearchEngine:
    item_ids: np.ndarray
    titles: np.ndarray
    categories: np.ndarray
    prices: np.ndarray
    lexical: LexicalIndex
    speller: Speller
    colours: ColourVocabulary
    semantic: SemanticIndex
    embed: Callable[[list[str]], np.ndarray]  # raw strings -> MiniLM vectors
    intent: CategoryIntent | None
    cfg: SearchParams
    personal: Callable[[str, np.ndarray], np.ndarray] | None = None  # (user_id, items) -> affinity in [0, 1]
    expansion: QueryExpansion | None = None  # query word translations; None: no logged queries to learn from
    # top-N of the semantic leg among the items the filters allow: exact, or (serving, large catalogs) by ANN
    semantic_search: FilteredSearch | None = None
    popularity: np.ndarray | None = None  # per item: log(1 + n_i) / log(1 + max n), n_i weighted training interactions
    title_index: TitleIndex | None = None  # which items' titles have a word (built from ``titles`` when not given)
    defining: DefiningWords | None = None  # title words that say what a product is; None: no logged queries

    def __post_init__(self) -> None:
        if self.semantic_search is None:
            self.semantic_search = FilteredSearch(self.semantic.item_vectors)
        if self.title_index is None:
            self.title_index = TitleIndex.build(title_tokens(self.titles))
        self.defining = self.defining or DefiningWords({})
        self._defining_per_item = self.defining.per_item(self.title_index)
        # category filter as an integer comparison: comparing a million strings costs ~10 ms a query
        codes, names = pd.factorize(self.categories)
        self._category_codes, self._category_code = codes, {name: c for c, name in enumerate(names)}

    def text_to_embed(self, query: str) -> str:
        """The text :meth:`parse` encodes with MiniLM: the corrected free text (the query if none)."""
        return query_text(query, self.speller)

    def parse(self, query: str, filters: dict | None = None) -> tuple[Parsed, QueryTerms, np.ndarray]:
        """What the query asks for, what its words may stand for, and its MiniLM vector (of the corrected free text)."""
        price, typed, corrected, changes = analyse(query, self.speller)
        parsed = Parsed(query, " ".join(corrected), changes, price.min_price, price.max_price,
                        self.colours.find(corrected))
        terms = QueryTerms.of(typed, corrected, self.lexical, self.speller, self.expansion, self.cfg.guess_weight)
        parsed.expansion, parsed.guesses = terms.translations, terms.guesses
        if parsed.colour:
            cut_off = [w for w, c in zip(typed, corrected) if c != w and self.colours.find([c]) == parsed.colour]
            parsed.colours_also = sorted({g for w in cut_off for g in terms.guesses.get(w, {})  # completions, not typos
                                          if g.startswith(w) and g != parsed.colour and g in self.colours.item_mask})
        text_emb = self.embed([parsed.text or query])  # = text_to_embed(query)
        if self.intent is not None and parsed.text:
            category, confidence = self.intent.predict(text_emb)
            parsed.category, parsed.category_confidence = str(category[0]), float(confidence[0])
            parsed.category_applied = parsed.category_confidence >= self.intent.threshold
        for key, value in (filters or {}).items():
            if key not in FILTER_KEYS:
                raise ValueError(f"unknown filter {key!r}; use {', '.join(FILTER_KEYS)}")
            _check_filter_value(key, value)
            setattr(parsed, key, value)
            if key == "colour":
                parsed.colours_also = []
            if key == "category":
                parsed.category_applied = value is not None
        return parsed, terms, text_emb

    def _mask(self, parsed: Parsed) -> np.ndarray:
        price_ok = np.ones(len(self.item_ids), bool)
        if parsed.min_price is not None:
            price_ok &= self.prices >= parsed.min_price
        if parsed.max_price is not None:
            price_ok &= self.prices <= parsed.max_price
        category = self._category_code.get(parsed.category, -2)  # -2: no item (factorize gives -1 to missing)
        soft = {"category": self._category_codes == category if parsed.category_applied else None,
                "colour": self._colour_mask([parsed.colour, *parsed.colours_also]) if parsed.colour else None}
        mask = price_ok & np.logical_and.reduce([m for m in soft.values() if m is not None] or [price_ok])
        for name in ("category", "colour"):  # relax the weakest evidence first
            if mask.any() or soft[name] is None or not price_ok.any():
                continue
            parsed.relaxed.append(name)
            soft[name] = None
            mask = price_ok & np.logical_and.reduce([m for m in soft.values() if m is not None] or [price_ok])
        return mask

    def _colour_mask(self, colours: list[str]) -> np.ndarray | None:
        """Items whose title carries any of ``colours`` (None: the catalog knows none of them)."""
        masks = [self.colours.item_mask[c] for c in colours if c in self.colours.item_mask]
        return np.logical_or.reduce(masks) if masks else None

    def rank(self, query: str, mode: str = "hybrid", user_id: str | None = None,
             filters: dict | None = None) -> tuple[Parsed, np.ndarray, np.ndarray]:
        """Parsed query, item indices best first and their scores (up to ``cfg.candidates``)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        parsed, terms, text_emb = self.parse(query, filters)
        mask = self._mask(parsed)
        legs, weights = [], []
        if mode in ("lexical", "hybrid"):
            extra = ({t: self.cfg.expansion_weight * w for t, w in terms.extra_weights().items()}
                     if mode == "hybrid" else None)
            lex = np.where(mask, self.lexical.scores(parsed.text.split(), extra), 0.0)
            legs.append(_top_positive(lex, self.cfg.candidates))
            weights.append(self.cfg.lexical_weight)
        if mode in ("semantic", "hybrid"):
            query = self.semantic.query_vectors(text_emb)[0]
            legs.append(self.semantic_search.top(query, mask, self.cfg.candidates))
            weights.append(self.cfg.semantic_weight)
        fused = rrf(legs, weights, self.cfg.rrf_k)
        items = np.fromiter(sorted(fused, key=lambda i: (-fused[i], i)), np.int64, len(fused))
        scores = np.fromiter((fused[i] for i in items), np.float64, len(items))
        if mode == "hybrid" and len(items):
            items, scores = self._order(terms, items, scores)
        if user_id is not None and self.personal is not None and len(items):
            items, scores = self._personalise(user_id, items, scores)
        return parsed, items, scores

    def _order(self, terms: QueryTerms, items: np.ndarray, fused: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Step 5 of the module docstring: coverage, unnamed words, fused rank and popularity in one score, best first."""
        cfg, titles = self.cfg, self.title_index
        coverage = terms.coverage(items, self.lexical, titles, cfg.body_credit)
        unnamed = terms.unnamed(items, titles, self.defining.shares, self._defining_per_item)
        score = fused / fused[0] + cfg.coverage_weight * coverage - cfg.unnamed_weight * unnamed
        if self.popularity is not None:
            score += cfg.popularity_weight * self.popularity[items]
        order = np.lexsort((items, -score))
        return items[order], score[order]

    def _personalise(self, user_id: str, items: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        head, tail = items[: self.cfg.n_personalise], items[self.cfg.n_personalise:]
        p = self.personal(user_id, head)
        lam = self.cfg.personalisation
        blended = (1 - lam) * scores[: len(head)] / scores[0] + lam * p / max(float(p.max()), 1e-12)
        order = np.argsort(-blended, kind="stable")
        rest = (1 - lam) * scores[len(head):] / scores[0]
        return np.concatenate([head[order], tail]), np.concatenate([blended[order], rest])

    def search(self, query: str, user_id: str | None = None, k: int = 10, filters: dict | None = None,
               mode: str = "hybrid") -> dict:
        """``{"parsed": {...}, "items": [{"item_id", "title", "category", "price", "score"}]}``."""
        parsed, items, scores = self.rank(query, mode, user_id, filters)
        return {"parsed": parsed.as_dict(), "items": [
            {"item_id": str(self.item_ids[i]), "title": str(self.titles[i]), "category": str(self.categories[i]),
             "price": float(self.prices[i]), "score": round(float(s), 6)}
            for i, s in zip(items[:k], scores[:k])]}

"""DVC stage ``build_lexical_index``: what search knows about words, from the catalog and the click logs.

BM25 over the items' text, the speller's vocabulary (catalog words plus frequent logged
query words), translations of shoppers' words into catalog words, which titles hold which
words and which title words define a product, and each item's popularity (the hybrid
order's prior): :class:`~shoprec.layout.LexicalFiles`.
"""

from __future__ import annotations

import json
from collections import Counter
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from shoprec.config import Params
from shoprec.layout import LexicalFiles, SplitFiles
from shoprec.models.catalog import row_index
from shoprec.models.interactions import build_interactions
from shoprec.search.engine import analyse
from shoprec.search.index.lexical import LexicalIndex, token_counts
from shoprec.search.index.titles import DefiningWords, TitleIndex, title_tokens
from shoprec.search.pairs import first_choices
from shoprec.search.query.expansion import QueryExpansion
from shoprec.search.query.normalize import tokens
from shoprec.search.query.parse import clean_text
from shoprec.search.query.spelling import Speller


def query_word_counts(events: pd.DataFrame) -> Counter:
    """Per logged query word: the number of sessions that typed it (price phrases cut)."""
    searches = events.loc[events["query"].fillna("").ne(""), ["session_id", "query"]].drop_duplicates()
    return Counter(t for q in searches["query"] for t in tokens(clean_text(q)[1]))


def chosen_titles(chosen: list[tuple[str, int]], titles: list[list[str]]) -> dict[str, list[set[str]]]:
    """Per logged query word (price phrases cut): the title tokens of the items chosen first after it."""
    out: dict[str, list[set[str]]] = {}
    for query, row in chosen:
        for word in set(tokens(clean_text(query)[1])):
            out.setdefault(word, []).append(set(titles[row]))
    return out


def build_speller(items: pd.DataFrame, events: pd.DataFrame, chosen: list[tuple[str, int]], titles: list[list[str]],
                  params: Params) -> Speller:
    """``chosen``: the logged searches' first choices (:func:`first_rows`); ``titles``: the items' title tokens."""
    return Speller.build(token_counts(items), query_word_counts(events), min_query_count=params.search.min_query_count,
                         chosen_titles=chosen_titles(chosen, titles), typo_share=params.search.typo_share)


def first_rows(items: pd.DataFrame, first: pd.DataFrame) -> list[tuple[str, int]]:
    """``(query, catalog row)`` of the logged searches' first choices (items no longer in the catalog dropped)."""
    row = row_index(items["item_id"])
    pairs = first[first["item_id"].isin(row.keys())]
    return list(zip(pairs["query"], pairs["item_id"].map(row).tolist()))


def build_lexical_index(items_path: Path, split_dir: Path, out_dir: Path, params: Params) -> Path:
    """BM25 index, the speller's vocabulary, the query expansion, the title index and defining words, and item
    popularity, from the catalog and training events (:class:`~shoprec.layout.LexicalFiles`)."""
    items = pd.read_parquet(items_path)
    events = pd.read_parquet(SplitFiles(split_dir).train)
    cfg, out = params.search, LexicalFiles(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    LexicalIndex.build(items, cfg.title_weight, cfg.k1, cfg.b).save(out.bm25)
    chosen = first_rows(items, first_choices(events, params.interactions.weights))
    titles = title_tokens(items["title"])
    speller = build_speller(items, events, chosen, titles, params)
    out.vocabulary.write_text(json.dumps(speller.frequency, sort_keys=True))

    @cache
    def read(query: str) -> list[str]:  # a logged query as the engine reads it, so logs and searches agree
        return analyse(query, speller).words

    QueryExpansion.learn(chosen, titles, read, cfg.expansion_min_share, cfg.expansion_min_lift,
                         cfg.expansion_min_items).save(out.expansion)
    TitleIndex.build(titles).save(out.titles)
    DefiningWords.learn(chosen, titles, title_tokens(items["brand"]), read, cfg.defining_share,
                        cfg.defining_min_items).save(out.defining)
    inter = build_interactions(events, items["item_id"].to_numpy(), params.interactions.weights)
    np.save(out.popularity, inter.item_popularity().astype(np.float32))
    return out_dir

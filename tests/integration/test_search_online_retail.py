"""Search on the real Online Retail catalog (no categories, colours or logged queries).

Built in memory from the shared file (skipped when absent): BM25 and the zero-shot
semantic leg (MiniLM query vs item text), no speller log words, no intent classifier,
no trained query tower, exactly what ``train_query_model`` falls back to there.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shoprec.config import Params
from shoprec.search.index.lexical import LexicalIndex, token_counts
from shoprec.search.index.semantic import SemanticIndex
from shoprec.search.query.spelling import Speller
from shoprec.search.store import engine_from

PHRASES = ("red heart", "lunch bag", "christmas decoration", "cake stand")


@pytest.fixture(scope="module")
def engine(online_retail_path):
    from shoprec.data.sources.online_retail import load
    from shoprec.text import MiniLMEncoder, embed_texts, item_text

    raw = load(online_retail_path).items
    items = pd.DataFrame({"item_id": raw["item_id"], "title": raw["title"].fillna(""), "description": "",
                          "category": "", "brand": "", "price": pd.to_numeric(raw["price"], errors="coerce").fillna(0)})
    encoder = MiniLMEncoder(None, max_length=32)
    text_emb = embed_texts(item_text(items), encoder, batch_size=256, progress=False)
    return engine_from(items, LexicalIndex.build(items), Speller.build(token_counts(items)), SemanticIndex.of(text_emb),
                       None, Params(), encoder)


@pytest.mark.parametrize("phrase", PHRASES)
@pytest.mark.parametrize("mode", ["lexical", "semantic", "hybrid"])
def test_obvious_phrases_find_titles_with_their_words(engine, phrase, mode):
    top = [item["title"].lower() for item in engine.search(phrase, k=5, mode=mode)["items"]]
    hits = [all(word in title for word in phrase.split()) for title in top]
    assert len(top) == 5 and np.mean(hits) >= (0.6 if mode == "semantic" else 1.0), top


def test_query_understanding_degrades_to_what_the_catalog_has(engine):
    assert "red" in engine.colours.colours and "green" in engine.colours.colours  # learned from titles
    parsed = engine.search("pink lunch bag under 2", k=5)
    assert parsed["parsed"]["category"] is None and parsed["parsed"]["colour"] == "pink"
    assert all(i["price"] <= 2 for i in parsed["items"])
    typo = engine.search("chrstmas decoraton", k=3)
    assert typo["parsed"]["corrections"] == {"chrstma": "christma", "decoraton": "decoration"}  # index tokens are folded
    assert all("christmas" in i["title"].lower() for i in typo["items"])

"""Search parts on hand-made catalogs: parsing, spelling, BM25, fusion, filters, the engine."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from shoprec.config import Params
from shoprec.search.evaluate import ceiling_ndcg, query_metrics
from shoprec.search.index.lexical import LexicalIndex, token_counts
from shoprec.search.index.semantic import SemanticIndex
from shoprec.search.index.titles import DefiningWords, TitleIndex, title_tokens
from shoprec.search.pairs import first_choices, query_pairs
from shoprec.search.query.expansion import QueryExpansion, merged, units
from shoprec.search.query.intent import CategoryIntent
from shoprec.search.query.normalize import fold, normalise, tokens
from shoprec.search.query.parse import ColourVocabulary, clean_text
from shoprec.search.query.spelling import Speller
from shoprec.search.query.terms import QueryTerms
from shoprec.search.engine import rrf
from shoprec.search.store import engine_from, popularity_prior

ITEMS = pd.DataFrame({
    "item_id": ["I1", "I2", "I3", "I4", "I5", "I6"],
    "title": ["Red Ceramic Mug", "Blue Ceramic Mug", "Soy Candle Holder", "Grey Wool Scarf", "Red Canvas Sneakers",
              "Beeswax Candle"],
    "description": ["A mug.", "A mug.", "Holds a candle.", "Warm scarf.", "Shoes for running.", "Slow burn."],
    "category": ["Drinkware", "Drinkware", "Candles", "Apparel", "Footwear", "Candles"],
    "brand": ["Lumen", "Lumen", "Ember", "Alder", "Dune", "Ember"],
    "price": [12.0, 18.0, 25.0, 30.0, 60.0, 9.0],
})


def test_normalise_and_fold():
    assert normalise("  Crème  BRÛLÉE, £12.50!") == "creme brulee £12.50"
    assert [fold(w) for w in ("candles", "boxes", "glasses", "berries", "bus", "mugs")] == \
        ["candle", "box", "glass", "berry", "bus", "mug"]
    assert tokens("Candle-Holders") == ["candle", "holder"]


@pytest.mark.parametrize("query, low, high, rest", [
    ("mug under 20", None, 20.0, "mug"),
    ("candle below £15", None, 15.0, "candle"),
    ("scarf between 5 and 10", 5.0, 10.0, "scarf"),
    ("lamp 10-20", 10.0, 20.0, "lamp"),
    ("boots over $50.5", 50.5, None, "boots"),
    ("red mug", None, None, "red mug"),
])
def test_price_phrases_become_a_range_and_leave_the_text(query, low, high, rest):
    price, text = clean_text(query)
    assert (price.min_price, price.max_price, text) == (low, high, rest)


def test_colour_vocabulary_comes_from_titles_with_variants():
    colours = ColourVocabulary.learn(ITEMS["title"], min_items=1)
    assert set(colours.colours) == {"red", "blue", "grey"}
    assert colours.find(["gray", "scarf"]) == "grey"
    assert colours.find(["green", "mug"]) is None  # a colour this catalog never uses
    assert list(colours.item_mask["red"]) == [True, False, False, False, True, False]
    assert ColourVocabulary.learn(["WHITE HANGING HEART", "JUMBO BAG"], min_items=3).colours == ()


def test_a_colour_word_that_ends_its_phrase_is_a_noun():
    titles = ["Face Cream by Tidewell", "Cream for dry skin", "Cream Wool Scarf", "Cream Linen Cushion for kids",
              "Red Mug", "ALARM CLOCK BAKELIKE RED", "Navy Blue Rug"]
    colours = ColourVocabulary.learn(titles, min_items=1)
    assert list(colours.item_mask["cream"]) == [False, False, True, True, False, False, False]
    assert list(colours.item_mask["red"]) == [False, False, False, False, True, True, False]  # a title may end in it
    assert colours.find(["sun", "cream"]) is None  # asks for a cream, not for something cream-coloured
    assert colours.find(["cream", "scarf"]) == "cream"
    assert colours.find(["red"]) == "red" and colours.find(["mug", "in", "red"]) is None
    assert colours.find(["navy", "blue"]) == "navy"  # a two-word colour alone


def test_speller_completes_corrects_and_keeps_frequent_query_words():
    catalog = token_counts(ITEMS)
    logs = Counter({"trainer": 40, "cermaic": 1, "sneaker": 50})
    speller = Speller.build(catalog, logs, min_query_count=5)
    assert speller.correct("candel") == "candle"  # swap
    assert speller.correct("holdr") == "holder"  # drop
    assert speller.correct("cera") == "ceramic"  # completion
    assert speller.correct("trainer") == "trainer"  # frequent in the logs: a synonym, not a typo
    assert speller.correct("cermaic") == "ceramic"  # rare in the logs: a typo
    assert speller.correct("mgu") == "mgu"  # too short to guess
    # "folder" and "hodler" are rare next to "holder" (100 searches); after "folder" shoppers chose no holder
    logs = Counter({"holder": 100, "folder": 6, "hodler": 6})
    chosen = {"folder": [{"paper", "folder"}, {"folder"}, {"holder", "folder"}],
              "hodler": [{"candle", "holder"}, {"holder"}, {"holder"}, {"scarf"}]}
    told = Speller.build(catalog, logs, min_query_count=5, chosen_titles=chosen, typo_share=0.35)
    assert (told.correct("folder"), told.correct("hodler")) == ("folder", "holder")
    assert Speller.build(catalog, logs, min_query_count=5).correct("folder") == "holder"  # counts alone: a typo
    cut = Speller.build(catalog, Counter({"cera": 40, "sneak": 60}), min_query_count=5)
    assert (cut.correct("cera"), cut.correct("sneak")) == ("ceramic", "sneaker")  # however often, a cut-off word
    assert speller.correct_all(["red", "cermaic"]) == (["red", "ceramic"], {"cermaic": "ceramic"})


def test_speller_lists_every_completion_and_neighbour_most_frequent_first():
    speller = Speller.build({"granite": 188, "granola": 51, "grand": 3, "bag": 90, "bar": 40, "bias": 5, "tea": 70})
    assert speller.completions("gran") == ["granite", "granola", "grand"]
    assert speller.completions("granola") == [] and speller.correct("gran") == "granite"
    assert speller.neighbours("bas") == ["bag", "bar", "bias"]  # replaced and dropped letters
    assert speller.correct("bas") == "bas"  # three letters: the speller does not pick one


def test_a_correction_is_one_edit_away_even_when_a_farther_word_is_more_frequent():
    speller = Speller.build({"even": 500, "green": 20, "earl": 300, "pearl": 10, "wool": 400, "bowl": 30})
    # "geen"/"even", "perl"/"earl", "bwol"/"wool" share a deletion but are two edits apart
    assert [speller.correct(w) for w in ("geen", "perl", "bwol")] == ["green", "pearl", "bowl"]
    assert speller.correct("qqqq") == "qqqq"


def test_bm25_ranks_the_matching_title_first_and_survives_save_load(tmp_path):
    index = LexicalIndex.build(ITEMS)
    scores = index.scores(["candle", "holder"])
    assert np.argmax(scores) == 2 and scores[5] > 0 and scores[0] == 0
    assert not index.scores(["zzz"]).any()
    index.save(tmp_path / "bm25")
    np.testing.assert_array_equal(LexicalIndex.load(tmp_path / "bm25", len(ITEMS)).scores(["mug"]), index.scores(["mug"]))


def test_bm25_contains_agrees_with_the_scores():
    index = LexicalIndex.build(ITEMS)
    rows = np.array([5, 0, 2, 4, 3])
    for token in ("candle", "mug", "red", "zzz"):
        np.testing.assert_array_equal(index.contains(token, rows), index.scores([token])[rows] > 0)
    assert index.scores(["mug", "mug"])[0] == pytest.approx(2 * index.scores(["mug"])[0])  # BM25 sums typed tokens


def test_query_terms_credit_guesses_translations_and_measure_coverage():
    index = LexicalIndex.build(ITEMS)
    speller = Speller.build(token_counts(ITEMS))
    expansion = QueryExpansion({"trainer": {"sneaker": 0.9}})
    # "can": candle (in 2 items) or canvas (1, folded to "canva"); the speller completes it to candle
    typed = ["red", "can", "trainer"]
    words, _ = speller.correct_all(typed)
    terms = QueryTerms.of(typed, words, index, speller, expansion, guess_weight=1.0)
    assert words == ["red", "candle", "trainer"]
    assert terms.guesses == {"can": {"canva": 1.0}}  # the only other reading: all of the rest
    assert terms.alternatives[1] == {"candle": 1.0, "canva": 1.0}
    assert terms.alternatives[2] == {"sneaker": 0.9}  # an unknown word stands only for its translations
    assert terms.extra_weights() == {"canva": 1.0, "sneaker": 0.9}
    # red canvas sneakers: red 1, canvas 1, sneaker 0.9; soy candle holder: candle 1; red mug: red 1
    titles = TitleIndex.build(title_tokens(ITEMS["title"]))
    np.testing.assert_allclose(terms.coverage(np.array([4, 2, 0, 3]), index, titles, 0.5), [2.9 / 3, 1 / 3, 1 / 3, 0.0])
    # a word only the category has ("drinkware") covers the mugs by the body credit, one in the title in full
    drinkware = QueryTerms.of(["drinkware"], ["drinkware"], index, speller, None, 1.0)
    np.testing.assert_allclose(drinkware.coverage(np.array([0, 1, 2]), index, titles, 0.5), [0.5, 0.5, 0.0])
    np.testing.assert_allclose(drinkware.coverage(np.array([0, 1, 2]), index, titles, 1.0), [1.0, 1.0, 0.0])
    halved = QueryTerms.of(typed, words, index, speller, expansion, guess_weight=0.5)
    assert halved.guesses["can"]["canva"] == 0.5
    # a known word counts 1 itself, its completions their share of the prefix's frequency (tea 6, teal 3, tealight 1)
    spread = Speller.build(Counter({"tea": 6, "teal": 3, "tealight": 1}))
    tea = QueryTerms.of(["tea"], ["tea"], LexicalIndex.build(pd.DataFrame({
        "title": ["Tea", "Teal Mug", "Tealight"], "category": "", "brand": "", "description": ""})), spread, None, 1.0)
    assert tea.alternatives == [{"tea": 1.0, "teal": 0.3, "tealight": 0.1}]


def test_title_index_finds_title_words_only_and_round_trips(tmp_path):
    titles = TitleIndex.build(title_tokens(ITEMS["title"]))
    rows = np.array([5, 0, 2, 4, 3, 1])
    np.testing.assert_array_equal(titles.contains("candle", rows), [True, False, True, False, False, False])
    np.testing.assert_array_equal(titles.rows_of("mug"), [0, 1])
    assert not titles.contains("drinkware", rows).any() and not titles.contains("zzz", rows).any()  # category, unknown
    loaded = TitleIndex.load(titles.save(tmp_path / "titles.npz"), len(ITEMS))
    assert loaded.vocabulary == titles.vocabulary
    np.testing.assert_array_equal(loaded.contains("red", rows), titles.contains("red", rows))
    with pytest.raises(ValueError, match="indexes 6 titles, the catalog has 7 items; re-run build_lexical_index"):
        TitleIndex.load(tmp_path / "titles.npz", 7)
    np.savez(tmp_path / "old.npz", tokens=np.array(["mug"]), indptr=np.array([0, 1]), rows=np.array([0]))
    with pytest.raises(ValueError, match="built before title indexes recorded their catalog's size; re-run"):
        TitleIndex.load(tmp_path / "old.npz", 1)
    assert title_tokens(["Red Mugs", None, float("nan")]) == [["red", "mug"], [], []]
    empty = TitleIndex.build([[], []])
    assert not empty.contains("mug", np.array([0, 1])).any()


TRAVEL = ["travel", "mug"], ["grey", "mug"], ["black", "mug"], ["steel", "travel", "mug"], ["classic", "lamp"], \
    ["desk", "lamp"]
BRANDS = [[], [], [], [], [], ["lumen"]]


def test_defining_words_are_what_shoppers_name_when_they_choose_it():
    chosen = [("travel mug", 0), ("steel travel mug", 3), ("travel mug under 20", 3), ("mug", 1), ("grey mug", 1),
              ("cup", 1), ("mug", 2), ("black mug", 2), ("lamp", 4), ("desk lamp", 5), ("lumen lamp", 5), ("light", 4),
              ("mug", 1), ("mug", 1)]  # every search counts
    defining = DefiningWords.learn(chosen, list(TRAVEL), BRANDS, str.split, min_share=0.5, min_items=2)
    # named / (seen + 2): mug 9 / 12, travel 3 / 5, lamp 3 / 6; grey 1 / 7, black, steel, desk 1 / 4, classic 0
    assert defining.shares == {"lamp": 0.5, "mug": 0.75, "travel": 0.6}
    assert DefiningWords.learn(chosen, list(TRAVEL), BRANDS, str.split, 0.5, min_items=3).shares == {"mug": 0.75}
    np.testing.assert_array_equal(defining.per_item(TitleIndex.build(TRAVEL)), [2, 1, 1, 2, 1, 1])
    lumen = [["lumen", "lamp"]] * 3  # a brand is no product type, however often its shoppers type it
    assert DefiningWords.learn([("lumen lamp", r) for r in range(3)], lumen, [["lumen"]] * 3, str.split, 0.5,
                               3).shares == {"lamp": 0.6}


def test_unnamed_counts_the_defining_words_a_query_leaves_out():
    items = pd.DataFrame({"title": [" ".join(t).title() for t in TRAVEL], "category": "", "brand": "",
                          "description": ""})
    lexical, speller, index = LexicalIndex.build(items), Speller.build(token_counts(items)), TitleIndex.build(TRAVEL)
    defining = {"mug": 0.7, "travel": 0.6, "lamp": 0.8}
    per_item = DefiningWords(defining).per_item(index)
    rows = np.arange(len(TRAVEL))

    def unnamed(query: str, expansion: QueryExpansion | None = None) -> list[float]:
        words = query.split()
        return list(QueryTerms.of(words, words, lexical, speller, expansion, 1.0).unnamed(rows, index, defining, per_item))

    assert unnamed("mug") == [1, 0, 0, 1, 1, 1]  # the travel mugs' "travel" and the lamps' "lamp" are unnamed
    assert unnamed("travel mug") == [0, 0, 0, 0, 1, 1]
    assert unnamed("cup", QueryExpansion({"cup": {"mug": 0.75}})) == [1, 0, 0, 1, 1, 1]  # a likely translation names
    assert unnamed("cup", QueryExpansion({"cup": {"mug": 0.3}})) == [0] * 6  # ... an unlikely one does not
    assert unnamed("grey") == unnamed("classic") == [0] * 6  # names no product: says nothing about which


def test_hybrid_orders_an_item_with_an_unnamed_defining_word_after_those_without():
    from shoprec.text import MiniLMEncoder, embed_texts, item_text

    mugs = pd.DataFrame({"item_id": ["T", "G"], "title": ["Travel Mug", "Grey Mug"], "description": "",
                         "category": "Drinkware", "brand": "", "price": 10.0})
    encoder = MiniLMEncoder(None, max_length=32)
    engine = engine_from(mugs, LexicalIndex.build(mugs), Speller.build(token_counts(mugs)),
                         SemanticIndex.of(embed_texts(item_text(mugs), encoder, progress=False)), None, Params(), encoder,
                         popularity=np.array([1.0, 0.0]), defining=DefiningWords({"travel": 0.64, "mug": 0.67}))
    assert [i["item_id"] for i in engine.search("mug")["items"]] == ["G", "T"]
    engine.cfg = engine.cfg.model_copy(update={"unnamed_weight": 0.0})
    assert [i["item_id"] for i in engine.search("mug")["items"]] == ["T", "G"]  # the popular travel mug, without it


def test_bm25_extra_tokens_add_their_weighted_scores():
    index = LexicalIndex.build(ITEMS)
    mixed = index.scores(["mug"], {"candle": 0.5, "unknownword": 3.0})
    np.testing.assert_allclose(mixed, index.scores(["mug"]) + 0.5 * index.scores(["candle"]), rtol=1e-6)
    assert index.scores(["zzz"], {"sneaker": 1.0}).argmax() == 4  # an expansion alone still finds items


def _logged_choices() -> list[tuple[str, int]]:
    """Shoppers type "trainers" and choose the sneakers (item 4), "cup" and choose mugs; "mug" finds mugs."""
    return [("trainers", 4), ("trainers", 4), ("red trainers", 4), ("mug", 0), ("mug", 1), ("cup", 0), ("cup", 1),
            ("red cup", 0), ("candle", 5), ("scarf", 3)]


def _expand(expansion: QueryExpansion, words: list[str]) -> dict[str, float]:
    """Every translation of the query's units, at its largest P(t | u) (what ``parsed["expansion"]`` shows)."""
    return merged(expansion.by_word(words))


def test_expansion_translates_words_the_catalog_does_not_use():
    titles = title_tokens(ITEMS["title"])
    learned = QueryExpansion.learn(_logged_choices(), titles, str.split, min_share=0.6, min_lift=2.0, min_items=1)
    assert units(["tea", "light"]) == ["tea", "light", "tea light"]
    assert _expand(learned, ["cup"]) == {"mug": 1.0, "ceramic": 1.0}  # both mugs chosen after "cup" are ceramic
    assert _expand(learned, ["trainers"])["sneaker"] == 1.0
    assert "red" not in _expand(learned, ["red", "trainers"])  # typed words are not added again
    # not "mug", "red" or "red mug": the titles say them; "mug red" they do not (no pair of this log)
    assert set(learned.translations) == {"cup", "red cup", "trainers", "red trainers"}
    phrases = QueryExpansion.learn([("soy holder", 2), ("soy holder", 5), ("candle holder", 2)], titles, str.split,
                                   min_share=0.6, min_lift=1.0, min_items=1)
    # "soy holder": both words in titles, never side by side -> translates; "candle holder" is a title's phrase
    assert set(phrases.translations) == {"soy holder"} and _expand(phrases, ["soy", "holder"])["candle"] == 1.0
    assert _expand(learned, ["trainer"]) == {}  # unknown unit: nothing
    # three logged choices of one product are one item: below min_items 2 "trainers" has no translation
    strict = QueryExpansion.learn(_logged_choices(), titles, str.split, min_share=0.6, min_lift=2.0, min_items=2)
    assert "trainers" not in strict.translations and _expand(strict, ["cup"]) == {"mug": 1.0, "ceramic": 1.0}


def test_expansion_survives_save_load(tmp_path):
    learned = QueryExpansion({"jumper": {"sweater": 0.8}})
    assert _expand(QueryExpansion.load(learned.save(tmp_path / "e.json")), ["red", "jumper"]) == {"sweater": 0.8}


def test_rrf_adds_reciprocal_ranks():
    fused = rrf([np.array([3, 1]), np.array([1, 2])], [1.0, 0.5], 60)
    assert fused == pytest.approx({3: 1 / 61, 1: 1 / 62 + 0.5 / 61, 2: 0.5 / 62})


def test_query_pairs_keep_chosen_items_of_searches_only():
    events = pd.DataFrame({
        "user_id": ["u"] * 5, "item_id": ["I1", "I1", "I2", "I3", "I1"],
        "event_type": ["view", "click", "purchase", "click", "purchase"],
        "query": ["Red Mug", "red mug", "red  mug", "", "red mug"],
    })
    pairs = query_pairs(events, {"view": 0.0, "click": 0.3, "purchase": 1.0})
    assert pairs.to_dict("records") == [{"query": "red mug", "item_id": "I1", "weight": pytest.approx(1.3)},
                                        {"query": "red mug", "item_id": "I2", "weight": 1.0}]


def test_first_choices_keep_the_first_chosen_item_of_each_search_session():
    t = pd.Timestamp("2026-01-01", tz="UTC")
    events = pd.DataFrame({
        "user_id": ["u", "u", "u", "u", "u", "v", "v", "v", "w"],
        "session_id": ["S1", "S1", "S1", "S1", "S2", None, "", None, ""],
        "item_id": ["I1", "I2", "I3", "I5", "I4", "I5", "I6", "I1", "I2"],
        "event_type": ["view", "click", "purchase", "click", "click", "click", "click", "click", "click"],
        "query": ["Cup", "Cup", "Cup", "scarf", "", "Scarf", "scarf", "mug", "scarf"],
        "timestamp": [t + pd.Timedelta(seconds=s) for s in (0, 5, 9, 12, 20, 3, 1, 2, 4)],
    })
    first = first_choices(events, {"view": 0.0, "click": 0.3, "purchase": 1.0})
    # S1: the view is no choice, the click comes before the purchase, and its second query counts too;
    # S2 searched nothing; v has no session (missing or empty): one per normalised query, the earliest
    # choice (I6 at 1 s) of "scarf"; w's "scarf" is w's own
    assert sorted(map(tuple, first.to_numpy().tolist())) == [
        ("cup", "I2"), ("mug", "I1"), ("scarf", "I2"), ("scarf", "I5"), ("scarf", "I6")]


def test_category_intent_learns_separable_queries_and_reports_confidence(tmp_path):
    rng = np.random.default_rng(0)
    centres = np.eye(4, 8)
    x = np.repeat(centres, 30, axis=0) + 0.05 * rng.normal(size=(120, 8))
    labels = np.repeat(["A", "B", "C", "D"], 30)
    intent = CategoryIntent.fit(x.astype(np.float32), labels, np.ones(120, np.float32), threshold=0.6, epochs=60,
                                learning_rate=0.05)
    guess, confidence = intent.predict(centres)
    assert list(guess) == ["A", "B", "C", "D"] and (confidence > 0.6).all()
    _, unsure = intent.predict(np.full((1, 8), 0.25))
    assert unsure[0] < confidence.min()
    loaded = CategoryIntent.load(intent.save(tmp_path / "intent.npz"))
    np.testing.assert_allclose(loaded.predict(centres)[1], confidence, rtol=1e-6)


def test_query_metrics_graded_ndcg_mrr_recall_zero():
    labels = {"a": 3, "b": 2, "c": 1, "d": 0}
    perfect = query_metrics(["a", "b", "c", "d"], labels)
    assert perfect["ndcg@10"] == pytest.approx(1.0) and perfect["mrr"] == 1.0 and perfect["recall@50"] == 1.0
    swapped = query_metrics(["d", "b", "a"], labels)
    assert swapped["mrr"] == 0.5 and 0 < swapped["ndcg@10"] < 1
    assert query_metrics([], labels) == {"ndcg@10": 0.0, "mrr": 0.0, "recall@50": 0.0, "zero_result": 1.0}


@pytest.mark.parametrize("grades", [[3, 2, 2, 1, 1, 0], [3], [3, 1, 1], [3] + [2] * 12 + [1] * 3])
def test_text_ceiling_is_the_mean_ndcg_over_every_place_of_the_wanted_item(grades):
    labels = {f"i{n}": g for n, g in enumerate(grades)}
    matching = [i for i, g in labels.items() if g >= 2]
    rest = sorted((i for i, g in labels.items() if g < 2), key=lambda i: -labels[i])
    others = [i for i in matching if labels[i] == 2]
    by_place = [query_metrics(others[:p] + ["i0"] + others[p:] + rest, labels)["ndcg@10"] for p in range(len(matching))]
    assert ceiling_ndcg(np.array(grades)) == pytest.approx(np.mean(by_place))


def test_text_ceiling_by_hand():
    # the wanted item and one full match share ranks 1-2 (mean gain (7 + 3) / 2), the grade 1 comes third
    assert ceiling_ndcg(np.array([3, 2, 1, 0])) == pytest.approx((5 + 5 / np.log2(3) + 0.5) / (7 + 3 / np.log2(3) + 0.5))


@pytest.fixture(scope="module")
def engine():
    """Engine over ITEMS with the real MiniLM, zero-shot semantic leg, no intent, no personalisation."""
    from shoprec.text import MiniLMEncoder, embed_texts, item_text

    params = Params()
    encoder = MiniLMEncoder(None, max_length=32)
    text_emb = embed_texts(item_text(ITEMS), encoder, progress=False)
    speller = Speller.build(token_counts(ITEMS))
    return engine_from(ITEMS, LexicalIndex.build(ITEMS), speller, SemanticIndex.of(text_emb), None, params, encoder,
                       colour_min_items=1)


def test_typos_find_what_the_clean_query_finds(engine):
    result = engine.search("candel holdr", k=3)
    assert result["items"][0]["title"] == "Soy Candle Holder"
    assert result["parsed"]["corrections"] == {"candel": "candle", "holdr": "holder"}


def test_constraints_filter_and_are_reported(engine):
    result = engine.search("red mug under 15", k=5)
    parsed = result["parsed"]
    assert (parsed["colour"], parsed["max_price"], parsed["text"]) == ("red", 15.0, "red mug")
    assert [i["item_id"] for i in result["items"]] == ["I1"]
    explicit = engine.search("candle", k=5, filters={"max_price": 10})
    assert [i["item_id"] for i in explicit["items"]] == ["I6"]
    with pytest.raises(ValueError, match="unknown filter"):
        engine.search("candle", filters={"size": "xl"})
    for bad, says in (({"category": ["Candles"]}, "'category' must be a string"),
                      ({"max_price": "10"}, "'max_price' must be a finite number"),
                      ({"min_price": True}, "must be a finite number")):
        with pytest.raises(ValueError, match=says):
            engine.search("candle", filters=bad)
    assert engine.search("candle", filters={"category": None, "max_price": 10.5})["items"]  # None: no constraint


def test_an_impossible_colour_is_relaxed_but_a_price_cap_is_not(engine):
    relaxed = engine.search("grey candle under 20", k=3)  # the only grey item is a 30.00 scarf
    assert relaxed["parsed"]["relaxed"] == ["colour"] and relaxed["items"][0]["item_id"] == "I6"
    assert all(i["price"] <= 20 for i in relaxed["items"])
    assert engine.search("sneakers under 5")["items"] == []


def test_a_cut_off_colour_filters_to_every_colour_it_may_mean():
    from shoprec.text import MiniLMEncoder, embed_texts, item_text

    plates = pd.DataFrame({"item_id": ["P1", "P2", "P3", "P4", "P5", "P6"],
                           "title": ["Green Plate", "Green Bowl", "Green Cup", "Grey Plate", "Grey Bowl", "Blue Plate"],
                           "description": "", "category": "Tableware", "brand": "", "price": 10.0})
    encoder = MiniLMEncoder(None, max_length=32)
    engine = engine_from(plates, LexicalIndex.build(plates), Speller.build(token_counts(plates)),
                         SemanticIndex.of(embed_texts(item_text(plates), encoder, progress=False)), None, Params(),
                         encoder, colour_min_items=1)
    result = engine.search("gre plate", k=6)
    parsed = result["parsed"]
    assert (parsed["text"], parsed["colour"], parsed["colours_also"]) == ("green plate", "green", ["grey"])
    assert {i["item_id"] for i in result["items"]} == {"P1", "P2", "P3", "P4", "P5"}  # not the blue plate
    assert {i["item_id"] for i in result["items"][:2]} == {"P1", "P4"}  # the plates first
    explicit = engine.search("gre plate", k=6, filters={"colour": "green"})  # the shopper's own filter is exact
    assert explicit["parsed"]["colours_also"] == [] and {i["item_id"] for i in explicit["items"]} == {"P1", "P2", "P3"}


def test_semantic_leg_finds_words_the_catalog_does_not_use(engine):
    lexical = engine.search("trainers", mode="lexical")
    semantic = engine.search("trainers", mode="semantic", k=1)
    assert lexical["items"] == [] and semantic["items"][0]["item_id"] == "I5"


def test_hybrid_expands_with_learned_translations_and_lexical_stays_plain_bm25(engine):
    from dataclasses import replace

    expanding = replace(engine, expansion=QueryExpansion({"trainer": {"sneaker": 0.9}}))  # keys: analysed words
    hybrid = expanding.search("trainers", k=1)
    assert hybrid["parsed"]["expansion"] == {"sneaker": 0.9} and hybrid["items"][0]["item_id"] == "I5"
    assert expanding.search("trainers", mode="lexical")["items"] == []  # the baseline ignores translations


def test_hybrid_order_breaks_ties_by_popularity_and_lexical_ignores_it(engine):
    from dataclasses import replace

    def top(popularity, mode="hybrid"):
        return [i["item_id"] for i in replace(engine, popularity=popularity).search("ceramic mug", k=2, mode=mode)["items"]]

    # both mugs have every word: the one shoppers choose comes first
    assert top(np.array([0.0, 1.0, 0, 0, 0, 0])) == ["I2", "I1"]
    assert top(np.array([1.0, 0.0, 0, 0, 0, 0])) == ["I1", "I2"]
    lexical = top(np.array([0.0, 1.0, 0, 0, 0, 0]), "lexical")
    assert lexical == top(np.array([1.0, 0.0, 0, 0, 0, 0]), "lexical")


def test_hybrid_reports_guesses_and_the_other_words_choose_among_them(engine):
    # "can" reads as candle (the more frequent completion), but only the canvas sneakers are red too
    result = engine.search("red can", k=1)
    assert result["parsed"]["text"] == "red candle" and result["parsed"]["guesses"] == {"can": {"canva": 1.0}}
    assert result["items"][0]["item_id"] == "I5"


def test_popularity_prior_is_log_scaled_and_checked_against_the_catalog(tmp_path):
    np.save(tmp_path / "p.npy", np.array([0.0, 3.0, 15.0], np.float32))
    np.testing.assert_allclose(popularity_prior(tmp_path / "p.npy", 3), [0.0, np.log(4) / np.log(16), 1.0])
    np.save(tmp_path / "zero.npy", np.zeros(2, np.float32))
    assert not popularity_prior(tmp_path / "zero.npy", 2).any()  # no events: no prior, not a division by zero
    with pytest.raises(ValueError, match="has 3 items, the catalog 4; re-run build_lexical_index"):
        popularity_prior(tmp_path / "p.npy", 4)

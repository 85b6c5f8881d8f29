"""The seeded storefront generator: contract types, determinism and the realism the models rely on."""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
import pytest

from shoprec.config import SampleParams
from shoprec.data.contracts import EVENT_TYPES, EVENTS, ITEMS, QUERY_LABELS
from shoprec.data.sources.base import ROW_COL, SOURCE_COL
from shoprec.data.sources.sample import behaviour, generate, generator, load, vocab
from shoprec.data.sources.sample.queries import QUERY_TYPES, query_type

SMALL = SampleParams(seed=7, n_items=2000, n_users=800, n_events=60_000, days=60)
PRICE_PHRASE = re.compile(r"\b(?:under|below|less than) \$?\d+$")


@pytest.fixture(scope="module")
def data():
    return generate(SMALL)


@pytest.fixture(scope="module")
def events(data) -> pd.DataFrame:
    return data.events.merge(data.items[["item_id", "category", "brand"]], on="item_id", how="left")


def _parquet(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


def test_same_seed_gives_same_bytes_and_another_seed_differs(data):
    again = generate(SMALL)
    other = generate(SMALL.model_copy(update={"seed": 8}))
    for name in ("items", "events", "query_labels"):
        assert _parquet(getattr(again, name)) == _parquet(getattr(data, name)), name
        assert _parquet(getattr(other, name)) != _parquet(getattr(data, name)), name


@pytest.mark.parametrize("table", [ITEMS, EVENTS, QUERY_LABELS], ids=lambda t: t.name)
def test_frames_have_contract_columns_and_types(data, table):
    frame = getattr(data, table.name)
    assert list(frame.columns) == table.names
    expected = {"string": "str", "double": "float64", "int64": "int64", "timestamp[us, tz=UTC]": "datetime64[us, UTC]"}
    for col in table.columns:
        if col.nullable:  # request_id's position: generated events were not served, so none has one
            assert str(frame[col.name].dtype) == "Int64" and frame[col.name].isna().all(), col.name
            continue
        assert str(frame[col.name].dtype) == expected[str(col.type)], col.name
        assert not frame[col.name].isna().any(), col.name


def test_ids_values_and_references_are_valid(data):
    items, ev = data.items, data.events
    assert items.item_id.str.fullmatch(r"I\d{6}").all() and items.item_id.is_unique
    assert ev.user_id.str.fullmatch(r"U\d{5}").all()
    assert (items.price > 0).all()
    assert ev.item_id.isin(items.item_id).all()
    assert set(ev.event_type) == set(EVENT_TYPES)
    assert (ev.quantity >= 1).all()
    assert ev.groupby("session_id").user_id.nunique().max() == 1  # a session id names one visit
    assert ev.timestamp.is_monotonic_increasing
    start = pd.Timestamp(SMALL.start_date, tz="UTC")
    assert ev.timestamp.min() >= start and ev.timestamp.max() < start + pd.Timedelta(days=SMALL.days)
    assert 0.0 < (items.description == "").mean() < 0.15 and 0.0 < (items.brand == "").mean() < 0.15


def _sessions(params: SampleParams, returns: bool) -> tuple[behaviour.Events, np.ndarray]:
    rng, shop = generator.shoppers(params)
    stream = np.random.default_rng([params.seed, generator.RETURNS]) if returns else None
    return behaviour.simulate(rng, shop, params.days, pd.Timestamp(params.start_date, tz="UTC"), stream)


def test_default_size_is_near_the_requested_event_count():
    """``n_events`` sets the first visits and re-purchases; return visits come on top (a tenth or so more)."""
    params = SampleParams()
    big = generate(params)
    assert len(big.items) == params.n_items
    assert big.events.user_id.nunique() <= params.n_users
    before_returns = len(_sessions(params, returns=False)[0].user)
    assert abs(before_returns - params.n_events) / params.n_events < 0.1
    assert 1.05 < len(big.events) / before_returns < 1.25


def _frame(events: behaviour.Events, specs: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"user": events.user, "item": events.item, "kind": events.kind, "ts": events.ts_us,
                         "quantity": events.quantity, "session": events.session,
                         "searched": specs[events.session, 0] >= 0})


def test_return_visits_only_add_sessions_that_resume_a_left_mission():
    """Return visits have a stream of their own: every other event is the same draw with or without them (sessions
    renumbered one to one, queries kept). Each added session has no query and starts from an item the shopper left
    unbought in an earlier session (or, a re-purchase, one a return visit bought), and ends in a purchase more
    often than the other sessions."""
    old, new = _frame(*_sessions(SMALL, returns=False)), _frame(*_sessions(SMALL, returns=True))
    key = ["user", "item", "kind", "ts", "quantity"]
    both = old.merge(new, on=key, how="left", suffixes=("_old", "_new"), validate="one_to_one")
    assert both["session_new"].notna().all()
    assert both.groupby("session_old").session_new.nunique().max() == 1
    assert both.groupby("session_new").session_old.nunique().max() == 1
    assert (both["searched_old"] == both["searched_new"]).all()
    added = new[~new.set_index(key).index.isin(old.set_index(key).index)]
    assert 0.05 < added.session.nunique() / old.session.nunique() < 0.3
    assert not added.searched.any()
    first = added.sort_values("ts").groupby("session").head(1)
    unbought = old.groupby("session").kind.max() < 3
    left = old[old.session.map(unbought)].merge(first[["user", "item", "ts"]], on=["user", "item"],
                                                  suffixes=("", "_back"))
    left = left[left.ts < left.ts_back]
    rebuys = added[added.kind == 3].merge(first[["user", "item", "ts"]], on=["user", "item"], suffixes=("", "_back"))
    rebuys = rebuys[rebuys.ts < rebuys.ts_back]  # re-purchase sessions of what a return visit bought
    assert set(zip(first.user, first.item)) <= set(zip(left.user, left.item)) | set(zip(rebuys.user, rebuys.item))
    assert len(set(zip(first.user, first.item)) & set(zip(left.user, left.item))) > 0.9 * len(first)
    assert added.groupby("session").kind.max().eq(3).mean() > old.groupby("session").kind.max().eq(3).mean()


def test_popularity_is_zipf_like(data):
    counts = data.events.item_id.value_counts()
    top = counts.iloc[: len(data.items) // 10].sum()
    assert top / counts.sum() > 0.4


def test_titles_are_composed_from_category_words(data):
    items = data.items
    assert set(items.category) == set(vocab.CATEGORY_NAMES) and len(vocab.CATEGORY_NAMES) == 20
    nouns = {c.name: c.nouns for c in vocab.CATEGORIES}
    has_noun = [any(n in t.lower() for n in nouns[c]) for t, c in zip(items.title, items.category)]
    assert all(has_noun)
    branded = items[items.brand != ""]
    assert all(t.endswith(" by " + b) for t, b in zip(branded.title, branded.brand))
    assert items.title.str.lower().str.contains("|".join(vocab.COLOURS)).mean() > 0.3


def test_prices_follow_category_levels(data):
    medians = data.items.groupby("category").price.median()
    expected = pd.Series({c.name: c.price_median for c in vocab.CATEGORIES})
    assert np.corrcoef(np.log(medians[expected.index]), np.log(expected))[0, 1] > 0.9


def test_funnel_narrows_and_purchases_follow_carts(data):
    share = data.events.event_type.value_counts(normalize=True)
    assert share["view"] > share["click"] > share["add_to_cart"] > share["purchase"]
    assert 0.02 < share["purchase"] < 0.07 and 0.6 < share["view"] < 0.8
    ev = data.events
    carts = set(zip(ev.session_id[ev.event_type == "add_to_cart"], ev.item_id[ev.event_type == "add_to_cart"]))
    buys = ev[ev.event_type == "purchase"]
    assert all(k in carts for k in zip(buys.session_id, buys.item_id))


def test_consumables_are_bought_again(events):
    buys = events[events.event_type == "purchase"]
    sessions = buys.groupby(["user_id", "item_id", "category"]).session_id.nunique().reset_index()
    consumable = sessions.category.isin([c.name for c in vocab.CATEGORIES if c.consumable])
    repeat_share = (sessions.session_id >= 2).groupby(consumable).mean()
    assert repeat_share[True] > 0.2 and repeat_share[True] > 3 * repeat_share[False]
    assert (buys.quantity[buys.category.isin(["Coffee", "Tea", "Snacks"])] > 1).mean() > 0.1


def test_weekends_and_the_promotion_bump_are_busier(data):
    ts = data.events.timestamp
    per_day = ts.dt.floor("D").value_counts().sort_index()
    weekend = per_day.index.day_of_week >= 5
    assert per_day[weekend].mean() > 1.1 * per_day[~weekend].mean()
    bump = per_day.iloc[round(0.6 * SMALL.days) - 1 : round(0.6 * SMALL.days) + 2].mean()
    assert bump > 1.3 * per_day.iloc[round(0.6 * SMALL.days) - 14 : round(0.6 * SMALL.days) - 7].mean()


def test_queries_carry_synonyms_typos_partials_and_prices(data):
    ev = data.events
    assert 0.3 < (ev["query"] != "").mean() < 0.65
    assert ev.groupby("session_id")["query"].nunique().max() == 1  # one query per session
    queries = pd.Series(ev.loc[ev["query"] != "", "query"].unique())
    title_words = set(" ".join(data.items.title.str.lower()).split())
    synonym_words = {w for syns in vocab.SYNONYMS.values() for s in syns for w in s.split()} - title_words
    words = queries.str.split()
    assert words.map(lambda ws: bool(synonym_words & set(ws))).mean() > 0.1
    assert queries.str.contains(PRICE_PHRASE).mean() > 0.05
    known = title_words | synonym_words | {"under", "below", "less", "than"}
    unknown = words.map(lambda ws: any(w not in known and not re.fullmatch(r"\$?\d+", w) for w in ws))
    assert unknown.mean() > 0.1  # typos and cut-off words


def test_search_clicks_favour_items_matching_the_query(data, events):
    """The first view of a search session is the item the query was built from."""
    searched = events[(events["query"] != "") & (events.event_type == "view")]
    first = searched.groupby("session_id").head(1).merge(data.items[["item_id", "title"]], on="item_id")
    exact_nouns = [max((n for n in vocab.NOUNS if n in q), key=len, default="") for q in first["query"]]
    hit = np.mean([n != "" and n in t.lower() for n, t in zip(exact_nouns, first.title)])
    assert hit > 0.4


def _split(events: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    cut = pd.Timestamp(SMALL.start_date, tz="UTC") + pd.Timedelta(days=int(0.75 * SMALL.days))
    return events[events.timestamp < cut], events[(events.timestamp >= cut) & (events.event_type == "purchase")]


@pytest.mark.parametrize("attribute", ["category", "brand"])
def test_future_purchases_follow_past_tastes(events, attribute):
    """Test-window purchases land in a shopper's top-3 train categories/brands far more often than chance.

    Chance is the top-3 mass under the overall purchase distribution of that attribute.
    """
    train, test = _split(events[events[attribute] != ""])
    top3 = train.groupby("user_id")[attribute].agg(lambda s: set(s.value_counts().index[:3]))
    test = test[test.user_id.isin(top3.index)]
    hits = np.mean([a in top3[u] for u, a in zip(test.user_id, test[attribute])])
    share = test[attribute].value_counts(normalize=True)
    chance = np.mean([share.reindex(list(top3[u])).fillna(0).sum() for u in test.user_id])
    assert len(test) > 200
    assert hits > 1.8 * chance and hits > 0.5


def test_query_labels_are_graded_and_typed(data):
    labels = data.query_labels
    assert set(labels.relevance) == {0, 1, 2, 3}
    assert labels.item_id.isin(data.items.item_id).all()
    types = labels.query_id.map(query_type)
    assert set(types) == set(QUERY_TYPES)
    assert 450 <= labels.query_id.nunique() <= 550
    assert (labels[labels.relevance == 3].groupby("query_id").size() == 1).all()
    assert labels.query_id.nunique() == labels[labels.relevance == 3].query_id.nunique()
    assert not labels.duplicated(["query_id", "item_id"]).any()
    wanted = labels[labels.relevance == 3].set_index("query_id")
    typo = wanted[wanted.index.str.startswith("typo-")]
    clean = wanted.loc[typo.index.str.replace("typo-", "clean-")]
    assert (typo.item_id.to_numpy() == clean.item_id.to_numpy()).all()
    assert (typo["query"].to_numpy() != clean["query"].to_numpy()).mean() > 0.9
    assert wanted[wanted.index.str.startswith("price-")]["query"].str.contains(PRICE_PHRASE).all()


def test_exact_queries_use_words_of_the_wanted_title(data):
    labels = data.query_labels
    wanted = labels[(labels.relevance == 3) & labels.query_id.str.startswith(("exact-", "clean-"))]
    titles = data.items.set_index("item_id").title.str.lower()
    for q, item in zip(wanted["query"], wanted.item_id):
        assert all(w in titles[item].split() for w in q.split()), (q, titles[item])


def test_relevance_two_items_share_the_query_noun(data):
    labels = data.query_labels.merge(data.items[["item_id", "title", "category"]], on="item_id")
    by_query = labels.groupby("query_id")
    wanted_cat = by_query.apply(lambda g: g.category[g.relevance == 3].iloc[0], include_groups=False)
    cat_of_query = labels.query_id.map(wanted_cat)
    assert (labels.category[labels.relevance >= 1] == cat_of_query[labels.relevance >= 1]).all()
    assert (labels.category[labels.relevance == 0] != cat_of_query[labels.relevance == 0]).all()


def test_judgments_are_complete_within_the_wanted_category(data):
    """Every item of the wanted category is labelled 1..3, so an unlabelled item really is grade 0.

    For exact queries, every item whose title holds each query word is grade 2 or 3 (all of
    them, not a sample), unless its noun is a longer one holding the query's ("Travel Mug"
    for "mug").
    """
    items = data.items.set_index("item_id")
    labels = data.query_labels.join(items[["title", "category"]], on="item_id")
    checked = 0
    for qid, g in labels.groupby("query_id"):
        category = g.category[g.relevance == 3].iloc[0]
        assert set(g.item_id[g.relevance >= 1]) == set(items.index[items.category == category]), qid
        if not qid.startswith("exact-"):
            continue
        words = g["query"].iloc[0].split()
        noun = next(" ".join(words[i:]) for i in range(len(words)) if " ".join(words[i:]) in vocab.NOUNS)
        longer = [n for n in vocab.NOUNS if n != noun and noun in n]
        grade = g.set_index("item_id").relevance
        for item, title in items.title[items.category == category].str.lower().items():
            if all(w in title.split() for w in words) and not any(n in title for n in longer):
                assert grade[item] >= 2, (qid, title)
                checked += 1
    assert checked > 1000


def test_load_adds_bookkeeping_columns():
    raw = load(SampleParams(seed=3, n_items=100, n_users=50, n_events=2000, days=14))
    for name in ("items", "events", "query_labels", "service_intents", "service_phrasings"):
        frame = getattr(raw, name)
        assert (frame[SOURCE_COL] == "sample").all()
        assert (frame[ROW_COL].to_numpy() == np.arange(len(frame))).all()
        assert raw.raw_rows[name] == len(frame)
    assert raw.excluded.empty


def test_tiny_catalogue_still_generates():
    tiny = generate(SampleParams(seed=1, n_items=10, n_users=10, n_events=100, days=7))
    assert len(tiny.items) == 10 and len(tiny.events) > 0
    assert tiny.events.item_id.isin(tiny.items.item_id).all()


def test_generated_tables_are_pinned(data):
    """The shopper simulator reuses the generator's shoppers; refactoring them must not move a byte of the sample.

    The help centre's stream (service questions in the search log) is off for the events: with it on, only the
    query cells of the sessions it asks in change (tests/unit/test_sample_service.py).
    """
    import hashlib

    without_service = generate(SMALL.model_copy(update={"service_share": 0.0}))
    tables = {"items": data.items, "events": without_service.events, "query_labels": data.query_labels}
    digest = {name: hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
              .hexdigest()[:16] for name, frame in tables.items()}
    assert digest == {"items": "d71e629eeb5970f3", "events": "597f69387a00ed7f", "query_labels": "77ed13ae5e96f04b"}

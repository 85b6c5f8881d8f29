"""The shopper simulator offline: shoppers react to lists by their true tastes, and the report's statistics hold
up on simulated experiments (A/A: no more false alarms than alpha; A/B: the better list wins)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shoppers import SAMPLE, oracle_and_popularity

from shoprec.data.sources.sample import behaviour, vocab
from shoprec.experiments import simulate
from shoprec.experiments.report import Settings, report


@pytest.fixture(scope="module")
def shop() -> behaviour.Shop:
    return simulate.world(SAMPLE)


@pytest.fixture(scope="module")
def items(shop) -> pd.DataFrame:
    return pd.DataFrame({"item_id": [f"I{i:06d}" for i in range(shop.cat.n)], "price": shop.cat.price})


@pytest.fixture(scope="module")
def lists(shop) -> dict[str, dict[str, list[str]]]:
    return oracle_and_popularity(shop)


def test_react_is_a_pure_function_of_the_seed_and_lists_lead_to_clicks(shop):
    users = np.arange(200)
    t0 = np.full(200, 10 * 86400 * behaviour.US)
    empty = np.full((200, 20), -1)
    def run(shown, seed):
        rng = np.random.default_rng(seed)
        return behaviour.react(rng, shop, behaviour.intents(rng, shop, users), shown, t0)

    a, pos_a = run(empty, 1)
    b, pos_b = run(empty, 1)
    assert all(np.array_equal(getattr(a, f), getattr(b, f)) for f in a.__dataclass_fields__)
    assert (pos_a == -1).all() and np.array_equal(pos_a, pos_b)  # nothing shown: everything browsed to
    # showing each shopper what they will want (taken from the same draws) sends them through the list
    wanted = np.full((200, 20), -1)
    for s in range(200):
        mine = np.unique(a.item[a.session == s])[:20]
        wanted[s, :len(mine)] = mine
    led, position = run(wanted, 1)
    assert (position >= 0).sum() > 0.5 * len(position)
    assert len(led.item) > len(a.item)  # an examined wanted item is always viewed; browsing finds only half


def test_a_searching_visitor_types_a_query_for_the_item_they_want(shop):
    rng = np.random.default_rng(4)
    wants = behaviour.intents(rng, shop, np.arange(300))
    assert 0.3 < wants.search.mean() < 0.6 and (wants.specs[~wants.search] == -1).all()
    nouns = [vocab.NOUNS[n] for n in shop.cat.noun[wants.first]]
    searched = np.flatnonzero(wants.search)
    # most queries name the wanted item's noun (synonym, partial and typo queries change it)
    assert np.mean([nouns[v] in wants.query(v) for v in searched]) > 0.4
    first_views = behaviour.react(rng, shop, wants, np.full((300, 20), -1), np.zeros(300, np.int64))[0]
    clicked = first_views.take(np.flatnonzero(first_views.kind == 1))
    wanted = clicked.item == wants.first[clicked.session]
    searching = wants.search[clicked.session]
    assert wanted[searching].mean() > wanted[~searching].mean()  # the searched-for item is clicked more


def experiment(shop, items, lists, champion, challenger, seed, shoppers=1500, days=14):
    impressions, events = simulate.offline(shop, {"champion": lists[champion], "challenger": lists[challenger]},
                                           0.5, shoppers, seed, days, SAMPLE)
    return report(impressions, events, items, Settings("t", 0.5, pd.Timedelta(hours=24)))


def test_aa_has_few_false_alarms_and_no_sample_ratio_mismatch(shop, items, lists):
    results = [experiment(shop, items, lists, "tastes", "tastes", seed) for seed in range(10)]
    significant = sum(r["difference"]["cvr"]["p"] < 0.05 for r in results)
    assert significant <= 2 and not any(r["srm_flag"] for r in results)
    assert sum(r["decision"] == "ship" for r in results) <= 2


def test_ab_detects_the_better_list_in_the_right_direction(shop, items, lists):
    result = experiment(shop, items, lists, "popularity", "tastes", seed=1)
    assert result["difference"]["cvr"]["ci"][0] > 0 and result["decision"] == "ship"
    assert result["difference"]["ctr"]["estimate"] > 0
    reverse = experiment(shop, items, lists, "tastes", "popularity", seed=1)
    assert reverse["decision"] == "keep champion"


def test_visits_start_after_the_sample_and_follow_shopper_activity(shop):
    rng = np.random.default_rng(0)
    visits = simulate.schedule(rng, shop, np.arange(SAMPLE.n_users), 30, SAMPLE)
    assert visits.t0.min() >= SAMPLE.days * 86400 * behaviour.US and np.all(np.diff(visits.t0) >= 0)
    per_user = np.bincount(visits.user, minlength=SAMPLE.n_users)
    heavy = shop.users.sessions > np.quantile(shop.users.sessions, 0.9)
    assert per_user[heavy].mean() > 3 * per_user[~heavy].mean()
    with pytest.raises(ValueError, match="--shoppers 0: must be 1..1500"):
        simulate.pick_shoppers(rng, SAMPLE.n_users, 0)

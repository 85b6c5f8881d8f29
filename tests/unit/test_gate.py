"""The gate: a paired bootstrap over users (and queries) decides, not a difference of two means."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from shoprec.config import Params
from shoprec.evaluation.gate import BASELINES, GateRefused, per_user_scores
from shoprec.evaluation.metrics import ranking_metrics
from shoprec.evaluation.significance import paired_bootstrap
from shoprec.stages.gate import gate

ITEMS = [f"I{n:03d}" for n in range(50)]


def test_the_bootstrap_interval_is_seeded_and_as_wide_as_the_noise():
    rng = np.random.default_rng(0)
    b = rng.random(400)
    assert paired_bootstrap(b, b, 1000, 0.95, 1) | {} == {"difference": 0.0, "low": 0.0, "high": 0.0, "units": 400,
                                                          "resamples": 1000, "level": 0.95}
    shifted = paired_bootstrap(b + 0.1, b, 1000, 0.95, 1)
    assert shifted["low"] == pytest.approx(0.1) and shifted["high"] == pytest.approx(0.1)  # pairing removes b's spread

    noise = rng.normal(0.02, 0.2, 400)
    interval = paired_bootstrap(b + noise, b, 1000, 0.95, 7)
    assert interval == paired_bootstrap(b + noise, b, 1000, 0.95, 7)  # seeded
    half_width = 1.96 * noise.std(ddof=1) / np.sqrt(400)  # the normal approximation of the same interval
    assert (interval["high"] - interval["low"]) / 2 == pytest.approx(half_width, rel=0.15)
    assert interval["low"] < interval["difference"] < interval["high"]
    with pytest.raises(ValueError, match="non-empty"):
        paired_bootstrap(np.array([]), np.array([]), 1000, 0.95, 1)


def _reports(folder, gains: int, losses: int, users: int = 300, seed: int = 0) -> tuple:
    """Reports where every baseline finds a user's item in its top 20 for the same 30% of users, and
    shoprec finds it for those too, plus ``gains`` users more and ``losses`` fewer."""
    rng = np.random.default_rng(seed)
    truth = pd.DataFrame({"user_id": [f"u{n:04d}" for n in range(users)], "item_id": rng.choice(ITEMS, users)})
    truth = truth.assign(known_item=True, bought_before=False)
    base = rng.random(users) < 0.3
    ours = base.copy()
    ours[np.flatnonzero(~base)[:gains]], ours[np.flatnonzero(base)[:losses]] = True, False
    rows, metrics = [], {}
    for system in (*BASELINES, "shoprec"):
        for user, item, found in zip(truth["user_id"], truth["item_id"], ours if system == "shoprec" else base):
            ranked = [item] + [i for i in ITEMS if i != item][:19] if found else [i for i in ITEMS if i != item][:20]
            rows += [(system, view, user, rank, i) for view in ("all", "new") for rank, i in enumerate(ranked, 1)]
    lists = pd.DataFrame(rows, columns=["system", "view", "user_id", "rank", "item_id"])
    wanted = truth.groupby("user_id")["item_id"].agg(set).to_dict()
    for system, group in lists[lists["view"] == "all"].groupby("system"):
        means = ranking_metrics(group.sort_values("rank").groupby("user_id")["item_id"].agg(list).to_dict(), wanted, [20])
        metrics[system] = {"all": means, "new": means}
    folder.mkdir(exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(metrics))
    lists.to_parquet(folder / "recommendations.parquet")
    truth.to_parquet(folder / "test_truth.parquet")
    return lists, truth, metrics


def test_the_per_user_scores_average_to_the_evaluated_means(tmp_path):
    lists, truth, metrics = _reports(tmp_path, 30, 5)
    scores = per_user_scores(lists, truth, ["shoprec", "ease"], "all", "ndcg@20")
    assert scores["shoprec"].mean() == pytest.approx(metrics["shoprec"]["all"]["ndcg@20"])
    assert scores["ease"].mean() == pytest.approx(metrics["ease"]["all"]["ndcg@20"])
    bought = truth.assign(bought_before=truth.index % 2 == 0)  # the "new" view drops what the user bought before
    assert len(per_user_scores(lists, bought, ["shoprec"], "new", "ndcg@20")["shoprec"]) == len(truth) // 2


def test_a_clear_lead_passes_and_a_lead_within_noise_is_refused(tmp_path):
    _reports(tmp_path / "clear", 60, 5)
    decision = gate(tmp_path / "clear", tmp_path / "clear" / "test_truth.parquet", Params())
    assert decision["passed"] and decision["low"] > 0 and decision["units"] == 300
    assert "95% interval" in decision["reason"] and "1,000 paired resamples" in decision["reason"]
    headline = json.loads((tmp_path / "clear" / "headline.json").read_text())
    assert headline["gate"] == {"passed": True, "difference": decision["difference"], "low": decision["low"]}

    _reports(tmp_path / "close", 6, 2)  # ahead on the mean by 4 users of 300: not beyond the noise
    metrics = json.loads((tmp_path / "close" / "metrics.json").read_text())
    best = max(metrics[b]["all"]["ndcg@20"] for b in BASELINES)
    assert metrics["shoprec"]["all"]["ndcg@20"] > best
    with pytest.raises(GateRefused, match="lower bound is not above the margin 0.0"):
        gate(tmp_path / "close", tmp_path / "close" / "test_truth.parquet", Params())
    assert not json.loads((tmp_path / "close" / "gate.json").read_text())["passed"]


def test_search_is_gated_paired_over_queries(tmp_path):
    _reports(tmp_path, 60, 5)
    queries = [f"clean-{n}" for n in range(60)]
    labels = pd.DataFrame({"query_id": queries, "query": [f"words {n}" for n in range(60)], "item_id": ITEMS[0],
                           "relevance": 3})
    labels.to_parquet(tmp_path / "labels.parquet")

    def lists(hybrid_finds: int) -> None:
        rows = [(system, q, 1, ITEMS[0] if system == "lexical" and n % 2 or system == "hybrid" and n < hybrid_finds
                 else ITEMS[1]) for system in ("hybrid", "lexical") for n, q in enumerate(queries)]
        frame = pd.DataFrame(rows, columns=["system", "query_id", "rank", "item_id"])
        frame.to_parquet(tmp_path / "search_lists.parquet")
        means = {s: {"all": {"ndcg@10": float((g["item_id"] == ITEMS[0]).mean())}} for s, g in frame.groupby("system")}
        (tmp_path / "search_metrics.json").write_text(json.dumps({"queries": 60, **means}))

    lists(hybrid_finds=55)  # hybrid finds the item for 55 queries, lexical for 30
    decision = gate(tmp_path, tmp_path / "test_truth.parquet", Params(), tmp_path / "labels.parquet")
    assert decision["search"]["passed"] and decision["search"]["units"] == 60
    lists(hybrid_finds=32)  # barely ahead: refused
    with pytest.raises(GateRefused, match="gate refused the search models"):
        gate(tmp_path, tmp_path / "test_truth.parquet", Params(), tmp_path / "labels.parquet")
    assert json.loads((tmp_path / "gate.json").read_text())["passed"]  # the recommender decision stands

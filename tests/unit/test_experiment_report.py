"""The experiment report's statistics and attribution against cases computed by hand, and its bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shoprec.experiments import stats
from shoprec.experiments.attribution import ReportInputError, attribute, unit_of
from shoprec.experiments.report import Settings, markdown, report

T = lambda text: pd.Timestamp(text, tz="UTC")  # noqa: E731
DAY = Settings("t", 0.5, pd.Timedelta(hours=24))
ITEMS = pd.DataFrame({"item_id": ["i1", "i2", "i3"], "price": [10.0, 5.0, 1.0]})


def impressions(*rows) -> pd.DataFrame:
    """rows: (request_id, user, variant, items, served_at[, surface, session])."""
    full = [r + ("recommend", "")[len(r) - 5:] for r in rows]
    return pd.DataFrame({"request_id": [r[0] for r in full], "surface": [r[5] for r in full],
                         "user_id": [r[1] for r in full], "session_id": [r[6] for r in full],
                         "model_version": [r[2] + "-model" for r in full], "variant": [r[2] for r in full],
                         "item_ids": [list(r[3]) for r in full], "query": "",
                         "served_at": [T(r[4]) for r in full]})


def events(*rows) -> pd.DataFrame:
    """rows: (user, item, type, time[, request_id[, quantity[, session]]])."""
    full = [r + ("", "1", "")[len(r) - 4:] for r in rows]
    return pd.DataFrame({"user_id": [r[0] for r in full], "item_id": [r[1] for r in full],
                         "event_type": [r[2] for r in full], "timestamp": [T(r[3]).isoformat() for r in full],
                         "session_id": [r[6] for r in full], "query": "", "quantity": [r[5] for r in full],
                         "request_id": [r[4] for r in full], "position": ""})


def credited(imps: pd.DataFrame, evs: pd.DataFrame, hours: float = 24) -> pd.DataFrame:
    imps = imps.assign(unit=unit_of(imps["user_id"], imps["session_id"]))
    evs = evs.assign(timestamp=pd.to_datetime(evs["timestamp"], utc=True).astype("datetime64[ns, UTC]"))
    return attribute(imps.assign(served_at=imps["served_at"].astype("datetime64[ns, UTC]")), evs,
                     pd.Timedelta(hours=hours))


def test_a_purchase_goes_to_the_latest_impression_that_showed_the_item_within_the_window():
    imps = impressions(("r1", "a", "champion", ["i1", "i2"], "2024-05-01 10:00"),
                       ("r2", "a", "champion", ["i3", "i2"], "2024-05-01 11:00"),  # latest showing i2 before 12:00
                       ("r3", "a", "champion", ["i2"], "2024-05-01 13:00"))  # after the purchase: not it
    evs = events(("a", "i2", "purchase", "2024-05-01 12:00"),
                 ("a", "i1", "purchase", "2024-05-02 10:30"),  # r1 was 24.5 h before: outside the window
                 ("a", "i1", "view", "2024-05-01 10:01"))  # views are not outcomes
    got = credited(imps, evs)
    assert got[["item_id", "credited_request", "shown_position"]].values.tolist() == [["i2", "r2", 1]]
    assert len(credited(imps, evs, hours=25)) == 2  # a wider window reaches r1 for the i1 purchase


def test_a_named_request_wins_over_the_latest_and_anonymous_visitors_match_by_session():
    imps = impressions(("r1", "a", "challenger", ["i1"], "2024-05-01 10:00"),
                       ("r2", "a", "champion", ["i1"], "2024-05-01 11:00"),
                       ("r3", "", "champion", ["i3"], "2024-05-01 11:00", "search", "s9"))
    evs = events(("a", "i1", "click", "2024-05-01 11:30", "r1"),  # named r1 although r2 is more recent
                 ("a", "i1", "click", "2024-05-01 11:31", "r-unknown"),  # unknown id: the rule -> r2
                 ("a", "i3", "purchase", "2024-05-01 11:40", "", "1", "s9"))  # anonymous r3 via its session
    got = credited(imps, evs)
    assert got["credited_request"].tolist() == ["r1", "r2", "r3"]
    assert got["variant"].tolist() == ["challenger", "champion", "champion"]


def test_mean_and_delta_method_ratio_match_hand_computation():
    m = stats.mean(np.array([1, 0, 0, 0]))  # p = 1/4, s^2 = 0.75 / 3 = 0.25, var = 0.25 / 4
    assert (m.value, m.variance) == pytest.approx((0.25, 0.0625))
    # clicks x = [1, 0, 2], impressions y = [2, 2, 4]: R = 3/8; s_x^2 = 1, s_y^2 = 4/3, s_xy = 1, ybar = 8/3
    # var = (1 - 2 (3/8) 1 + (3/8)^2 (4/3)) / (3 (8/3)^2) = 0.4375 / 21.333 = 0.0205078125
    r = stats.ratio(np.array([1, 0, 2]), np.array([2, 2, 4]))
    assert (r.value, r.variance) == pytest.approx((0.375, 0.0205078125))


def test_difference_interval_and_p_value_match_hand_computation():
    control, treatment = stats.mean(np.array([1, 0, 0, 0])), stats.mean(np.array([1, 1, 0, 0]))
    d = stats.difference(control, treatment, 0.95)
    se = (0.0625 + 1 / 12) ** 0.5  # 0.381881: treatment s^2 = 1/3, var = 1/12
    assert (d.estimate, d.se) == pytest.approx((0.25, se))
    assert (d.low, d.high) == pytest.approx((0.25 - 1.959964 * se, 0.25 + 1.959964 * se))  # [-0.4985, 0.9985]
    assert d.p == pytest.approx(0.512691, abs=1e-6)  # 2 (1 - Phi(0.6547))
    assert stats.mde(se, 0.95, 0.8) == pytest.approx((1.959964 + 0.841621) * se)


def test_srm_chi_square_matches_hand_computation():
    assert stats.srm_p(60, 40, 0.5) == pytest.approx(0.0455003, abs=1e-6)  # chi2 = 2 x 10^2 / 50 = 4
    assert stats.srm_p(60, 40, 0.4) == pytest.approx(1.0)  # exactly the designed 60/40
    assert stats.srm_p(700, 300, 0.5) < 1e-30  # chi2 = 160


def arms(control: list[int], treatment: list[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One impression of [i1, i2] per user (10:00); converted users buy i1 (qty 2) at 11:00, after a click."""
    imps, evs = [], []
    for variant, converted in (("champion", control), ("challenger", treatment)):
        for n, bought in enumerate(converted):
            user = f"{variant}-{n}"
            imps.append((f"r-{user}", user, variant, ["i1", "i2"], "2024-05-01 10:00"))
            if bought:
                evs += [(user, "i1", "click", "2024-05-01 10:30", f"r-{user}"),
                        (user, "i1", "purchase", "2024-05-01 11:00", "", "2")]
    return impressions(*imps), events(*evs)


def test_report_of_a_small_experiment_matches_hand_computation():
    imps, evs = arms([1, 0, 0, 0], [1, 1, 0, 0])
    result = report(imps, evs, ITEMS, DAY)
    champion, challenger = result["variants"]["champion"], result["variants"]["challenger"]
    assert (champion["users"], champion["impressions"], champion["cvr"]) == (4, 4, 0.25)
    assert (challenger["ctr"], challenger["cvr"]) == (0.5, 0.5)
    assert challenger["revenue_per_impression"] == pytest.approx(2 * 2 * 10.0 / 4)  # 2 purchases x qty 2 x 10
    assert challenger["ctr_by_position"][:3] == [0.5, 0.0, None]  # position 2 was never shown
    diff = result["difference"]["cvr"]
    assert diff["estimate"] == pytest.approx(0.25) and diff["ci"] == pytest.approx([-0.498474, 0.998474], abs=1e-5)
    assert result["srm_p"] == pytest.approx(1.0) and result["decision"] == "keep running"
    assert result["mde"] == pytest.approx(2.801585 * 0.381881, abs=1e-5)
    assert "keep running" in markdown(result)


def test_answers_served_before_the_experiment_started_are_left_out():
    imps, evs = arms([1, 0, 0, 0], [1, 1, 0, 0])
    alone = report(imps, evs, ITEMS, DAY)
    # Before it: the champion served alone (a shopper who bought from it), then an earlier challenger model.
    earlier = impressions(("r-old-0", "old-0", "champion", ["i1"], "2024-04-30 10:00"),
                          ("r-old-1", "old-1", "challenger", ["i2"], "2024-04-30 12:00"))
    earlier.loc[1, "model_version"] = "retrain-0"
    bought = events(("old-0", "i1", "purchase", "2024-05-01 10:30", "r-old-0"))
    result = report(pd.concat([earlier, imps], ignore_index=True), pd.concat([bought, evs], ignore_index=True),
                    ITEMS, DAY)
    assert result["impressions_before_start"] == 2 and result["started_at"] == T("2024-05-01 10:00").isoformat()
    assert result["variants"] == alone["variants"] and result["unattributed_events"] == alone["unattributed_events"]


def test_decisions_ship_keep_champion_and_srm():
    better = [1] * 40 + [0] * 60
    imps, evs = arms([1] * 10 + [0] * 90, better)  # 0.10 vs 0.40: se 0.0592, interval above zero
    assert report(imps, evs, ITEMS, DAY)["decision"] == "ship"
    imps, evs = arms(better, [1] * 10 + [0] * 90)
    assert report(imps, evs, ITEMS, DAY)["decision"] == "keep champion"
    imps, evs = arms([1] * 10 + [0] * 90, [1] * 40 + [0] * 60)
    skewed = report(imps, evs, ITEMS, Settings("t", 0.2, DAY.window))  # 100/100 where 160/40 was designed
    assert skewed["srm_flag"] and skewed["decision"] == "keep running" and "sample-ratio" in skewed["reason"]


def test_a_worse_zero_result_guardrail_stops_a_ship():
    imps, evs = arms([1] * 10 + [0] * 90, [1] * 40 + [0] * 60)
    searches = impressions(*[(f"s-{v}-{n}", f"{v}-{n}", v, [] if v == "challenger" else ["i3"], "2024-05-01 09:00",
                              "search", "") for v in ("champion", "challenger") for n in range(100)])
    result = report(pd.concat([imps, searches], ignore_index=True), evs, ITEMS, DAY)
    assert result["variants"]["challenger"]["zero_result_rate"] == 1.0
    assert result["guardrails"]["zero_result_rate"]["worse"] and result["decision"] == "keep running"


@pytest.mark.parametrize("case, message", [
    ("no_column", "impressions: missing column(s) variant"),
    ("empty", "impressions: none logged"),
    ("one_variant", "needs 'champion' and one challenger, found ['champion']"),
    ("bad_time", "feedback.timestamp: not ISO 8601 times"),
    ("no_price", "items: missing column(s) price"),
])
def test_bad_input_is_a_clear_message(case, message):
    imps, evs = arms([1, 0], [1, 0])
    items = ITEMS
    if case == "no_column":
        imps = imps.drop(columns="variant")
    elif case == "empty":
        imps = imps.iloc[:0]
    elif case == "one_variant":
        imps = imps[imps["variant"] == "champion"]
    elif case == "bad_time":
        evs = evs.assign(timestamp="yesterday")
    else:
        items = ITEMS.drop(columns="price")
    with pytest.raises(ReportInputError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        report(imps, evs, items, DAY)


def test_the_command_without_logs_says_what_to_run(tmp_path):
    result = subprocess.run([str(Path(sys.executable).with_name("shoprec")), "experiment", "report", "--json"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "data/impressions: no impressions-*.parquet batches; run shoprec export-impressions" in result.stderr

"""Experiment arms: a stable hash of the shopper, the share honoured, bad settings refused with the rule."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import yaml

from shoprec.config import ParamsError, load_params
from shoprec.experiments.assignment import CHALLENGER, CHAMPION, assign, position

N = 20_000


def test_the_same_shopper_always_gets_the_same_arm_in_a_new_process():
    """No state: another interpreter (another worker, a restart) computes the same arms."""
    users = [f"user-{i}" for i in range(200)]
    here = [assign("s1", 0.3, u, None) for u in users]
    there = subprocess.run(
        [sys.executable, "-c", "import sys; from shoprec.experiments.assignment import assign; "
                               "print(' '.join(assign('s1', 0.3, u, None) for u in sys.argv[1:]))", *users],
        capture_output=True, text=True, check=True).stdout.split()
    assert here == there
    assert set(here) == {CHAMPION, CHALLENGER}


@pytest.mark.parametrize("share", [0.05, 0.5, 0.9])
def test_the_challenger_share_is_within_binomial_tolerance(share):
    """Over N shoppers the challenger count is Binomial(N, share): within 4 standard deviations
    (a false alarm once in ~16,000 runs of a correct hash), and a wrong share (+-0.02) fails it."""
    count = sum(assign("exp-salt", share, f"u{i}", None) == CHALLENGER for i in range(N))
    sd = math.sqrt(N * share * (1 - share))
    assert abs(count - N * share) <= 4 * sd, (count, N * share, sd)
    assert 4 * sd < 0.02 * N  # the tolerance is tight enough to catch a share off by 2 points


def test_positions_are_uniform_and_a_new_salt_draws_new_arms():
    us = sorted(position("a", f"u{i}") for i in range(N))
    ks = max(abs(u - (i + 1) / N) for i, u in enumerate(us))  # Kolmogorov-Smirnov distance to U(0, 1)
    assert ks < 1.63 / math.sqrt(N)  # the 1% critical value
    same = sum((position("a", f"u{i}") < 0.5) == (position("b", f"u{i}") < 0.5) for i in range(N))
    assert abs(same - N / 2) <= 4 * math.sqrt(N / 4)  # independent under another salt: agree half the time


def test_a_larger_share_only_moves_shoppers_to_the_challenger():
    small = {u for u in map(str, range(2000)) if assign("s", 0.1, u, None) == CHALLENGER}
    large = {u for u in map(str, range(2000)) if assign("s", 0.3, u, None) == CHALLENGER}
    assert small < large


def test_the_unit_is_the_user_then_the_session_and_nobody_gets_the_champion():
    user = next(u for u in map(str, range(100)) if assign("s", 0.5, u, None) == CHALLENGER)
    session = next(s for s in map(str, range(100, 200)) if assign("s", 0.5, s, None) == CHAMPION)
    assert assign("s", 0.5, user, session) == CHALLENGER  # a signed-in shopper: the user id decides
    assert assign("s", 0.5, None, user) == CHALLENGER  # an anonymous visitor: the session id decides
    assert assign("s", 1.0, None, None) == CHAMPION  # nothing to follow: not in the experiment
    assert {assign("s", 0.0, u, None) for u in map(str, range(100))} == {CHAMPION}
    assert {assign("s", 1.0, u, None) for u in map(str, range(100))} == {CHALLENGER}


@pytest.mark.parametrize("experiment, says", [
    ({"name": "e1", "challenger": "shoprec:x", "salt": "s", "share": 1.5},
     "serving.experiment.share: Value error, the challenger's traffic share must lie in [0, 1], e.g. 0.1"),
    ({"name": "e1", "challenger": "shoprec:x", "salt": "s", "share": -0.1}, "must lie in [0, 1]"),
    ({"name": "e1", "challenger": "shoprec:x"}, "experiment 'e1' has no salt: set serving.experiment.salt, e.g. salt:"),
    ({"name": "e1", "salt": "s"}, "experiment 'e1' names no challenger: set serving.experiment.challenger"),
    ({"name": "e1", "challenger": "shoprec:x", "salt": "s", "shares": 0.1}, "serving.experiment.shares: Extra inputs"),
])
def test_a_bad_experiment_is_refused_naming_the_field_and_the_rule(tmp_path, experiment, says):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"serving": {"experiment": experiment}}))
    with pytest.raises(ParamsError) as refused:
        load_params(path)
    assert str(refused.value).startswith(f"{path}: serving.experiment") and says in str(refused.value)


def test_no_name_means_no_experiment_and_the_defaults_are_valid(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"serving": {"experiment": {"name": "", "share": 0.2}}}))
    assert load_params(path).serving.experiment.name == ""
    assert load_params().serving.experiment.name == ""  # the repository's params.yaml runs none

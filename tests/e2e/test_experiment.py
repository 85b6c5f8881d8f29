"""A/B experiments in a real `shoprec serve`: two models in one service, each shopper's arm by a stable
hash, every answer and impression naming its arm and model; bad experiments refused at start."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pandas as pd
import pytest
from served_experiment import SERVED_EXPERIMENT, with_experiment

from shoprec.config import load_params
from shoprec.experiments.assignment import CHALLENGER, CHAMPION, assign
from shoprec.layout import BundleFiles, Layout
from shoprec.serving.bundle import GATED, SYSTEMS, build_bundle

pytestmark = pytest.mark.slow

SHOPREC = str(Path(sys.executable).with_name("shoprec"))


def test_package_system_packages_each_baseline_with_the_lists_the_evaluation_scored(pipeline_run, tmp_path):
    """Every baseline's bundle holds, for each test shopper and view, the list the evaluate stage
    computed for it (reports/recommendations.parquet): the same scorer, the same top-k rule."""
    root = pipeline_run.root
    params = load_params(root / "params.yaml")
    evaluated = pd.read_parquet(root / "reports/recommendations.parquet")
    items = pd.read_parquet(root / "data/clean/items.parquet")["item_id"].to_numpy()
    versions = set()
    for name in (s for s in SYSTEMS if s != GATED):
        bundle = BundleFiles(build_bundle(Layout(root), params, tmp_path / name, root / "params.yaml", name))
        manifest = json.loads(bundle.manifest.read_text())
        assert manifest["system"] == name and manifest["version"].startswith(f"{name}-")
        versions.add(manifest["version"])
        lists = pd.read_parquet(bundle.lists)
        for view in ("all", "new"):
            expected = evaluated[(evaluated["system"] == name) & (evaluated["view"] == view)]
            expected = expected.sort_values(["user_id", "rank"]).groupby("user_id")["item_id"].agg(list)
            got = lists[(lists["view"] == view) & lists["user_id"].isin(expected.index)].sort_values(["user_id", "rank"])
            got = got.groupby("user_id")["item"].agg(lambda rows: list(items[rows]))
            assert len(got) == len(expected) > 0
            assert (got == expected.loc[got.index]).all(), f"{name}/{view}: the bundle's lists differ"
    assert len(versions) == len(SYSTEMS) - 1  # each its own tag
    refused = subprocess.run([SHOPREC, "package", "--system", "random", "--no-bento"], cwd=root, capture_output=True,
                             text=True, timeout=120)
    assert refused.returncode == 1 and "--system 'random' is not a system shoprec evaluates" in refused.stderr
    assert "e.g. --system popularity" in refused.stderr


def test_an_experiment_serves_each_shopper_from_the_model_of_their_arm(experiment_served, package_record,
                                                                        popularity_package):
    from impressions import logged

    server, salt, share = experiment_served, SERVED_EXPERIMENT["salt"], SERVED_EXPERIMENT["share"]
    post = lambda route, body: httpx.post(f"{server.url}/{route}", json=body, timeout=30).json()  # noqa: E731
    assert popularity_package["model_tag"].startswith("shoprec:popularity-")
    users = post("users", {"limit": 40})["users"]
    arm = {u: assign(salt, share, u, None) for u in users}
    assert set(arm.values()) == {CHAMPION, CHALLENGER}, "pick another salt: one arm has none of these shoppers"
    tags = {CHAMPION: package_record["model_tag"], CHALLENGER: popularity_package["model_tag"]}
    answers = {u: post("recommend", {"user_id": u, "k": 10}) for u in users}
    for user, answer in answers.items():
        assert (answer["variant"], answer["model_version"]) == (arm[user], tags[arm[user]])
    # The challenger answers popularity's list, the same for every shopper; the champion's are personal.
    lists = {CHAMPION: set(), CHALLENGER: set()}
    for user, answer in answers.items():
        lists[arm[user]].add(tuple(i["item_id"] for i in answer["items"]))
    assert len(lists[CHALLENGER]) == 1 and len(lists[CHAMPION]) > 1
    # An anonymous search is assigned by its session; a look with no id at all is the champion's.
    sessions = {s: assign(salt, share, None, s) for s in (f"web-{n}" for n in range(8))}
    searched = {s: post("search", {"query": "red", "session_id": s, "k": 5}) for s in sessions}
    assert {s: a["variant"] for s, a in searched.items()} == sessions
    assert set(sessions.values()) == {CHAMPION, CHALLENGER}
    item = answers[users[0]]["items"][0]["item_id"]
    anonymous = post("similar", {"item_id": item, "k": 5})
    assert (anonymous["variant"], anonymous["model_version"]) == (CHAMPION, tags[CHAMPION])
    shown = [*answers.values(), *searched.values(), anonymous]
    stored = logged(server.feedback_db, [a["request_id"] for a in shown])
    assert len(stored) == len(shown)
    for answer in shown:
        row = stored.loc[answer["request_id"]]
        assert (row["variant"], row["model_version"]) == (answer["variant"], answer["model_version"])
    assert f"experiment {SERVED_EXPERIMENT['name']}: 0.5 of shoppers get" in server.log.read_text()


@pytest.mark.parametrize("experiment, says", [
    ({"name": "e", "challenger": "shoprec:no-such-model", "salt": "s"},
     "serving.experiment.challenger 'shoprec:no-such-model' is not in the BentoML model store"),
    ({"name": "e", "challenger": "shoprec:x", "salt": "s", "share": 1.2},
     "serving.experiment.share: Value error, the challenger's traffic share must lie in [0, 1]"),
    ({"name": "e", "challenger": "shoprec:x"}, "serving.experiment: Value error, experiment 'e' has no salt"),
    ({"name": "e", "challenger": "pending", "salt": "s"},
     "serving.experiment.challenger is 'pending' but var/challenger.json does not exist: the feedback flow writes it"),
])
def test_a_bad_experiment_refuses_to_start_with_the_field_and_the_rule(pipeline_run, package_record, tmp_path,
                                                                       experiment, says):
    params = with_experiment(pipeline_run.root, tmp_path, experiment)
    served = subprocess.run([SHOPREC, "serve", "--port", "0", "--feedback-db", str(tmp_path / "f.db"),
                             "--params", str(params)], cwd=pipeline_run.root, capture_output=True, text=True,
                            timeout=120)
    assert served.returncode != 0 and says in served.stdout + served.stderr
    assert "Traceback" not in served.stderr

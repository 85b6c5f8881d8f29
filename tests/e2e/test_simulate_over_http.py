"""`shoprec simulate` against a real `shoprec serve` (bentoml serve): simulated shoppers ask /recommend and
/search, react by the sample generator's tastes and post feedback that lands attributed to the answers that
showed the items."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from impressions import logged

from shoprec.serving.sqlite_store import SqliteStore

pytestmark = pytest.mark.slow


def test_simulated_feedback_lands_attributed_to_stored_impressions(served, pipeline_run):
    done = subprocess.run([str(Path(sys.executable).with_name("shoprec")), "simulate", "--url", served.url,
                           "--shoppers", "60", "--seed", "5", "--days", "7",
                           "--params", str(pipeline_run.root / "params.yaml")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    posted = sum(summary["events"].values())
    assert summary["visits"] > 0 and summary["variants"] == {"champion": summary["visits"]}
    assert summary["surfaces"]["recommend"] > 0 and summary["surfaces"]["search"] > 0
    assert summary["feedback"]["accepted"] == posted and summary["feedback"]["rejected"] == 0
    assert summary["clock"][0].startswith("2024-04-30")  # after the sample's last day (start 2024-01-01 + 120 days)

    events = SqliteStore(served.feedback_db).events()
    mine = events[events["session_id"].str.startswith("sim5-")]
    assert len(mine) == posted
    led = mine[mine["request_id"] != ""]
    assert len(led) == sum(summary["from_lists"].values()) > 0
    shown = logged(served.feedback_db, sorted(set(led["request_id"])))
    assert set(led["request_id"]) <= set(shown.index)  # every list-led event names an answer that was logged
    for event in led.itertuples():
        assert shown.loc[event.request_id, "item_ids"][int(event.position)] == event.item_id
        assert shown.loc[event.request_id, "session_id"] == event.session_id
    assert set(shown["surface"]) == {"recommend", "search"}  # searches led to events too

"""The daily experiment flow for real: simulated traffic through a real store and its exports, Prefect's test
server, the report published as a markdown artifact; and `shoprec promote --from-experiment` refusing a
non-ship decision."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from repo_copy import REPO
from shoppers import SAMPLE, oracle_and_popularity

from shoprec.experiments import simulate
from shoprec.orchestration.deployments import load_flow
from shoprec.serving.sqlite_store import SqliteStore
from shoprec.serving.store import Impression


def logged(root: Path, champion: str, challenger: str, seed: int) -> None:
    """Simulated shoppers' impressions and feedback stored in a real store, then exported as the service's are."""
    shop = simulate.world(SAMPLE)
    lists = oracle_and_popularity(shop)
    impressions, events = simulate.offline(shop, {"champion": lists[champion], "challenger": lists[challenger]},
                                           0.5, 1500, seed, 14, SAMPLE)
    store = SqliteStore(root / "var/feedback.db")
    store.append_impressions([Impression(r.request_id, r.surface, r.user_id, r.session_id, r.model_version, r.variant,
                                         tuple(r.item_ids), r.query, r.served_at.timestamp())
                              for r in impressions.itertuples()])
    records = [{k: v for k, v in row.items() if v != ""} for row in events.to_dict("records")]
    assert store.append(records, None)["accepted"] == len(records)
    store.export_events(root / "data/feedback")
    store.export_impressions(root / "data/impressions", keep_days=100_000)
    (root / "data/clean").mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"item_id": [f"I{i:06d}" for i in range(shop.cat.n)], "price": shop.cat.price}).to_parquet(
        root / "data/clean/items.parquet")


@pytest.fixture
def repo(tmp_path) -> Path:
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(REPO / "flows", tmp_path / "flows")
    return tmp_path


def test_the_daily_flow_publishes_the_report_and_explains_a_missing_one(harness, repo):
    flow = load_flow("flows/experiment.py:experiment", repo)
    empty = flow(root=str(repo))
    assert empty["decision"] is None and "no impressions-*.parquet batches" in empty["error"]

    logged(repo, "popularity", "tastes", seed=1)
    result = flow(root=str(repo), name="tastes-vs-popularity")
    assert result["decision"] == "ship" and result["experiment"] == "tastes-vs-popularity"
    assert result["variants"]["challenger"]["model_version"] == "challenger"
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["shoprec-experiment"])))
    pages = [a.data for a in found]
    assert any(page.startswith("# Experiment tastes-vs-popularity: ship") for page in pages)
    assert any(page.startswith("# No experiment report") for page in pages)


def test_promote_from_experiment_refuses_unless_the_report_says_ship(repo):
    logged(repo, "tastes", "tastes", seed=2)
    done = subprocess.run([str(Path(sys.executable).with_name("shoprec")), "promote", "--from-experiment"],
                          cwd=repo, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "not promoted: experiment champion-vs-challenger says 'keep running'" in done.stderr
    assert not (repo / "var/promoted.json").exists()

"""`dvc repro` for real, in a scratch copy of the repository, on a small sample storefront."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
from shoprec.evaluation.gate import per_user_scores
from repo_copy import SMALL_SAMPLE as SMALL  # noqa: F401  (re-exported for other pipeline tests)

STAGES = ("ingest", "validate", "split", "finetune_text", "embed_items", "train_retrieval", "train_ranking", "evaluate", "gate")
SYSTEMS = {"popularity", "own_history", "itemknn", "ease", "two_tower", "shoprec"}


def dvc(root, *args):
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True)


def test_first_run_runs_every_stage_and_second_run_nothing(pipeline_run):
    out = pipeline_run.first.stdout
    for stage in STAGES:
        assert f"Running stage '{stage}'" in out, pipeline_run.first.stderr[-2000:] + out[-2000:]
        # `shoprec run` says when each stage starts and how long it took, in DAG order
        assert out.index(f"] {stage}: running") < out.index(f"] {stage}: ran in ")
    assert [out.index(f"] {stage}: running") for stage in STAGES] == sorted(
        out.index(f"] {stage}: running") for stage in STAGES)
    assert "Epoch 1/" in out and "pipeline done in" in out  # the stages' own progress passes through
    second = dvc(pipeline_run.root, "repro")
    gate = json.loads((pipeline_run.root / "reports/gate.json").read_text())
    # a refused gate fails the run again (it is the only stage that "changes" nothing and still exits 1)
    assert (second.returncode == 0) == gate["passed"]
    assert "Running stage" not in second.stdout or (not gate["passed"] and "'gate'" in second.stdout)


def test_data_stages_keep_rows_and_cut_in_time(pipeline_run):
    repo = pipeline_run.root
    report = json.loads((repo / "data/clean/validation.json").read_text())
    for table in report["tables"].values():
        assert table["raw_rows"] == table["clean_rows"] + table["quarantined_rows"]
    split = json.loads((repo / "data/split/split.json").read_text())
    train = pd.read_parquet(repo / "data/split/train.parquet")
    test = pd.read_parquet(repo / "data/split/test.parquet")
    assert train["timestamp"].max() < pd.Timestamp(split["test_start"]) <= test["timestamp"].min()
    assert set(test["user_id"]) <= set(train["user_id"])


def test_metrics_recommendations_and_gate(pipeline_run):
    repo = pipeline_run.root
    gate = json.loads((repo / "reports/gate.json").read_text())
    assert (pipeline_run.first.returncode == 0) == gate["passed"], pipeline_run.first.stderr[-2000:]
    assert gate["best_baseline"] in {"popularity", "own_history", "itemknn", "ease"} and gate["reason"]
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    assert SYSTEMS == set(metrics)
    assert gate["low"] <= gate["difference"] <= gate["high"] and gate["resamples"] == 1000 and gate["units"] > 0
    # The gate's per-user scores, recomputed from the lists and the split's truth, average to evaluate's means.
    lists, truth = pd.read_parquet(repo / "reports/recommendations.parquet"), pd.read_parquet(
        repo / "data/split/test_truth.parquet")
    for view in ("all", "new"):
        for system, scores in per_user_scores(lists, truth, ["shoprec", "own_history"], view, "ndcg@20").items():
            assert scores.mean() == pytest.approx(metrics[system][view]["ndcg@20"], abs=1e-6), (system, view)
    headline = json.loads((repo / "reports/headline.json").read_text())
    assert headline["gate"]["passed"] == gate["passed"]
    assert headline["recommend"]["shoprec"]["all"]["ndcg@20"] == gate["value"] == metrics["shoprec"]["all"]["ndcg@20"]
    for system in SYSTEMS:
        for view in ("all", "new"):
            m = metrics[system][view]
            assert 0.0 <= m["recall@20"] <= 1.0 and 0.0 <= m["ndcg@20"] <= 1.0
        assert "activity:3-9" in metrics[system]["slices"]
    assert set(metrics["shoprec"]["heads"]) == {"purchase", "click"}
    assert metrics["shoprec"]["heads"]["purchase"]["auc"] > 0.6
    recs = pd.read_parquet(repo / "reports/recommendations.parquet")
    assert list(recs.columns) == ["system", "view", "user_id", "rank", "item_id"]
    assert set(recs["system"]) == SYSTEMS and recs["rank"].between(1, 100).all()
    # the learned systems must beat popularity on their own split
    for system in ("two_tower", "shoprec"):
        assert metrics[system]["all"]["ndcg@20"] > metrics["popularity"]["all"]["ndcg@20"]


def test_the_bundle_is_the_same_bytes_when_built_again(pipeline_run, tmp_path):
    """The package stage's output carries no run details (commit, tags, times): rebuilt from the same
    models it is byte for byte the same, so its dvc.lock entry does not change (see also
    test_flows: a second run of every training stage records the same hashes)."""
    from shoprec.config import load_params
    from shoprec.layout import BundleFiles, Layout
    from shoprec.serving.bundle import build_bundle

    repo = Layout(pipeline_run.root)
    again = BundleFiles(build_bundle(repo, load_params(pipeline_run.root / "params.yaml"), tmp_path / "bundle",
                                     pipeline_run.root / "params.yaml"))
    assert again.manifest.read_bytes() == repo.bundle.manifest.read_bytes()
    assert (pipeline_run.root / "var/package.json").is_file() and (pipeline_run.root / "var/runs").is_dir()


def test_plots_draw_one_line_per_system_and_per_model(pipeline_run):
    """The rendered Vega-Lite specs, as `dvc plots show` builds them: a series per system / model."""
    shown = dvc(pipeline_run.root, "plots", "show", "--json")
    assert shown.returncode == 0, shown.stderr[-2000:]
    specs = {name: plots[0]["content"] for name, plots in json.loads(shown.stdout)["data"].items()}

    def series(name: str) -> set[str]:
        return set(specs[name]["encoding"]["strokeDash"]["scale"]["domain"])

    assert series("reports/recall_curves.csv") == SYSTEMS
    assert series("losses") == {"retrieval/losses.csv::two_tower_replay", "retrieval/losses.csv::two_tower_final",
                                "ranking/losses.csv::ranker", "search/query_model/losses.csv::query_tower",
                                "text_encoder/losses.csv::text_encoder", "text_encoder/losses.csv::text_encoder_held_out"}
    curve = [row for row in specs["reports/recall_curves.csv"]["data"]["values"] if row["field"] == "shoprec"]
    assert [int(row["k"]) for row in curve] == [10, 20, 50, 100]


def test_dvc_metrics_read_the_headline_only(pipeline_run):
    shown = dvc(pipeline_run.root, "metrics", "show", "--json")
    assert shown.returncode == 0, shown.stderr[-2000:]
    (revision,) = json.loads(shown.stdout).values()  # the workspace only
    files = revision["data"]
    assert set(files) == {"reports/headline.json"}
    headline = files["reports/headline.json"]["data"]
    assert set(headline) == {"recommend", "search", "search_logged", "gate"}
    assert set(headline["recommend"]) == SYSTEMS and set(headline["recommend"]["shoprec"]) == {"all", "new"}
    assert set(headline["recommend"]["shoprec"]["all"]) == {"recall@20", "ndcg@20"}
    assert "hybrid" in headline["search"] and "seconds" not in json.dumps(headline)


def test_the_fine_tuned_minilm_is_the_one_the_catalog_and_the_bundle_use(pipeline_run):
    """The suite's run fine-tunes MiniLM's top layer (repo_copy.TINY_FINETUNE): only that layer moved, on
    all three kinds of pairs, and the catalog vectors and the bundle's tokenizer come from that model."""
    import numpy as np

    from shoprec.config import load_params
    from shoprec.layout import Layout
    from shoprec.text import MiniLMEncoder, embed_texts, item_text
    from shoprec.text.catalog_embeddings import read_embeddings
    from shoprec.text.weights import package_model_dir, read_weights

    repo, params = Layout(pipeline_run.root), load_params(pipeline_run.root / "params.yaml")
    assert params.text.finetune_layers == 1
    summary = json.loads(repo.text_model.summary.read_text())
    assert summary["fine_tuned"] and set(summary["pairs"]) == {"query", "basket", "title"}
    losses = pd.read_csv(repo.text_model.losses)
    assert len(losses) == summary["epochs_run"] and losses["text_encoder_held_out"].notna().all()
    tuned, pretrained = read_weights(repo.text_model.folder), read_weights(package_model_dir())
    moved = {name for name in pretrained if not np.array_equal(tuned[name], pretrained[name])}
    assert moved and all(name.startswith("encoder.layer.5.") for name in moved)
    items = pd.read_parquet(repo.items).head(16)
    ids, vectors = read_embeddings(repo.text_embeddings)
    encoder = MiniLMEncoder(repo.text_model.folder, max_length=params.text.max_length)
    np.testing.assert_allclose(embed_texts(item_text(items), encoder, progress=False), vectors[:16], atol=1e-5)
    assert repo.bundle.text_vocab.read_bytes() == (repo.text_model.folder / "vocab.txt").read_bytes()

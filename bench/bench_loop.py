"""The online loop, once, end to end: simulated traffic -> feedback flow -> retrain -> gate -> experiment
with the retrained model as challenger -> report -> promotion.

Every step is the project's own command, run in a throwaway copy of the repo (tests/helpers/repo_copy.py)
with its own BentoML and Prefect homes, against real servers on 127.0.0.1:

1. ``shoprec run`` (the pipeline, with packaging) and ``shoprec promote --model TAG``: the champion;
2. ``shoprec serve`` and ``shoprec simulate`` (``--shoppers`` shoppers, ``--days`` simulated days, seed 0);
3. ``shoprec flow feedback``: exports, and past ``serving.feedback_min_events`` retrains (the gate may
   stop it), smoke-tests, and leaves the new model as the pending challenger;
4. ``serving.experiment`` = the pending challenger at ``share`` 0.5; ``shoprec serve`` again and
   ``shoprec simulate`` (seed 1);
5. ``shoprec export-impressions`` / ``export-feedback``, ``shoprec experiment report --json``,
   ``shoprec promote --from-experiment`` (promotes only on 'ship'; its refusal is a result too).

The copy sets ``split.test_start.sample: ""`` (the test window is the last ``split.test_days`` of
whatever data there is, so the retrain learns from the simulated days before it; docs/experiments.md)
and ``serving.feedback_min_events`` to ``--min-events``.

    python bench/bench_loop.py [--sample small|default] [--shoppers 300] [--days 28] [--min-events 500]
                               [--past-gate MARGIN] [--out FILE]

``--past-gate``: when the gate stops the retrain (step 3), set ``gate.margin`` to MARGIN and run
the flow again, so that the rest of the loop is measured with the refused model (labelled
``feedback_flow_past_gate``); without it the bench ends there.

Prints each step's figures as a JSON line, then the summary (also written to ``--out``).
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "helpers"))
sys.path.insert(0, str(REPO / "src"))

from repo_copy import SMALL_SAMPLE, copy_repo  # noqa: E402

from shoprec.pipeline import set_params  # noqa: E402
from shoprec.serving.process import start_server  # noqa: E402

SHOPREC = str(Path(sys.executable).with_name("shoprec"))


def shoprec(root: Path, *args: str, ok: tuple[int, ...] = (0,)) -> tuple[int, str, float]:
    """``shoprec ARGS`` in ``root``: exit code, stdout, seconds; stops the bench on an unexpected exit code."""
    began = time.monotonic()
    done = subprocess.run([SHOPREC, *args], cwd=root, capture_output=True, text=True, timeout=3600)
    if done.returncode not in ok:
        raise SystemExit(f"shoprec {' '.join(args)} exited {done.returncode}:\n{(done.stdout + done.stderr)[-4000:]}")
    return done.returncode, done.stdout if done.returncode == 0 else done.stderr.strip(), time.monotonic() - began


def simulate(root: Path, folder: Path, name: str, shoppers: int, days: int, seed: int) -> dict:
    """``shoprec serve`` (1 worker, as ``root``'s params say) and ``shoprec simulate`` against it."""
    server = start_server(root, root / "var/feedback.db", folder / f"{name}.log", workers=1)
    try:
        _, out, took = shoprec(root, "simulate", "--url", server.url, "--shoppers", str(shoppers),
                               "--seed", str(seed), "--days", str(days))
    finally:
        server.stop()
    return json.loads(out) | {"seconds": round(took, 1)}


def feedback_flow(root: Path, step, name: str) -> dict | None:
    """``shoprec flow feedback``; the flow's summary, or None when it failed (the gate's verdict is recorded)."""
    code, text, took = shoprec(root, "flow", "feedback", "--root", ".", ok=(0, 1))
    gate = json.loads((root / "reports/gate.json").read_text())
    retrained = json.loads((root / "reports/metrics.json").read_text())
    figures = {"seconds": round(took, 1), "exit": code,
               "gate": {k: gate[k] for k in ("passed", "value", "best_baseline", "baseline_value", "difference",
                                             "low", "high", "margin", "units")},
               "offline_all": {s: {m: retrained[s]["all"][m] for m in ("ndcg@20", "recall@20")}
                               for s in ("shoprec", "two_tower", "own_history", "popularity")}}
    flow = json.loads(text[text.index("{"):]) if code == 0 else None  # Prefect's log lines come first
    failed = next((line for line in text.splitlines() if line.startswith("flow ")), text[-300:])
    step(name, figures | (flow or {"error": failed[:300]}))
    return flow


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", choices=["small", "default"], default="small",
                        help="small: the tests' storefront (300 shoppers); default: params.yaml's (3,000)")
    parser.add_argument("--shoppers", type=int, default=300, help="simulated shoppers in each traffic phase")
    parser.add_argument("--days", type=int, default=28, help="simulated days in each traffic phase")
    parser.add_argument("--min-events", type=int, default=500, help="serving.feedback_min_events of the copy")
    parser.add_argument("--past-gate", type=float, default=None,
                        help="when the gate stops the retrain, set gate.margin to this and run the flow again, "
                             "to measure the rest of the loop with the refused model (labelled in the output)")
    parser.add_argument("--out", type=Path, default=Path("bench-loop.json"))
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-loop-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)  # the copy, its models, bentos and Prefect database
    os.environ |= {"BENTOML_HOME": str(folder / "bentoml"), "PREFECT_HOME": str(folder / "prefect"),
                   "PYTHONPATH": str(REPO / "src")}
    overrides = (SMALL_SAMPLE if args.sample == "small" else {}) | {
        "split.test_start.sample": "", "serving.feedback_min_events": args.min_events}
    root = copy_repo(folder / "repo", overrides)
    out: dict = {"sample": args.sample, "shoppers": args.shoppers, "days": args.days, "min_events": args.min_events,
                 "steps": {}}

    def step(name: str, figures: dict) -> None:
        out["steps"][name] = figures
        print(json.dumps({name: figures}), flush=True)

    _, _, took = shoprec(root, "run")
    champion = json.loads((root / "var/package.json").read_text())["model_tag"]
    metrics = json.loads((root / "reports/metrics.json").read_text())["shoprec"]["all"]
    step("pipeline", {"seconds": round(took, 1), "model_tag": champion, "ndcg@20": metrics["ndcg@20"],
                      "recall@20": metrics["recall@20"]})
    _, _, took = shoprec(root, "promote", "--model", champion)
    step("promote_champion", {"seconds": round(took, 1), "model_tag": champion})

    step("traffic", simulate(root, folder, "traffic", args.shoppers, args.days, seed=0))

    flow = feedback_flow(root, step, "feedback_flow")
    if flow is None and args.past_gate is not None:
        set_params({"gate.margin": args.past_gate}, root)
        flow = feedback_flow(root, step, "feedback_flow_past_gate")
    if flow is None:
        out["outcome"] = "no challenger: the gate stopped the retrain"
        args.out.write_text(json.dumps(out, indent=2) + "\n")
        print(json.dumps(out, indent=2))
        return

    set_params({"serving.experiment.name": "retrain-1", "serving.experiment.challenger": "pending",
                "serving.experiment.share": 0.5, "serving.experiment.salt": "loop"}, root)
    step("experiment_traffic", simulate(root, folder, "experiment", args.shoppers, args.days, seed=1))

    for what in ("export-impressions", "export-feedback"):
        shoprec(root, what, "--db", "var/feedback.db")
    _, text, took = shoprec(root, "experiment", "report", "--json")
    report = json.loads(text)
    step("report", {"seconds": round(took, 1), "decision": report["decision"], "reason": report["reason"],
                    "variants": {v: {k: report["variants"][v][k] for k in
                                     ("users", "impressions", "ctr", "cvr", "revenue_per_impression", "model_version")}
                                 for v in report["variants"]},
                    "cvr_difference": report["difference"]["cvr"], "mde": report["mde"], "srm_p": report["srm_p"],
                    "unattributed_events": report["unattributed_events"], "started_at": report["started_at"],
                    "impressions_before_start": report["impressions_before_start"]})

    code, text, took = shoprec(root, "promote", "--from-experiment", ok=(0, 1))
    served = json.loads((root / "var/promoted.json").read_text())["model_tag"]
    step("promote_from_experiment", {"seconds": round(took, 1), "exit": code, "served": served,
                                     "promoted": served == flow["challenger"],
                                     "message": text.splitlines()[-1] if code else json.loads(text).get("model_tag")})
    out["outcome"] = report["decision"]
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

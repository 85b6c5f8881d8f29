"""DVC stage ``gate``: refuse a model that does not beat the strongest simple baseline.

Decision: pass iff ``metric(system) > max_b metric(b) + margin`` over the baselines, on
the configured view. The decision and its reason are written to ``gate.json`` either
way; a refusal then stops the pipeline before packaging (non-zero exit).
"""

from __future__ import annotations

import json
from pathlib import Path

from shoprec.config import GateParams

BASELINES = ("popularity", "own_history", "itemknn", "ease")


class GateRefused(RuntimeError):
    pass


def decide(metrics: dict, params: GateParams) -> dict:
    def value(system: str) -> float:
        return float(metrics[system][params.view][params.metric])

    best = max(BASELINES, key=value)
    passed = value(params.system) > value(best) + params.margin
    verb = "beats" if passed else "does not beat"
    reason = (
        f"{params.system} {params.metric} ({params.view}) = {value(params.system):.4f} {verb} "
        f"the best baseline {best} = {value(best):.4f} + margin {params.margin}"
    )
    return {"passed": passed, "system": params.system, "metric": params.metric, "view": params.view,
            "value": value(params.system), "best_baseline": best, "baseline_value": value(best),
            "margin": params.margin, "reason": reason}


def gate(metrics_path: Path, out_path: Path, params: GateParams) -> dict:
    decision = decide(json.loads(metrics_path.read_text()), params)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(decision, indent=2) + "\n")
    if not decision["passed"]:
        raise GateRefused(f"gate refused the model: {decision['reason']} (decision in {out_path})")
    return decision

"""``shoprec experiment report``: what each variant of an experiment did, and whether to ship.

Input contract (the exported batches, what the feedback flow writes every hour):

* impressions: ``impressions-*.parquet`` in ``serving.impressions_dir`` (``shoprec
  export-impressions``): ``request_id``, ``surface``, ``user_id``, ``session_id``,
  ``variant``, ``item_ids`` (list, position = index), ``served_at`` (UTC);
* feedback: ``feedback-*.parquet`` in ``ingest.feedback_dir`` (``shoprec export-feedback``):
  the events contract as text, ``request_id`` and ``position`` optional;
* prices: the catalog's items table (``item_id``, ``price``).

The control arm is the variant named ``champion``; the experiment needs exactly one other
variant (the challenger). The experiment starts with the first answer of its challenger (the
model version of the newest challenger answer); what was served before it (the champion
alone, an earlier challenger) is left out. Outcomes are credited to impressions by
:mod:`shoprec.experiments.attribution`; statistics are per user (:mod:`shoprec.experiments.stats`).

Per variant: users exposed, impressions, CTR (credited clicks per impression),
add-to-cart rate (credited carts per impression), conversion (``cvr``: share of exposed
users with a credited purchase: the primary metric), revenue per impression (credited
purchases x quantity x catalog price), CTR by position (clicks credited at position p per
impression long enough to have a position p) and the zero-result rate of search answers.
Latency is not logged with impressions, so the p99 latency guardrail is not computed here
(``/metrics`` has it per route, not per variant).

Decision: ``ship`` when the primary metric's interval lies above zero, the split shows no
sample-ratio mismatch and no guardrail is worse beyond its margin; ``keep champion`` when
the interval lies below zero; otherwise ``keep running``, with the minimal detectable
effect at the current sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from shoprec.config import Params
from shoprec.experiments import stats
from shoprec.experiments.attribution import (
    EVENT_COLUMNS,
    IMPRESSION_COLUMNS,
    ReportInputError,
    attribute,
    require,
    times,
    unit_of,
)

CONTROL = "champion"
POSITIONS = 20  # CTR by position for the first this many places
RATIOS = {"ctr": "clicks", "add_to_cart_rate": "carts", "revenue_per_impression": "revenue"}  # per impression


@dataclass(frozen=True)
class Settings:
    """What a report needs besides the logs (``experiment_report`` in params, the designed split)."""

    name: str
    treatment_share: float  # the challenger's designed share of users
    window: pd.Timedelta
    confidence: float = 0.95
    power: float = 0.8
    srm_alpha: float = 0.001
    zero_result_margin: float = 0.01


def settings_of(params: Params, name: str | None = None, treatment_share: float | None = None) -> Settings:
    """Settings from ``experiment_report`` in params; the name and designed share default to the running
    experiment's (``serving.experiment``); no name at all: filled in as champion-vs-<challenger>."""
    cfg, running = params.experiment_report, params.serving.experiment
    share = running.share if treatment_share is None else treatment_share
    return Settings(name or running.name, share, pd.Timedelta(hours=cfg.attribution_window_hours),
                    cfg.confidence, cfg.power, cfg.srm_alpha, cfg.zero_result_margin)


def per_user(impressions: pd.DataFrame, events: pd.DataFrame, prices: pd.Series, window: pd.Timedelta
             ) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """One row per (variant, unit) with its counts; the credited events; how many outcome events went unattributed."""
    credited = attribute(impressions, events, window)
    credited = credited.assign(revenue=np.where(credited["event_type"] == "purchase",
                                                credited["quantity"] * credited["item_id"].map(prices).fillna(0.0), 0.0))
    search = impressions["surface"] == "search"
    base = impressions.assign(search=search, zero=search & (impressions["item_ids"].map(len) == 0))
    users = base.groupby(["variant", "unit"]).agg(impressions=("request_id", "size"), searches=("search", "sum"),
                                                  zero_results=("zero", "sum"))
    kinds = {"clicks": "click", "carts": "add_to_cart", "purchases": "purchase"}
    for column, kind in kinds.items():
        users[column] = credited[credited["event_type"] == kind].groupby(["variant", "unit"]).size()
    users["revenue"] = credited.groupby(["variant", "unit"])["revenue"].sum()
    users = users.fillna(0.0).reset_index()
    users["converted"] = (users["purchases"] > 0).astype(float)
    outcomes = int(events["event_type"].isin(list(kinds.values())).sum())
    return users, credited, outcomes - len(credited)


def _variant_summary(users: pd.DataFrame, credited: pd.DataFrame, lengths: np.ndarray) -> dict:
    n_imp = float(users["impressions"].sum())
    clicks = credited[credited["event_type"] == "click"]["shown_position"]
    at = np.bincount(clicks[clicks < POSITIONS].astype(int), minlength=POSITIONS)
    exposed = np.array([(lengths > p).sum() for p in range(POSITIONS)])
    summary = {
        "users": int(len(users)), "impressions": int(n_imp),
        "clicks": int(users["clicks"].sum()), "carts": int(users["carts"].sum()),
        "purchases": int(users["purchases"].sum()), "revenue": round(float(users["revenue"].sum()), 2),
        "cvr": float(users["converted"].mean()) if len(users) else None,
    }
    for metric, column in RATIOS.items():
        summary[metric] = float(users[column].sum() / n_imp) if n_imp else None
    summary["ctr_by_position"] = [float(a / e) if e else None for a, e in zip(at, exposed)]
    searches = float(users["searches"].sum())
    summary["search_impressions"] = int(searches)
    summary["zero_result_rate"] = float(users["zero_results"].sum() / searches) if searches else None
    summary["p99_latency_ms"] = None  # not logged with impressions
    return summary


def _estimates(users: pd.DataFrame) -> dict[str, stats.Estimate]:
    out = {"cvr": stats.mean(users["converted"].to_numpy())}
    for metric, column in RATIOS.items():
        out[metric] = stats.ratio(users[column].to_numpy(), users["impressions"].to_numpy())
    out["zero_result_rate"] = stats.ratio(users["zero_results"].to_numpy(), users["searches"].to_numpy())
    return out


def report(impressions: pd.DataFrame, events: pd.DataFrame, items: pd.DataFrame, settings: Settings) -> dict:
    """The report as a JSON-ready dict (see the module docstring); raises ReportInputError on unusable logs."""
    require(impressions, IMPRESSION_COLUMNS, "impressions")
    require(events, EVENT_COLUMNS, "feedback events")
    require(items, ("item_id", "price"), "items")
    if impressions.empty:
        raise ReportInputError("impressions: none logged; serve traffic (and run shoprec export-impressions) first")
    impressions = impressions.assign(unit=unit_of(impressions["user_id"], impressions["session_id"]),
                                     served_at=times(impressions["served_at"], "impressions.served_at"))
    events = events.assign(timestamp=times(events["timestamp"], "feedback.timestamp"),
                           quantity=pd.to_numeric(events["quantity"], errors="coerce").fillna(1.0),
                           request_id=events["request_id"].fillna("").astype(str))
    impressions["served_at"] = impressions["served_at"].astype("datetime64[ns, UTC]")
    events["timestamp"] = events["timestamp"].astype("datetime64[ns, UTC]")
    variants = sorted(impressions["variant"].unique())
    if CONTROL not in variants or len(variants) != 2:
        raise ReportInputError(f"impressions.variant: an experiment needs '{CONTROL}' and one challenger, "
                               f"found {variants}; is serving.experiment set?")
    treatment = next(v for v in variants if v != CONTROL)
    impressions, events, before = _this_experiment(impressions, events, treatment)
    prices = items.drop_duplicates("item_id").set_index("item_id")["price"].astype(float)
    users, credited, unattributed = per_user(impressions, events, prices, settings.window)
    summaries, estimates = {}, {}
    for variant in (CONTROL, treatment):
        lengths = impressions.loc[impressions["variant"] == variant, "item_ids"].map(len).to_numpy()
        mine = users[users["variant"] == variant]
        summaries[variant] = _variant_summary(mine, credited[credited["variant"] == variant], lengths)
        served = impressions.loc[impressions["variant"] == variant].sort_values("served_at")["model_version"]
        summaries[variant]["model_version"] = str(served.iloc[-1]) if "model_version" in impressions else None
        estimates[variant] = _estimates(mine)
    diffs = {m: stats.difference(estimates[CONTROL][m], estimates[treatment][m], settings.confidence)
             for m in estimates[CONTROL]}
    srm = stats.srm_p(summaries[CONTROL]["users"], summaries[treatment]["users"], settings.treatment_share)
    zero = diffs["zero_result_rate"]
    guardrails = {
        "zero_result_rate": {"difference": zero.as_dict(), "margin": settings.zero_result_margin,
                             "worse": bool(np.isfinite(zero.low) and zero.low > settings.zero_result_margin)},
        "p99_latency_ms": {"worse": False, "note": "not computed: impressions do not log latency"},
    }
    primary = diffs["cvr"]
    decision, reason = _decide(primary, srm < settings.srm_alpha, [g for g, v in guardrails.items() if v["worse"]])
    return {
        "experiment": settings.name or f"{CONTROL}-vs-{treatment}", "control": CONTROL, "treatment": treatment,
        "attribution_window_hours": settings.window / pd.Timedelta(hours=1),
        "variants": summaries,
        "difference": {m: d.as_dict() for m, d in diffs.items()},
        "primary_metric": "cvr", "confidence": settings.confidence,
        "mde": stats.mde(primary.se, settings.confidence, settings.power) if np.isfinite(primary.se) else None,
        "srm_p": srm, "srm_flag": bool(srm < settings.srm_alpha),
        "guardrails": guardrails,
        "started_at": impressions["served_at"].min().isoformat(), "impressions_before_start": before,
        "unattributed_events": unattributed, "users_in_both_variants": int(users["unit"].duplicated().sum()),
        "decision": decision, "reason": reason,
    }


def _this_experiment(impressions: pd.DataFrame, events: pd.DataFrame, treatment: str
                     ) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """The impressions of the running experiment, the events not credited to earlier answers, and how many
    impressions were earlier.

    The logs keep what was served before the experiment (the champion alone, or an earlier experiment's
    challenger): counted, those shoppers would be "exposed" champion users of this experiment, and the
    split and the control arm both wrong. The experiment starts with the first answer its challenger's
    model (the newest challenger answer's ``model_version``) gave as the challenger; events that name an
    earlier answer's ``request_id`` belong to that answer and are left out too.
    """
    arm = impressions["variant"] == treatment
    if "model_version" in impressions:
        newest = impressions.loc[arm, "model_version"].iloc[impressions.loc[arm, "served_at"].to_numpy().argmax()]
        arm &= impressions["model_version"] == newest
    earlier = impressions["served_at"] < impressions.loc[arm, "served_at"].min()
    events = events[~events["request_id"].isin(set(impressions.loc[earlier, "request_id"]))]
    return impressions[~earlier].reset_index(drop=True), events.reset_index(drop=True), int(earlier.sum())


def _decide(primary: stats.Difference, srm: bool, worse: list[str]) -> tuple[str, str]:
    interval = f"conversion difference {primary.estimate:+.4f}, 95% CI [{primary.low:+.4f}, {primary.high:+.4f}]"
    if srm:
        return "keep running", f"sample-ratio mismatch: the split is not the designed one, so no result is trusted ({interval})"
    if not np.isfinite(primary.low):
        return "keep running", "too few users for an interval"
    if primary.low > 0:
        if worse:
            return "keep running", f"{interval} above zero, but guardrail(s) worse: {', '.join(worse)}"
        return "ship", f"{interval} lies above zero; no guardrail worse"
    if primary.high < 0:
        return "keep champion", f"{interval} lies below zero"
    return "keep running", f"{interval} contains zero"


def load_logs(impressions_dir: Path, feedback_dir: Path, items_path: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The exported batches and the items table (see the module docstring)."""
    from shoprec.data.sources.feedback import load_feedback

    batches = sorted(Path(impressions_dir).glob("impressions-*.parquet"))
    if not batches:
        raise ReportInputError(f"{impressions_dir}: no impressions-*.parquet batches; run shoprec export-impressions")
    impressions = pd.concat([pd.read_parquet(p) for p in batches], ignore_index=True)
    events, _ = load_feedback(Path(feedback_dir))
    if not Path(items_path).is_file():
        raise ReportInputError(f"{items_path}: no items table (the ingest stage writes data/clean/items.parquet)")
    return impressions, events, pd.read_parquet(items_path, columns=["item_id", "price"])


def markdown(result: dict) -> str:
    """The report as a markdown page (the Prefect artifact)."""
    c, t = result["control"], result["treatment"]
    rows = ["users", "impressions", "ctr", "add_to_cart_rate", "cvr", "revenue_per_impression", "zero_result_rate"]
    fmt = lambda v: "n/a" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))  # noqa: E731
    lines = [f"# Experiment {result['experiment']}: {result['decision']}", "", result["reason"], "",
             f"| metric | {c} | {t} | difference [95% CI] |", "| --- | --- | --- | --- |"]
    for m in rows:
        d = result["difference"].get(m)
        diff = f"{d['estimate']:+.4f} [{d['ci'][0]:+.4f}, {d['ci'][1]:+.4f}]" if d and d["se"] is not None else ""
        lines.append(f"| {m} | {fmt(result['variants'][c][m])} | {fmt(result['variants'][t][m])} | {diff} |")
    mde = result["mde"]
    lines += ["", f"SRM p = {result['srm_p']:.4g} ({'MISMATCH' if result['srm_flag'] else 'ok'}); "
                  f"minimal detectable conversion effect now: {fmt(mde)}; "
                  f"unattributed outcome events: {result['unattributed_events']}"]
    return "\n".join(lines) + "\n"


def repo_report(root: Path, params: Params, name: str | None = None, share: float | None = None) -> dict:
    """:func:`report` on the batches a repository's params point to: what ``shoprec experiment report``,
    ``promote --from-experiment`` and the daily flow all read. Bad logs raise :class:`ReportInputError`."""
    from shoprec.layout import Layout

    root = Path(root)
    logs = load_logs(root / params.serving.impressions_dir, root / params.ingest.feedback_dir, Layout(root).items)
    return report(*logs, settings_of(params, name, share))

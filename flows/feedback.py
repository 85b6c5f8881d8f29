"""The feedback flow: served feedback -> training data -> retrain -> gate -> smoke test -> challenger.

Runs hourly (``prefect.yaml``):

1. *export*: accepted events of the service's SQLite store that no batch holds yet are
   written as one Parquet batch into ``ingest.feedback_dir``, an input of the ingest
   stage (so they are validated like every other event); the impressions likewise into
   ``serving.impressions_dir`` (for experiment reports; those older than
   ``serving.impressions_days`` are deleted);
2. *count*: events in batches neither the served model nor the pending challenger was
   trained on (``serving.promoted_file`` and ``serving.challenger_file`` list their batches);
3. below ``serving.feedback_min_events``: stop, the batches wait for the next run;
4. otherwise the served model is pinned in ``serving.promoted_file`` if nothing was promoted
   yet (``shoprec serve`` would otherwise serve the newest package, the retrained one), and
   the training flow reproduces the pipeline with packaging: the gate stops the run (the
   flow fails, no challenger) when the new models lose to the baselines;
5. the new package's bento is smoke-tested (served from its own environment) and only then
   becomes the *pending challenger*: ``serving.challenger_file`` names it, the served model
   stays. An experiment with ``serving.experiment.challenger: pending`` serves it beside the
   champion; only the experiment's decision to ship promotes it
   (:func:`shoprec.serving.promote.promote_challenger`, ``shoprec promote --from-experiment``).
   A newer retrain replaces a pending challenger that no experiment shipped.

Run it by hand with ``shoprec flow feedback``.
"""

from __future__ import annotations

import json
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from shoprec.config import load_params, missing, resolved
from shoprec.data.sources.feedback import BATCH_PATTERN


@task(cache_policy=NO_CACHE)
def export_feedback(db: str, batch_dir: Path) -> str | None:
    from shoprec.serving.store import open_store

    if missing(db):
        return None
    path = open_store(db).export_events(batch_dir)
    return path.name if path else None


@task(cache_policy=NO_CACHE)
def export_impressions(db: str, batch_dir: Path, keep_days: int) -> str | None:
    from shoprec.serving.store import open_store

    if missing(db):
        return None
    path = open_store(db).export_impressions(batch_dir, keep_days).path
    return path.name if path else None


def _trained_batches(*records: Path) -> set[str]:
    """The feedback batches behind the models these records (promoted, challenger) name."""
    return {b for r in records if r.is_file() for b in json.loads(r.read_text()).get("feedback_batches", [])}


@task(cache_policy=NO_CACHE)
def untrained_batches(batch_dir: Path, promoted_file: Path, challenger_file: Path) -> dict[str, int]:
    """Batch name -> event count, for batches neither the served model nor the pending challenger was trained on."""
    import pyarrow.parquet as pq

    done = _trained_batches(promoted_file, challenger_file)
    return {p.name: pq.read_metadata(p).num_rows for p in sorted(batch_dir.glob("feedback-*.parquet"))
            if BATCH_PATTERN.fullmatch(p.name) and p.name not in done}


@task(cache_policy=NO_CACHE)
def pin_champion(repo: Path, promoted_file: Path) -> str:
    """The served model stays served: a first retrain's package must not take over as "the last package"."""
    from shoprec.serving.promote import pin_served

    return pin_served(repo, promoted_file)


@task(cache_policy=NO_CACHE)
def challenge_with_package(repo: Path, promoted_file: Path, challenger_file: Path, batches: list[str]) -> dict:
    """The new package, smoke-tested, as the pending challenger (trained on every batch so far)."""
    from shoprec.serving.promote import make_challenger

    trained = sorted(_trained_batches(promoted_file, challenger_file) | set(batches))
    return make_challenger(repo, challenger_file, extra={"feedback_batches": trained})


@flow(name="shoprec-feedback")
def feedback(root: str = ".", min_events: int | None = None) -> dict:
    """Export, and when enough new events arrived, retrain, gate, smoke-test and leave the new model as the
    pending challenger (promoted only by an experiment's decision to ship it).

    Args:
        root: the repository (where ``dvc.yaml`` and ``params.yaml`` are).
        min_events: new events that trigger a retrain (default ``serving.feedback_min_events``).
    """
    from shoprec.orchestration.deployments import load_flow

    train = load_flow("flows/train.py:train", Path(root))
    logger = get_run_logger()
    repo = Path(root).resolve()
    cfg = load_params(repo / "params.yaml")
    db, promoted_file = resolved(cfg.serving.feedback_db, repo), repo / cfg.serving.promoted_file
    challenger_file = repo / cfg.serving.challenger_file
    batch_dir = repo / cfg.ingest.feedback_dir
    exported = export_feedback(db, batch_dir)
    impressions = export_impressions(db, repo / cfg.serving.impressions_dir, cfg.serving.impressions_days)
    pending = untrained_batches(batch_dir, promoted_file, challenger_file)
    new_events, needed = sum(pending.values()), min_events or cfg.serving.feedback_min_events
    summary = {"exported": exported, "impressions_exported": impressions, "new_events": new_events,
               "retrained": False, "challenger": None}
    if new_events < needed:
        logger.info("%d new feedback events, %d needed to retrain: waiting", new_events, needed)
        return summary
    pin_champion(repo, promoted_file)
    summary["stages"] = train(package=True, root=str(repo))
    summary["challenger"] = challenge_with_package(repo, promoted_file, challenger_file, list(pending))["model_tag"]
    summary["retrained"] = True
    logger.info("%s is the pending challenger (%s): serve it with serving.experiment.challenger: pending; "
                "an experiment's ship decision promotes it", summary["challenger"], challenger_file)
    return summary

"""DVC stage ``split``: the temporal train / validation / test split (protocol in :mod:`shoprec.data.split`)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from shoprec.config import SplitParams
from shoprec.data.split import resolve_test_start, split_events
from shoprec.layout import SplitFiles


def split(events_path: Path, out_dir: Path, source: str, params: SplitParams) -> SplitFiles:
    """Read clean events, write the four tables and a summary.

    With ``split.tune`` the test window is dropped and every cut moves back by
    ``validation_days``: the validation window is scored as the test window (and the
    replay window is the one before it), so a hyperparameter search never sees test.
    """
    events = pd.read_parquet(events_path)
    test_start = resolve_test_start(events, source, params)
    if params.tune:
        events = events[events["timestamp"] < test_start]
        test_start -= pd.Timedelta(days=params.validation_days)
    parts = split_events(events, test_start, params.validation_days)
    paths = SplitFiles(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in parts.items():
        frame.to_parquet(getattr(paths, name), index=False)
    truth = parts["test_truth"]
    summary = {
        "source": source,
        "tune": params.tune,
        "test_start": test_start.isoformat(),
        "valid_start": (test_start - pd.Timedelta(days=params.validation_days)).isoformat(),
        "rows": {name: len(frame) for name, frame in parts.items()},
        "train_users": int(parts["train"]["user_id"].nunique()),
        "test_users": int(truth["user_id"].nunique()),
        "test_users_known_items": int(truth.loc[truth["known_item"], "user_id"].nunique()),
    }
    paths.summary.write_text(json.dumps(summary, indent=2) + "\n")
    return paths

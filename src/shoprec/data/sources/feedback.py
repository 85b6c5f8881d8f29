"""Served feedback as an ingestion input: the batches ``shoprec export-feedback`` wrote.

Each batch is ``feedback-<first_seq>-<last_seq>.parquet`` (text columns, see
:mod:`shoprec.serving.sqlite_store`; batches written before ``request_id`` and ``position``
existed lack them, and read as empty). :func:`load_feedback` reads them in ``seq`` order as
raw event rows with ``_source`` (the batch file) and ``_row`` (the row in it), and
:func:`add_feedback` appends them to a source's raw events, so feedback meets the same
coercion, rules and quarantine as everything else (an event for an item the catalog no
longer has is quarantined as ``unknown item_id``). Temp files of an unfinished export
(``.feedback-*.tmp``) are not batches and are never read.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pandas as pd

from shoprec.data.contracts import EVENTS
from shoprec.data.readers import ReadLimits, to_strings
from shoprec.data.sources.base import ROW_COL, SOURCE_COL, RawTables, empty_quarantine
from shoprec.data.sources.files import read_contract_file

BATCH_NAME = "feedback-{first}-{last}.parquet"  # first and last seq of the store's events in the batch
BATCH_PATTERN = re.compile(r"feedback-(\d+)-(\d+)\.parquet")


def load_feedback(folder: Path, limits: ReadLimits = ReadLimits()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every exported batch in ``folder`` as raw event rows (an empty frame when there are none),
    and the rows quarantined for a cell over ``limits.max_field_bytes``."""
    folder = Path(folder)
    batches = [(m, p) for p in folder.glob("feedback-*.parquet") if (m := BATCH_PATTERN.fullmatch(p.name))]
    batches.sort(key=lambda mp: int(mp[0].group(1)))
    read = [read_contract_file(path, EVENTS, limits) for _, path in batches]
    if not read:
        columns = {name: pd.Series(dtype=object) for name in [*EVENTS.names, SOURCE_COL]}
        return pd.DataFrame({**columns, ROW_COL: pd.Series(dtype="int64")}), empty_quarantine()
    return (pd.concat([frame for frame, _ in read], ignore_index=True),
            pd.concat([invalid for _, invalid in read], ignore_index=True))


def add_feedback(raw: RawTables, folder: Path, limits: ReadLimits = ReadLimits()) -> RawTables:
    """``raw`` with the feedback of ``folder`` appended to its events (as text, like the raw hand-over)."""
    feedback, invalid = load_feedback(folder, limits)
    if feedback.empty and invalid.empty:
        return raw
    events = pd.concat([to_strings(raw.events, keep=(ROW_COL,)), feedback], ignore_index=True)
    raw_rows = dict(raw.raw_rows)
    if "events" in raw_rows:  # otherwise validation counts the frame itself (and the quarantined rows)
        raw_rows["events"] += len(feedback) + len(invalid)
    excluded = pd.concat([raw.excluded, invalid], ignore_index=True) if len(invalid) else raw.excluded
    return replace(raw, events=events, excluded=excluded, raw_rows=raw_rows)

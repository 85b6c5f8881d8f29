"""The raw tables between the ``ingest`` and ``validate`` stages, on disk.

Every contract column is stored as text (plus ``_source``/``_row``), the policy
exclusions in ``excluded.parquet`` and the raw row counts in ``raw_counts.json``: no
pickles, and validation sees exactly what a direct run would.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from shoprec.data.contracts import EVENTS, ITEMS, QUARANTINE, QUERY_LABELS, SERVICE_INTENTS, SERVICE_PHRASINGS, Table
from shoprec.data.readers import to_strings
from shoprec.data.sources.base import ROW_COL, RawTables, empty_quarantine
from shoprec.data.validation.errors import DataValidationError

# items first: events and labels must name clean items; intents before the phrasings that name them
ORDER = (ITEMS, EVENTS, QUERY_LABELS, SERVICE_INTENTS, SERVICE_PHRASINGS)
OPTIONAL = ORDER[2:]  # a source may lack these; validation then writes them empty
EXCLUDED, RAW_COUNTS = "excluded.parquet", "raw_counts.json"


def write_raw(raw: RawTables, raw_dir: Path) -> None:
    """Store ``raw`` for the DVC ``validate`` stage: text Parquet, exclusions, counts."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    for table in ORDER:
        frame, path = getattr(raw, table.name), raw_dir / f"{table.name}.parquet"
        if frame is None:
            path.unlink(missing_ok=True)
        else:
            to_strings(frame, keep=(ROW_COL,)).reset_index(drop=True).to_parquet(path, index=False)
    write_parquet(raw.excluded, QUARANTINE, raw_dir / EXCLUDED)
    (raw_dir / RAW_COUNTS).write_text(json.dumps({"raw_rows": raw.raw_rows}, indent=2) + "\n")


def read_raw(raw_dir: Path) -> RawTables:
    """The raw tables :func:`write_raw` stored in ``raw_dir``."""
    needed = [raw_dir / f"{t}.parquet" for t in ("items", "events")] + [raw_dir / EXCLUDED, raw_dir / RAW_COUNTS]
    absent = [p.name for p in needed if not p.is_file()]
    if absent:
        raise DataValidationError(
            str(raw_dir), "raw tables present", f"missing {', '.join(absent)}; run `shoprec ingest --raw-only` first"
        )
    excluded = pd.read_parquet(raw_dir / EXCLUDED)
    optional = {t.name: raw_dir / f"{t.name}.parquet" for t in OPTIONAL}
    return RawTables(
        items=pd.read_parquet(raw_dir / "items.parquet"),
        events=pd.read_parquet(raw_dir / "events.parquet"),
        **{name: pd.read_parquet(path) if path.is_file() else None for name, path in optional.items()},
        excluded=excluded if len(excluded) else empty_quarantine(),
        raw_rows=json.loads((raw_dir / RAW_COUNTS).read_text())["raw_rows"],
    )


def write_parquet(frame: pd.DataFrame, table: Table, path: Path) -> None:
    """Write with the contract schema exactly (types, column order, non-null)."""
    data = frame.reset_index(drop=True)[table.names]
    pq.write_table(pa.Table.from_pandas(data, schema=table.schema, preserve_index=False), path)

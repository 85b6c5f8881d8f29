"""The user's own catalogue and events: files that already follow the contracts.

``load(path)`` takes a folder holding ``items.*``, ``events.*`` and optionally
``query_labels.*`` (each ``.csv``, ``.csv.gz`` or ``.parquet``), or a list of such files
(the table is the file name up to its first dot). Every file goes through
:func:`shoprec.data.readers.read_table`, so CSV is read as text and a wrong value is
quarantined by validation with its row, never crashes the reader.

Columns: the contract columns are taken, extra columns are ignored. A *missing*
optional column (``description``, ``category``, ``brand``, ``session_id``, ``query``)
is added empty, since many shops have no such data; a missing required column is left
missing so that the table-level check names it. The files adapter has no policy
exclusions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from shoprec.data.contracts import TABLES, Table
from shoprec.data.readers import read_table
from shoprec.data.sources.base import ROW_COL, SOURCE_COL, RawTables
from shoprec.data.validation.errors import DataValidationError

SUFFIXES = (".csv", ".csv.gz", ".parquet", ".xlsx")
REQUIRED_TABLES = ("items", "events")


def load(path: Path | Sequence[Path]) -> RawTables:
    """Raw tables from a folder, or from explicit files named after their tables."""
    if isinstance(path, Path) and not path.exists():
        raise DataValidationError(str(path), "input files present", "no such file or folder")
    found = _find_in_folder(path) if isinstance(path, Path) and path.is_dir() else _by_table(path)
    missing = [t for t in REQUIRED_TABLES if t not in found]
    if missing:
        where = path if isinstance(path, Path) else ", ".join(map(str, path))
        raise DataValidationError(
            str(where),
            "input files present",
            f"no {' or '.join(f'{t}{s}' for t in missing for s in SUFFIXES)} found",
        )
    frames = {name: read_contract_file(file, TABLES[name]) for name, file in found.items()}
    return RawTables(
        items=frames["items"],
        events=frames["events"],
        query_labels=frames.get("query_labels"),
        raw_rows={name: len(frame) for name, frame in frames.items()},
    )


def read_contract_file(file: Path, table: Table) -> pd.DataFrame:
    """One table file as contract columns (text) plus ``_source``/``_row``."""
    frame = read_table(file)
    for column in table.columns:
        if not column.required and column.name not in frame.columns:
            frame[column.name] = ""
    present = [c for c in table.names if c in frame.columns]
    return frame[present].assign(**{SOURCE_COL: str(file), ROW_COL: range(len(frame))})


def _find_in_folder(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for name in TABLES:
        candidates = [folder / f"{name}{s}" for s in SUFFIXES if (folder / f"{name}{s}").is_file()]
        if len(candidates) > 1:
            raise DataValidationError(
                str(folder), "one file per table", f"{', '.join(c.name for c in candidates)} all claim table {name}"
            )
        if candidates:
            found[name] = candidates[0]
    return found


def _by_table(paths: Path | Sequence[Path]) -> dict[str, Path]:
    paths = [paths] if isinstance(paths, Path) else list(paths)
    found: dict[str, Path] = {}
    for file in paths:
        table = file.name.split(".", 1)[0]
        if table not in TABLES:
            raise DataValidationError(
                str(file), "file names a table", f"file name must start with one of {', '.join(TABLES)}"
            )
        if table in found:
            raise DataValidationError(str(file), "one file per table", f"{found[table]} is table {table} already")
        found[table] = file
    return found

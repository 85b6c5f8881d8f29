"""The user's own catalogue and events: files that already follow the contracts.

``load(path)`` takes a folder holding ``items.*``, ``events.*`` and optionally
``query_labels.*`` and the help centre, ``service_intents.*`` and ``service_phrasings.*`` (each ``.csv``, ``.csv.gz`` or ``.parquet``), or a list of such files
(the table is the file name up to its first dot). Every file goes through
:func:`shoprec.data.readers.read_table`, so CSV is read as text and a wrong value is
quarantined by validation with its row, never crashes the reader.

Columns: the contract columns are taken, extra columns are ignored. A *missing*
optional column (``description``, ``category``, ``brand``, ``session_id``, ``query``,
``request_id``, ``position``) is added empty, since many shops have no such data, unless a required column is missing:
then the table-level check names it, and lists only the columns the file has. The files adapter has no policy
exclusions; rows with a cell too long to read on are quarantined as invalid here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from shoprec.data.contracts import TABLES, Table
from shoprec.data.raw import OPTIONAL
from shoprec.data.readers import ReadLimits, read_table
from shoprec.data.sources.base import ROW_COL, SOURCE_COL, RawTables
from shoprec.data.validation.errors import DataValidationError
from shoprec.data.validation.quarantine import INVALID, adapter_rows

SUFFIXES = (".csv", ".csv.gz", ".parquet", ".xlsx")
REQUIRED_TABLES = ("items", "events")


def load(path: Path | Sequence[Path], limits: ReadLimits = ReadLimits()) -> RawTables:
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
    read = {name: read_contract_file(file, TABLES[name], limits) for name, file in found.items()}
    frames = {name: frame for name, (frame, _) in read.items()}
    return RawTables(
        items=frames["items"],
        events=frames["events"],
        **{t.name: frames.get(t.name) for t in OPTIONAL},
        excluded=pd.concat([invalid for _, invalid in read.values()], ignore_index=True),
        raw_rows={name: len(frame) + len(invalid) for name, (frame, invalid) in read.items()},
    )


def read_contract_file(file: Path, table: Table, limits: ReadLimits) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One table file as contract columns (text) plus ``_source``/``_row``, and its rows
    quarantined for a cell over ``limits.max_field_bytes``."""
    frame, too_long = read_table(file, limits)
    if all(c.name in frame.columns for c in table.columns if c.required):  # else the table-level check names
        for column in table.columns:                                        # what is missing, beside what is there
            if column.name not in frame.columns:
                frame[column.name] = ""
    present = [c for c in table.names if c in frame.columns]
    frame = frame[present].assign(**{SOURCE_COL: str(file), ROW_COL: range(len(frame))})
    invalid = adapter_rows(table.name, str(file), frame.loc[too_long.index], INVALID, too_long, limits.max_field_bytes)
    return frame.drop(index=too_long.index), invalid


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

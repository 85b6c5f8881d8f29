"""Read one input file into a frame of strings, or fail with a message a person can act on.

Every source adapter reads through :func:`read_table`, so every file gets the same
checks and the same wording. The format is decided by the file's first bytes, not by
its name, because users rename files: ``1f 8b`` is gzip (unpacked, then sniffed
again), ``PAR1`` is Parquet, ``PK`` is a zip (an .xlsx workbook is one), anything else
is CSV. CSV is decoded as strict UTF-8 (a BOM is dropped) and parsed with every column
as text and no NA guessing, so that a wrong value such as ``price = "abc"`` reaches
validation and is quarantined with its row instead of crashing the reader or being
silently turned into NaN. Missing values always come out as ``""``.
"""

from __future__ import annotations

import gzip
import io
import zipfile
import zlib
from importlib.util import find_spec
from pathlib import Path

import pandas as pd
import pyarrow as pa

from shoprec.data.validation.errors import DataValidationError

GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
ZIP_MAGIC = b"PK\x03\x04"


def read_table(path: Path) -> pd.DataFrame:
    """The table in ``path`` (CSV, CSV.gz, Parquet, or .xlsx when openpyxl is installed), all strings.

    Raises :class:`DataValidationError` for a missing, empty, header-only, truncated,
    non-UTF-8 or unparseable file.
    """
    name = str(path)
    if not path.is_file():
        raise DataValidationError(name, "file readable", "file not found (or not a regular file)")
    data = path.read_bytes()
    if data.startswith(GZIP_MAGIC):
        data = _gunzip(name, data)
    if not data.strip():
        raise DataValidationError(name, "table not empty", "empty input: the file has no header and no rows")
    if data.startswith(PARQUET_MAGIC):
        frame = _read_parquet(name, data)
    elif data.startswith(ZIP_MAGIC):
        frame = _read_workbook(name, data)
    else:
        frame = _read_csv(name, data)
    if frame.empty:
        raise DataValidationError(
            name, "table not empty", f"header only, no data rows (columns: {', '.join(map(str, frame.columns))})"
        )
    return to_strings(frame)


def to_strings(frame: pd.DataFrame, keep: tuple[str, ...] = ()) -> pd.DataFrame:
    """Every column except ``keep`` as text, missing values as ``""``.

    Timestamps become ``YYYY-MM-DD HH:MM:SS+00:00`` (ISO 8601, parsed back losslessly);
    floats use Python's shortest round-trip repr.
    """
    out = {}
    for col in frame.columns:
        s = frame[col]
        out[col] = s if col in keep else s.astype(str).where(s.notna(), "")
    return pd.DataFrame(out, index=frame.index)


def _gunzip(name: str, data: bytes) -> bytes:
    try:
        return gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as exc:
        raise DataValidationError(
            name, "file readable", f"truncated or corrupt gzip ({exc}); re-download or re-compress the file"
        ) from exc


def _read_csv(name: str, data: bytes) -> pd.DataFrame:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line_no = data.count(b"\n", 0, exc.start) + 1
        start = data.rfind(b"\n", 0, exc.start) + 1
        end = data.find(b"\n", exc.start)
        line = data[start : end if end >= 0 else len(data)].decode("utf-8", "backslashreplace")
        raise DataValidationError(
            name,
            "encoding is UTF-8",
            f"byte {data[exc.start]:#04x} at offset {exc.start} (line {line_no}) is not valid UTF-8; "
            "re-save the file as UTF-8",
            [f"line {line_no}: {line}"],
        ) from exc
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataValidationError(name, "CSV parses", f"malformed CSV ({exc})") from exc
    return frame.fillna("")


def _read_parquet(name: str, data: bytes) -> pd.DataFrame:
    try:
        return pd.read_parquet(io.BytesIO(data))
    except (pa.ArrowException, OSError) as exc:
        raise DataValidationError(name, "file readable", f"corrupt Parquet file ({exc})") from exc


def _read_workbook(name: str, data: bytes) -> pd.DataFrame:
    try:
        members = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
    except zipfile.BadZipFile as exc:
        raise DataValidationError(name, "file readable", f"corrupt zip archive ({exc})") from exc
    if "xl/workbook.xml" not in members:
        raise DataValidationError(name, "file format", "a zip archive, not a table; unzip it and point to the CSV")
    if find_spec("openpyxl") is None:
        raise DataValidationError(
            name,
            "file format",
            "an Excel workbook (.xlsx) where a CSV was expected; save it as CSV (UTF-8), "
            "or install openpyxl (`pip install openpyxl`) to read .xlsx directly",
        )
    return pd.read_excel(io.BytesIO(data), dtype=str, keep_default_na=False).fillna("")

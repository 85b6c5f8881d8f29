"""Read one input file into a frame of strings, or fail with a message a person can act on.

Every source adapter reads through :func:`read_table`, so every file gets the same
checks and the same wording. The format is decided by the file's first bytes, not by
its name, because users rename files: ``1f 8b`` is gzip (unpacked, then sniffed
again), ``PAR1`` is Parquet, ``PK`` is a zip (an .xlsx workbook is one), anything else
is CSV. CSV is decoded as strict UTF-8 (a BOM is dropped) and parsed with every column
as text and no NA guessing, so that a wrong value such as ``price = "abc"`` reaches
validation and is quarantined with its row instead of crashing the reader or being
silently turned into NaN. Missing values always come out as ``""``.

Memory is bounded by the file's real size (:class:`ReadLimits`): compressed data
(gzip, a Parquet column chunk, a workbook's zip members) may unpack to at most
``max_expansion`` times the file's size (plus a small-file allowance), which real
tables never approach (CSV gzips 3-10x) and a decompression bomb always does; reading
stops there with the file and the limit named. A cell longer than ``max_field_bytes``
sends its row to quarantine as 'field too long' (:attr:`Read.too_long`), so one
pasted blob neither reaches the model nor fills the quarantine file.
A header that names a column twice, and a Parquet column of lists or structs, are
refused; Parquet integers are converted to text exactly (not through float64, which
rounds beyond 2^53 when a column has nulls).
"""

from __future__ import annotations

import csv
import gzip
import io
import zipfile
import zlib
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from shoprec.data.validation.errors import DataValidationError

GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
ZIP_MAGIC = b"PK\x03\x04"
SMALL_FILE_ALLOWANCE = 64 * 2**20  # any file may unpack to this much, whatever its ratio
CHUNK = 2**22  # unpacked bytes read at a time


@dataclass(frozen=True)
class ReadLimits:
    """How far a file may expand when unpacked, and how long one cell may be (ingest params)."""

    max_field_bytes: int = 100_000
    max_expansion: float = 100.0

    def unpacked_bound(self, packed_bytes: int) -> int:
        return int(self.max_expansion * packed_bytes) + SMALL_FILE_ALLOWANCE


class Read(NamedTuple):
    frame: pd.DataFrame  # every column as text, the too-long rows included
    too_long: pd.Series  # index: rows of ``frame`` with a cell over max_field_bytes; value: the rule


def read_table(path: Path, limits: ReadLimits = ReadLimits()) -> Read:
    """The table in ``path`` (CSV, CSV.gz, Parquet, or .xlsx when openpyxl is installed), all strings.

    Raises :class:`DataValidationError` for a missing, empty, header-only, truncated,
    non-UTF-8, unparseable or over-expanding file, and for an ambiguous header.
    """
    name = str(path)
    if not path.is_file():
        raise DataValidationError(name, "file readable", "file not found (or not a regular file)")
    data = path.read_bytes()
    if data.startswith(GZIP_MAGIC):
        data = _gunzip(name, data, limits)
    if not data or data.isspace():
        raise DataValidationError(name, "table not empty", "empty input: the file has no header and no rows")
    if data.startswith(PARQUET_MAGIC):
        frame = _read_parquet(name, data, limits)
    elif data.startswith(ZIP_MAGIC):
        frame = _read_workbook(name, data, limits)
    else:
        frame = _read_csv(name, data)
    if frame.empty:
        raise DataValidationError(
            name, "table not empty", f"header only, no data rows (columns: {', '.join(map(str, frame.columns))})"
        )
    frame = to_strings(frame)
    return Read(frame, _too_long(frame, limits.max_field_bytes))


def _too_long(frame: pd.DataFrame, limit: int) -> pd.Series:
    """'<column>: field too long (<n> bytes; ...)' for each row with a cell over ``limit`` UTF-8 bytes.

    Characters are counted first (cheap, vectorised); only cells whose characters could
    exceed the limit in UTF-8 (4 bytes each at most) are encoded to count bytes.
    """
    rule = pd.Series(None, index=frame.index, dtype=object)
    for col in frame.columns:
        chars = frame[col].str.len()
        for row in chars.index[(chars * 4 > limit).to_numpy() & rule.isna().to_numpy()]:
            size = len(frame.at[row, col].encode("utf-8", "surrogatepass"))
            if size > limit:
                rule[row] = f"{col}: field too long ({size:,} bytes; the limit is ingest.max_field_bytes = {limit:,})"
    return rule.dropna()


def _too_big(name: str, what: str, bound: int, limits: ReadLimits) -> DataValidationError:
    return DataValidationError(
        name, "unpacked size bounded",
        f"{what} unpacks to more than {bound:,} bytes ({limits.max_expansion:g} x the file's size + "
        f"{SMALL_FILE_ALLOWANCE // 2**20} MiB, ingest.max_expansion): a decompression bomb, or data far more "
        "repetitive than a table; reading stopped. Raise ingest.max_expansion if the file is genuine",
    )


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


def _gunzip(name: str, data: bytes, limits: ReadLimits) -> bytearray:
    """Every gzip member of ``data``, unpacked a chunk at a time so that a bomb stops at the bound."""
    bound, out = limits.unpacked_bound(len(data)), bytearray()
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as unpacked:
            while chunk := unpacked.read(CHUNK):
                out += chunk
                if len(out) > bound:
                    raise _too_big(name, "the gzip data", bound, limits)
    except (EOFError, OSError, zlib.error) as exc:
        raise DataValidationError(
            name, "file readable", f"truncated or corrupt gzip ({exc}); re-download or re-compress the file"
        ) from exc
    return out  # bytearray: a copy to bytes would double the peak


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
    end = text.find("\n")  # the header is the first line; the csv module reads it without copying the rest
    _check_header(name, next(csv.reader([text if end < 0 else text[:end]]), []))
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataValidationError(name, "CSV parses", f"malformed CSV ({exc})") from exc
    return frame.fillna("")


def _check_header(name: str, columns: list) -> None:
    """A column named twice would be silently renamed (``title.1``) or shadowed: refuse it."""
    seen = [str(c).strip() for c in columns]
    twice = sorted({c for c in seen if seen.count(c) > 1})
    if twice:
        raise DataValidationError(name, "column names unique",
                                  f"the header names {', '.join(map(repr, twice))} more than once; "
                                  "rename or remove the copies")


def _read_parquet(name: str, data: bytes, limits: ReadLimits) -> pd.DataFrame:
    """A Parquet table; its declared unpacked size is checked before any column is read."""
    try:
        file = pq.ParquetFile(io.BytesIO(data))
        meta, bound = file.metadata, limits.unpacked_bound(len(data))
        if sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)) > bound:
            raise _too_big(name, "the Parquet data", bound, limits)
        schema = file.schema_arrow
        _check_header(name, schema.names)
        nested = [f.name for f in schema if pa.types.is_nested(f.type)]
        if nested:
            raise DataValidationError(name, "one value per cell",
                                      f"column(s) {', '.join(nested)} hold lists or records; a table cell must be "
                                      "one value (text, number or timestamp): flatten them first")
        table = file.read()
    except (pa.ArrowException, OSError) as exc:
        raise DataValidationError(name, "file readable", f"corrupt Parquet file ({exc})") from exc
    # Integers as exact text here: in pandas, an integer column with nulls would become float64.
    exact = {f.name: table.column(f.name).cast(pa.string()) for f in schema if pa.types.is_integer(f.type)}
    for column, text in exact.items():
        table = table.set_column(table.schema.get_field_index(column), column, text)
    return table.to_pandas()


def _read_workbook(name: str, data: bytes, limits: ReadLimits) -> pd.DataFrame:
    try:
        infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except zipfile.BadZipFile as exc:
        raise DataValidationError(name, "file readable", f"corrupt zip archive ({exc})") from exc
    members, bound = {i.filename for i in infos}, limits.unpacked_bound(len(data))
    if sum(i.file_size for i in infos) > bound:
        raise _too_big(name, "the zip archive", bound, limits)
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

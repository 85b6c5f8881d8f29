"""Which adapter reads the configured source: the sample generator, an Online Retail file or
contract files, plus the served feedback batches appended to its events.

The adapters are imported only when chosen, so reading one source never loads another's code.
"""

from __future__ import annotations

from pathlib import Path

from shoprec.config import IngestParams
from shoprec.data.readers import ReadLimits
from shoprec.data.sources.base import RawTables
from shoprec.data.sources.feedback import add_feedback
from shoprec.data.validation.errors import DataValidationError


def read_source(source: str, path: Path | None, params: IngestParams) -> RawTables:
    """Raw tables of ``source`` plus the served feedback in ``ingest.feedback_dir``.

    The source is the sample generator, an Online Retail file, or contract files; the
    feedback batches are appended to its events, to be validated like them.
    """
    limits = ReadLimits(params.max_field_bytes, params.max_expansion)
    return add_feedback(_read_adapter(source, path, params, limits), Path(params.feedback_dir), limits)


def _read_adapter(source: str, path: Path | None, params: IngestParams, limits: ReadLimits) -> RawTables:
    if source == "sample":
        from shoprec.data.sources.sample import load as load_sample

        return load_sample(params.sample)
    if source not in ("online_retail", "files"):
        raise DataValidationError(source, "known source", "source must be sample, online_retail or files")
    if path is None:
        raise DataValidationError(f"source {source}", "input given", "this source needs --path (file or folder)")
    if source == "online_retail":
        from shoprec.data.sources.online_retail import load
    else:
        from shoprec.data.sources.files import load
    return load(Path(path), limits)

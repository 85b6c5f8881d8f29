"""DVC stage ``ingest``: read the configured source (and served feedback) into raw tables.

Validation is the next stage (:mod:`shoprec.stages.validate`); ``shoprec ingest``
without ``--raw-only`` runs both in one go.
"""

from __future__ import annotations

from pathlib import Path

from shoprec.config import IngestParams
from shoprec.data.raw import write_raw
from shoprec.data.read import read_source


def ingest(source: str, path: Path | None, out_dir: Path, params: IngestParams) -> Path:
    """Raw tables of ``source`` (at ``path``) plus the feedback batches, written to ``out_dir``."""
    write_raw(read_source(source, path, params), out_dir)
    return out_dir

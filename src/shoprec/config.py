"""One typed view of ``params.yaml``.

Every stage reads its own section (``params.ingest``, ``params.split``, ...), and DVC
tracks the same keys, so a change to a value re-runs exactly the stages that use it.
Unknown keys are rejected: a typo in ``params.yaml`` must not silently fall back to a
default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_PARAMS = Path("params.yaml")

SourceName = Literal["sample", "online_retail", "files"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SampleParams(_Section):
    seed: int = 42
    n_items: int = Field(5000, ge=10)
    n_users: int = Field(3000, ge=10)
    n_events: int = Field(300_000, ge=100)
    days: int = Field(120, ge=7)
    start_date: str = "2024-01-01"


class IngestParams(_Section):
    source: SourceName = "sample"
    path: str = ""
    max_invalid_share: float = Field(0.05, ge=0.0, le=1.0)
    sample: SampleParams = SampleParams()


class SplitParams(_Section):
    test_start: dict[str, str] = {"sample": "2024-04-16", "online_retail": "2011-11-01", "files": ""}
    test_days: int = Field(14, ge=1)
    validation_days: int = Field(30, ge=1)


class Params(_Section):
    ingest: IngestParams = IngestParams()
    split: SplitParams = SplitParams()


class ParamsError(ValueError):
    """``params.yaml`` is unreadable or breaks the schema; the message names the key."""


def load_params(path: Path | str = DEFAULT_PARAMS) -> Params:
    """Read and validate ``params.yaml``; a missing file means all defaults."""
    path = Path(path)
    if not path.exists():
        return Params()
    try:
        raw = yaml.safe_load(path.read_text()) or {}
        return Params.model_validate(raw)
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML ({exc})") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ParamsError(f"{path}: {problems}") from exc

"""Read ``name==version`` pins out of a requirements file (the locks, a bento's requirements.txt)."""

from __future__ import annotations

import re
from pathlib import Path

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def normalised(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    """``name -> version`` of every ``name==version`` line of ``path``, names normalised."""
    found = (PIN.match(line) for line in path.read_text().splitlines())
    return {normalised(m[1]): m[2] for m in found if m}

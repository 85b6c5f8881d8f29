"""How a client's rejected input is shown back: cut to a few characters, with its length.

An error message quotes the offending value so the sender can find it, but never at any
size: a 200 KB field echoed in a 400 (or kept in a quarantine row) would turn every
refusal into an amplifier.
"""

from __future__ import annotations

from typing import Any

SHOWN_CHARS = 80  # a longer value is cut to this many characters, its length said


def shown(value: Any, limit: int = SHOWN_CHARS) -> Any:
    """``value``, or, for a string over ``limit`` characters, its start and its length."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]}... ({len(value)} characters)"
    return value

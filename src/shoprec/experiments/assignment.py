"""Which arm of an experiment a shopper is in: a stable hash, no stored state.

The unit of randomisation is the shopper: the user id, or for an anonymous visitor (no
user id) the session id. A unit with neither cannot be followed from one answer to the
next, so it gets the champion and is not part of the experiment's comparison.

The maths: ``h = sha256(salt + ":" + unit)``; its first 8 bytes read as a big-endian
integer ``n`` in ``[0, 2^64)`` give ``u = n / 2^64`` in ``[0, 1)``. sha256's output bits
are indistinguishable from uniform, so over many units ``u`` is uniform on ``[0, 1)`` (to
a resolution of ``2^-64``), and the unit is in the challenger arm iff ``u < share``: each
unit independently with probability ``share``, so the challenger's count over ``N`` units
is Binomial(N, share). The same salt and unit always give the same ``u`` in every worker
and every restart (no random state, no table), and raising ``share`` only moves units from
champion to challenger (a unit with ``u < 0.1`` also has ``u < 0.2``). A new salt draws
an independent ``u`` for every unit: a new experiment does not inherit the last one's arms.
"""

from __future__ import annotations

import hashlib

CHAMPION, CHALLENGER = "champion", "challenger"


def position(salt: str, unit: str) -> float:
    """The unit's place ``u`` in ``[0, 1)`` under ``salt`` (see the module docstring)."""
    digest = hashlib.sha256(f"{salt}:{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign(salt: str, share: float, user_id: str | None, session_id: str | None) -> str:
    """``"challenger"`` or ``"champion"`` for the shopper with ``user_id`` (else ``session_id``)."""
    unit = user_id or session_id
    if not unit:
        return CHAMPION
    return CHALLENGER if position(salt, unit) < share else CHAMPION

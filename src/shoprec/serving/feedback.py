"""Feedback events as ``POST /feedback`` receives them: checked by ingestion's own rules.

The events go through :func:`shoprec.data.validation.table.validate_table` with the
``EVENTS`` contract (coercion of every column, then the row-level Great Expectations
suite), so an event a store accepts passes ingestion unless the catalog changes in
between. A rejected event is reported back with the field, the rule, the offending
value and an example of a valid value (and kept in the store's quarantine). The first
validation in a process imports Great Expectations (~5 s); later ones take ~50 ms,
almost all of it per validation rather than per event, which is why the server batches
concurrent requests into one :meth:`shoprec.serving.store.Store.append_events`.

Before validation, JSON types are strict: a text field holds a JSON string (or null),
``quantity`` and ``position`` a whole number or a string, and no string is longer than
:data:`MAX_CHARS` says; anything else would be stored as its Python repr, or verbatim
at any size. ``request_id`` and ``position`` tie an event to the answer that showed the
item (attribution); an unknown ``request_id`` is no reason to reject an event.

Where accepted events are kept is :mod:`shoprec.serving.store`'s business.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import pandas as pd

from shoprec.data.contracts import EVENT_TYPES, EVENTS
from shoprec.data.sources.base import ROW_COL, SOURCE_COL
from shoprec.data.validation.table import validate_table
from shoprec.echo import shown

SOURCE_NAME = "feedback"
DEFAULT_QUANTITY = 1  # an event without a quantity (or with null) is one unit
NOT_AN_OBJECT = "event: not a JSON object"
MAX_ID_CHARS = 200  # user, item, session, event and request ids (the API's other id fields share it)
# The longest string each event field may hold (characters); quantity and position may be strings of at most 20.
MAX_CHARS = {"user_id": MAX_ID_CHARS, "item_id": MAX_ID_CHARS, "event_type": 20, "timestamp": 64,
             "session_id": MAX_ID_CHARS, "query": 200, "quantity": 20, "request_id": MAX_ID_CHARS,
             "position": 20, "event_id": MAX_ID_CHARS}
WHOLE_NUMBERS = ("quantity", "position")  # fields that may also be a JSON whole number
UTC_TEXT = "%Y-%m-%dT%H:%M:%S.%f+00:00"  # how stores write a UTC time: fixed width, so text order is time order

# What a client is told a valid value looks like, per contract field.
EXAMPLES: dict[str, Any] = {
    "user_id": "user-42",
    "item_id": "SKU-1001",
    "event_type": EVENT_TYPES[-1],
    "timestamp": "2024-05-01T12:30:00+00:00",
    "session_id": "session-7",
    "query": "red mug",
    "quantity": 1,
    "request_id": "5d41402abc4b2a76b9719d911017c592",
    "position": 0,
    "event_id": "3f2c9a7e-retry-safe-id",
}


@dataclass(frozen=True)
class Accepted:
    """An event that passed validation, as a store keeps it."""

    index: int  # position in the validated list
    event_id: str  # the client's idempotency key, or a fresh uuid4 hex
    values: tuple[str, ...]  # the EVENTS columns as the client sent them (text; absent: "", quantity "1")
    ts: str  # the timestamp in UTC as UTC_TEXT

    def field(self, name: str) -> str:
        return self.values[EVENTS.names.index(name)]


def validated(events: list[Any], known_items: set[str] | None) -> tuple[list[Accepted], list[dict]]:
    """The events that pass, and every rejected one in request order (``{"index", "field",
    "reason", "value", "example"}``): first the JSON shape (:func:`_shape_problem`), then
    ingestion's rules (validate_table on EVENTS) for the rest.

    ``known_items`` (the catalog's item ids), when given, rejects events for other items;
    None skips that rule.
    """
    rejected = []
    for i, e in enumerate(events):
        if (problem := _shape_problem(e)) is not None:
            field, reason, value = problem
            rejected.append(_rejection(i, field, reason, value, known_items))
    bad = {r["index"] for r in rejected}
    frame = _raw_frame([e if i not in bad else None for i, e in enumerate(events)])
    accepted: list[Accepted] = []
    if len(frame):
        ids = frame["item_id"].str.strip()
        # Membership in the catalog equals membership in (catalog ∩ this batch's ids), and the
        # small set keeps the GX in-set check fast; None: every id of the batch counts as known.
        known = ids if known_items is None else pd.Series(sorted(i for i in set(ids) if i in known_items), dtype=object)
        result = validate_table(EVENTS, frame, SOURCE_NAME, known)
        failed = set()
        for row, rule in zip(result.quarantine["row"], result.quarantine["rule"]):
            field = _field(rule)
            failed.add(int(row))
            rejected.append(_rejection(int(row), field, rule, frame.at[int(row), field], known_items))
        passed = [i for i in frame.index if i not in failed]  # the clean rows, in order
        stamps = result.clean["timestamp"].dt.strftime(UTC_TEXT)
        accepted = [Accepted(i, _event_id(events[i]), tuple(frame.loc[i, EVENTS.names]), ts)
                    for i, ts in zip(passed, stamps, strict=True)]
    return accepted, sorted(rejected, key=lambda r: r["index"])


def record_json(value: Any) -> str:
    """``value`` as JSON text, anything JSON cannot say as its ``str`` (a quarantine record)."""
    return json.dumps(value, ensure_ascii=False, default=str)


def warm_up(known_items: set[str] | None) -> None:
    """Validate one valid event without storing it: the first validation in a process
    imports Great Expectations and builds its suite (~5 s), which a server does before it
    reports ready rather than in its first client's request."""
    example = _example("event", known_items)
    if validated([example], known_items)[1]:
        raise RuntimeError(f"the example event {example} does not pass validation")


def _raw_frame(events: list[Any]) -> pd.DataFrame:
    """The events as a raw contract frame (text; absent or null fields empty, quantity 1).

    The index is the position in ``events``; entries that are not objects are left out.
    """
    rows = {i: {name: _text(e.get(name)) for name in EVENTS.names} for i, e in enumerate(events) if isinstance(e, dict)}
    for row in rows.values():
        row["quantity"] = row["quantity"] or str(DEFAULT_QUANTITY)
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=EVENTS.names, dtype=object)
    return frame.assign(**{SOURCE_COL: SOURCE_NAME, ROW_COL: frame.index.astype("int64")})


def _shape_problem(event: Any) -> tuple[str, str, Any] | None:
    """(field, reason, value) when ``event`` is not an object of JSON strings within :data:`MAX_CHARS`."""
    if not isinstance(event, dict):
        return "event", NOT_AN_OBJECT, record_json(event)
    for name, limit in MAX_CHARS.items():
        value = event.get(name)
        if value is None:
            continue
        whole_number = name in WHOLE_NUMBERS and isinstance(value, int) and not isinstance(value, bool)
        if not (isinstance(value, str) or whole_number):
            kind = "a string or a whole number" if name in WHOLE_NUMBERS else "a string"
            return name, f"{name}: must be {kind}, not {_json_type(value)}", record_json(value)
        if isinstance(value, str) and len(value) > limit:
            return name, f"{name}: longer than {limit} characters ({len(value)})", value
    return None


def _json_type(value: Any) -> str:
    names = {bool: "true/false", int: "a number", float: "a number", list: "a list", dict: "an object"}
    return next((name for kind, name in names.items() if isinstance(value, kind)), type(value).__name__)


def _rejection(index: int, field: str, reason: str, value: str, known_items: set[str] | None) -> dict:
    return {"index": index, "field": field, "reason": reason, "value": shown(value),
            "example": _example(field, known_items)}


def _example(field: str, known_items: set[str] | None) -> Any:
    """A valid value of ``field`` (an item of the catalog when one is known); for ``event``, a valid event."""
    if field == "event":
        return {c.name: _example(c.name, known_items) for c in EVENTS.columns if c.required}
    return min(known_items) if field == "item_id" and known_items else EXAMPLES[field]


def _field(rule: str) -> str:
    """The contract column a rule is about: the one named first in its words."""
    named = {name: rule.find(name) for name in EVENTS.names if name in rule}
    return min(named, key=named.get)


def _event_id(event: dict) -> str:
    given = _text(event.get("event_id")).strip()
    return given or uuid.uuid4().hex


def _text(value: Any) -> str:
    return "" if value is None else str(value)

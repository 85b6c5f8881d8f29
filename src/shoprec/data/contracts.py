"""The canonical tables every source is turned into, and the quarantine table.

A source adapter yields *raw* frames: every contract column present, values still as
the source wrote them (strings are fine). Validation then coerces each column to the
contract type and sends every row it cannot accept to quarantine with a reason, so
downstream code only ever sees rows that satisfy the contract below.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

EVENT_TYPES = ("view", "click", "add_to_cart", "purchase")


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    required: bool = True  # False: may be empty ("" for strings, null for numbers)
    doc: str = ""

    @property
    def nullable(self) -> bool:
        """Whether the clean table may hold nulls here: an optional number has no empty value but null."""
        return not self.required and not pa.types.is_string(self.type)


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.type, nullable=c.nullable) for c in self.columns])

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


ITEMS = Table(
    "items",
    (
        Column("item_id", pa.string(), doc="unique product id"),
        Column("title", pa.string(), doc="product title"),
        Column("description", pa.string(), required=False),
        Column("category", pa.string(), required=False),
        Column("brand", pa.string(), required=False),
        Column("price", pa.float64(), doc="unit price, >= 0"),
    ),
    key=("item_id",),
)

EVENTS = Table(
    "events",
    (
        Column("user_id", pa.string()),
        Column("item_id", pa.string(), doc="must exist in items"),
        Column("event_type", pa.string(), doc="one of " + ", ".join(EVENT_TYPES)),
        Column("timestamp", pa.timestamp("us", tz="UTC")),
        Column("session_id", pa.string(), required=False),
        Column("query", pa.string(), required=False, doc="search text that led to the event"),
        Column("quantity", pa.int64(), doc="integer >= 1"),
        Column("request_id", pa.string(), required=False,
               doc="the served answer (/recommend, /search, /similar) the event came from, for attribution"),
        Column("position", pa.int64(), required=False, doc="0-based place of the item in that answer, >= 0"),
    ),
)

QUERY_LABELS = Table(
    "query_labels",
    (
        Column("query_id", pa.string()),
        Column("query", pa.string()),
        Column("item_id", pa.string()),
        Column("relevance", pa.int64(), doc="0 irrelevant .. 3 exact"),
    ),
)

# The help centre: what shoppers ask customer service, and the answers a template gives.
HANDOFF = "handoff"  # service_phrasings intent of a question no template answers: a person must
SERVICE_FIELDS = ("last_order_date", "last_order_item", "purchases")  # shopper data an answer can name

SERVICE_INTENTS = Table(
    "service_intents",
    (
        Column("intent_id", pa.string(), doc=f"unique, not {HANDOFF!r} (reserved for questions a person answers)"),
        Column("answer", pa.string(), doc="the reply; {field} places a field of the shopper's data, e.g. "
                                          "'Your last order was placed on {last_order_date}'"),
        Column("fields", pa.string(), required=False,
               doc="the shopper data the answer needs, space-separated, each one of " + ", ".join(SERVICE_FIELDS)),
    ),
    key=("intent_id",),
)

SERVICE_PHRASINGS = Table(
    "service_phrasings",
    (
        Column("intent_id", pa.string(), doc=f"an intent of service_intents, or {HANDOFF!r}"),
        Column("phrasing", pa.string(), doc="one way a shopper asks it, e.g. 'where is my order'"),
    ),
)

QUARANTINE = Table(
    "quarantine",
    (
        Column("table", pa.string(), doc="the contract table: items, events, query_labels, ..."),
        Column("source", pa.string(), doc="file (or generator) the row came from"),
        Column("row", pa.int64(), doc="0-based row number in that source"),
        Column("kind", pa.string(), doc="'invalid' (broke a rule) or 'policy' (excluded on purpose)"),
        Column("reason", pa.string(), doc="the rule, in words"),
        Column("record", pa.string(), doc="the raw row as JSON"),
    ),
)

TABLES = {t.name: t for t in (ITEMS, EVENTS, QUERY_LABELS, SERVICE_INTENTS, SERVICE_PHRASINGS)}

"""``generate``: the seeded storefront, as contract-typed frames; ``load``: the same as RawTables.

One ``np.random.default_rng(seed)`` drives every draw in a fixed order (catalogue,
shoppers, sessions block by block, labels), and events are sorted by
(timestamp, user_id) with a stable sort, so the same params give the same bytes.
Strings are assembled with Arrow kernels from small dictionaries (ids, event types,
distinct query texts), so 10M events never become 10M Python objects.

``n_events`` is a target: the session count is ``n_events / EVENTS_PER_SESSION``
(measured mean events per session, re-purchase sessions included), so the count of these
sessions' events lands within a few per cent of it. Return visits (:func:`behaviour.return_visits`)
come on top, from a random stream of their own seeded from (seed, :data:`RETURNS`), so the
other events are the same bytes with or without them.

The help centre (:mod:`service`) comes from a random stream of its own, after all the
above, so the storefront's tables are the same bytes with or without it (except the
logged queries it turns into service questions).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from shoprec.config import SampleParams
from shoprec.data.contracts import EVENT_TYPES, EVENTS, ITEMS, SERVICE_INTENTS, SERVICE_PHRASINGS
from shoprec.data.sources.base import ROW_COL, SOURCE_COL, RawTables
from shoprec.data.sources.sample import behaviour, catalog, queries, service, vocab

SOURCE_NAME = "sample"
EVENTS_PER_SESSION = 5.7
RETURNS = 23  # the return visits' stream is seeded from (sample seed, RETURNS): independent of the other draws


@dataclass(frozen=True)
class SampleData:
    items: pd.DataFrame
    events: pd.DataFrame
    query_labels: pd.DataFrame
    service_intents: pd.DataFrame
    service_phrasings: pd.DataFrame


def _items_frame(cat: catalog.Catalog, ids: pa.Array) -> pd.DataFrame:
    columns = {
        "item_id": ids,
        "title": catalog.titles(cat),
        "description": catalog.descriptions(cat),
        "category": catalog.words(vocab.CATEGORY_NAMES, cat.category),
        "brand": catalog.words(vocab.BRANDS, cat.brand),
        "price": pa.array(cat.price, pa.float64()),
    }
    return pa.table(columns, schema=ITEMS.schema).to_pandas()


def _events_frame(ev: behaviour.Events, specs: np.ndarray, item_ids: pa.Array, n_users: int,
                  start: pd.Timestamp) -> pd.DataFrame:
    """Sort by (timestamp, user) and turn codes into contract columns.

    A session's query is the rendered text of its spec row; sessions without a search
    (spec kind -1) map to the empty string at index 0 of the query dictionary.
    """
    ev = ev.take(np.lexsort((ev.user, ev.ts_us)))
    searched = specs[:, queries.KIND] >= 0
    texts, inverse = queries.render_all(specs[searched])
    session_query = np.zeros(len(specs), np.int64)
    session_query[searched] = inverse + 1
    start_us = start.value // 1000  # ns -> us
    columns = {
        "user_id": catalog.padded_ids("U", n_users, 5).take(ev.user),
        "item_id": item_ids.take(ev.item),
        "event_type": pa.array(EVENT_TYPES).take(ev.kind),
        "timestamp": pa.array(ev.ts_us + start_us, pa.timestamp("us", tz="UTC")),
        "session_id": catalog.padded_ids("S", len(specs), 7).take(ev.session),
        "query": pa.array([""] + texts, pa.string()).take(session_query[ev.session]),
        "quantity": pa.array(ev.quantity, pa.int64()),
        "request_id": pa.repeat("", len(ev.user)),  # generated events were not served by shoprec
        "position": pa.nulls(len(ev.user), pa.int64()),
    }
    return pa.table(columns, schema=EVENTS.schema).to_pandas().astype({"position": "Int64"})  # not float NaN


def shoppers(params: SampleParams) -> tuple[np.random.Generator, behaviour.Shop]:
    """The catalogue and shoppers of ``params`` (their true tastes), and the generator's rng after them.

    The one model of shoppers: :func:`generate` goes on to simulate their sessions; the
    shopper simulator (:mod:`shoprec.experiments.simulate`) puts served lists before them.
    """
    rng = np.random.default_rng(params.seed)
    cat = catalog.make_catalog(rng, params.n_items)
    n_sessions = max(1, round(params.n_events / EVENTS_PER_SESSION))
    return rng, behaviour.Shop(cat, behaviour.make_users(rng, cat, params.n_users, n_sessions))


def generate(params: SampleParams) -> SampleData:
    """The storefront for ``params``; see :mod:`behaviour` and :mod:`queries` for the model."""
    rng, shop = shoppers(params)
    cat = shop.cat
    start = pd.Timestamp(params.start_date, tz="UTC")
    events, specs = behaviour.simulate(rng, shop, params.days, start, np.random.default_rng([params.seed, RETURNS]))
    item_ids = catalog.padded_ids("I", cat.n, 6)
    items = _items_frame(cat, item_ids)
    events = _events_frame(events, specs, item_ids, params.n_users, start)
    labels = queries.make_query_labels(rng, cat, item_ids)
    intents, phrasings = service.help_centre(params.seed)
    return SampleData(
        items=items,
        events=service.ask_in_logs(events, phrasings, params.service_share, params.seed),
        query_labels=labels,
        service_intents=pa.Table.from_pandas(intents, schema=SERVICE_INTENTS.schema).to_pandas(),
        service_phrasings=pa.Table.from_pandas(phrasings, schema=SERVICE_PHRASINGS.schema).to_pandas(),
    )


def load(params: SampleParams) -> RawTables:
    """:func:`generate`, with the ``_source``/``_row`` bookkeeping columns validation expects."""
    data = generate(params)
    tables = {name: getattr(data, name) for name in data.__dataclass_fields__}
    for frame in tables.values():
        frame[SOURCE_COL] = pd.Series(SOURCE_NAME, index=frame.index, dtype="str")
        frame[ROW_COL] = np.arange(len(frame), dtype=np.int64)
    return RawTables(**tables, raw_rows={name: len(frame) for name, frame in tables.items()})

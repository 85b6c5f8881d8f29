"""What every source adapter hands to validation.

An adapter reads its input and returns :class:`RawTables`: one frame per contract table
holding the contract columns (values as read; validation coerces and checks them) plus
two bookkeeping columns, ``_source`` (the file or generator a row came from) and
``_row`` (its 0-based row number there), so that a rejected row can be traced back.
Rows the adapter leaves out on purpose (policy, e.g. anonymous Online Retail lines) go
to ``excluded`` in the quarantine layout with ``kind='policy'``; they are counted in
``raw_rows`` so that raw = clean + quarantined holds per table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from shoprec.data.contracts import QUARANTINE

SOURCE_COL = "_source"
ROW_COL = "_row"


def empty_quarantine() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="int64" if c == "row" else "object") for c in QUARANTINE.names})


@dataclass
class RawTables:
    items: pd.DataFrame
    events: pd.DataFrame
    query_labels: pd.DataFrame | None = None
    service_intents: pd.DataFrame | None = None  # the help centre (optional, like the labels)
    service_phrasings: pd.DataFrame | None = None
    excluded: pd.DataFrame = field(default_factory=empty_quarantine)
    # table name -> rows read from the input (accepted + excluded + to be validated)
    raw_rows: dict[str, int] = field(default_factory=dict)

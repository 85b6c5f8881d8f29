"""Rows that do not reach the clean tables, in the ``QUARANTINE`` layout.

Nothing is dropped silently: a row the adapter excludes on purpose (``kind='policy'``)
and a row that breaks a rule (``kind='invalid'``) both land here with the file and row
they came from, the reason, and the raw row as JSON, so a user can find and fix it.

In memory the frame carries one more column, ``rule``: the reason without the offending
value (``"price: not a number"`` for ``"price: not a number ('abc')"``), which is what
the report counts by; :func:`finalise` drops it before writing.
"""

from __future__ import annotations

import pandas as pd

from shoprec.data.contracts import QUARANTINE
from shoprec.data.readers import to_strings
from shoprec.data.sources.base import ROW_COL, SOURCE_COL

RULE_COL = "rule"
POLICY, INVALID = "policy", "invalid"


KEPT_CHARS = 200  # a cell over the field limit keeps this much of itself in its quarantine record


def records_json(frame: pd.DataFrame, cut_over: int | None = None) -> list[str]:
    """Each row of ``frame`` (bookkeeping columns left out) as one JSON object of text values.

    Values are rendered as :func:`~shoprec.data.readers.to_strings` does, so a record
    reads the same whether the source was typed (the generator) or text (a CSV, the raw
    Parquet hand-over). A value longer than ``cut_over`` characters is kept as its first
    :data:`KEPT_CHARS` and its length: the row can be found, the blob is not copied.
    """
    data = to_strings(frame.drop(columns=[SOURCE_COL, ROW_COL], errors="ignore"))
    if data.empty:
        return ["{}"] * len(frame)
    if cut_over is not None:
        for col in data.columns:
            length = data[col].str.len()
            long = length > cut_over
            data.loc[long, col] = data.loc[long, col].str[:KEPT_CHARS] + "... (" + length[long].astype(str) + \
                " characters, cut)"
    # one record per "\n" (escaped inside values); not splitlines(), which also splits at U+0085, U+2028 ...
    return data.to_json(orient="records", lines=True, force_ascii=False).rstrip("\n").split("\n")


def adapter_rows(table: str, source: str, rows: pd.DataFrame, kind: str, reasons: pd.Series,
                 cut_over: int | None = None) -> pd.DataFrame:
    """Quarantine rows that a source adapter sets aside itself (policy exclusions, cells too
    long to read on), without the in-memory ``rule`` column: their reason is their rule."""
    return pd.DataFrame(
        {
            "table": table,
            "source": source,
            "row": rows[ROW_COL].astype("int64").to_numpy(),
            "kind": kind,
            "reason": reasons.astype(str).to_numpy(),
            "record": records_json(rows, cut_over),
        }
    )


def quarantine_rows(
    table: str, raw: pd.DataFrame, rules: pd.Series, kind: str, values: pd.Series | None = None
) -> pd.DataFrame:
    """Quarantine rows for the rows of ``raw`` indexed by ``rules``.

    ``values`` (same index), when given, is the offending raw value, appended to the
    reason as ``rule ('value')``; without it the reason is the rule itself.
    """
    rows = raw.loc[rules.index]
    reason = rules if values is None else rules + " (" + values.map(repr) + ")"
    return pd.DataFrame(
        {
            "table": table,
            "source": rows[SOURCE_COL].astype(str).to_numpy(),
            "row": rows[ROW_COL].astype("int64").to_numpy(),
            "kind": kind,
            "reason": reason.astype(str).to_numpy(),
            "record": records_json(rows),
            RULE_COL: rules.astype(str).to_numpy(),
        }
    )


def with_rules(excluded: pd.DataFrame) -> pd.DataFrame:
    """Adapter-made quarantine rows (no ``rule`` column): their reason is their rule."""
    return excluded.assign(**{RULE_COL: excluded["reason"]})


def finalise(quarantine: pd.DataFrame) -> pd.DataFrame:
    """The on-disk ``QUARANTINE`` layout: contract columns only, contract types."""
    out = quarantine[QUARANTINE.names].astype({"row": "int64"})
    return out.reset_index(drop=True)

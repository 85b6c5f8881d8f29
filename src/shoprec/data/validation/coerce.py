"""Coerce raw columns to the contract types, one verdict per row.

A raw table holds whatever the source wrote (usually text). Each contract column is
converted by its type:

* string: stripped; a ``required`` column must not be empty after stripping;
* float64: a finite number (``"abc"``, ``"inf"`` and ``""`` fail);
* int64: a number with no fractional part that fits 64 bits (``"3"`` and ``"3.0"`` pass,
  ``"2.5"`` and ``"1e30"`` fail);
* timestamp: ISO 8601 text; a value without an offset is taken as UTC, one with an
  offset is converted to UTC (already-typed datetimes are localised/converted likewise).

Timestamps and required numbers need a value; an empty optional number is null (an
optional integer column is pandas' nullable ``Int64``). A row that fails is reported once, for the
first failing column in contract order, as a *rule* (``"price: not a number"``, the
key reports count by) and the raw *value* that broke it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from shoprec.data.contracts import Column, Table


@dataclass(frozen=True)
class Coerced:
    clean: pd.DataFrame  # rows that passed, contract columns in contract types, input index kept
    failed: pd.DataFrame  # index: input index; columns ``rule`` and ``value`` (the raw cell)


def coerce(raw: pd.DataFrame, table: Table) -> Coerced:
    """Convert every contract column of ``raw`` (which must have them all) to its type."""
    typed: dict[str, pd.Series] = {}
    rule = pd.Series(None, index=raw.index, dtype=object)
    value = pd.Series(None, index=raw.index, dtype=object)
    for column in table.columns:
        typed[column.name], problem = _coerce_column(raw[column.name], column)
        new = problem.notna() & rule.isna()
        rule[new] = problem[new]
        value[new] = raw.loc[new, column.name].astype(str)
    ok = rule.isna()
    clean = pd.DataFrame(typed)[ok]
    clean = clean.astype({c.name: _pandas_dtype(c) for c in table.columns})
    return Coerced(clean, pd.DataFrame({"rule": rule[~ok], "value": value[~ok]}))


def _coerce_column(raw: pd.Series, column: Column) -> tuple[pd.Series, pd.Series]:
    """(converted values, rule broken or None) for one column."""
    problem = pd.Series(None, index=raw.index, dtype=object)
    name = column.name
    if pa.types.is_timestamp(column.type) and pd.api.types.is_datetime64_any_dtype(raw):
        values = raw.dt.tz_localize("UTC") if raw.dt.tz is None else raw.dt.tz_convert("UTC")
        problem[values.isna()] = f"{name}: required but empty"
        return values, problem
    text = raw.astype(str).where(raw.notna(), "").str.strip()
    empty = text == ""
    if pa.types.is_string(column.type):
        if column.required:
            problem[empty] = f"{name}: required but empty"
        return text, problem
    if pa.types.is_timestamp(column.type):
        values = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
        problem[values.isna()] = f"{name}: not a parseable ISO 8601 timestamp"
    else:
        values = pd.to_numeric(text, errors="coerce")
        problem[~np.isfinite(values.astype("float64"))] = f"{name}: not a number"
        if pa.types.is_integer(column.type):
            not_int64 = np.isfinite(values) & ((values != np.floor(values)) | (values.abs() >= 2.0**63))
            problem[not_int64] = f"{name}: not an integer"
    problem[empty] = None if column.nullable else f"{name}: required but empty"
    return values, problem


def _pandas_dtype(column: Column) -> str:
    if pa.types.is_timestamp(column.type):
        return "datetime64[us, UTC]"
    if pa.types.is_string(column.type):
        return "object"
    if column.nullable and pa.types.is_integer(column.type):
        return "Int64"
    return str(column.type.to_pandas_dtype().__name__)

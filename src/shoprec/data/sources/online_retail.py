"""UCI Online Retail (541,909 invoice lines, 2010-12 .. 2011-12) as canonical tables.

Mapping, one purchase event per accepted invoice line:

* ``user_id`` = CustomerID without the float suffix (``"17850.0"`` -> ``"17850"``);
* ``item_id`` = StockCode, ``session_id`` = InvoiceNo, ``quantity`` = Quantity;
* ``timestamp`` = InvoiceDate. The shop wrote UK local time (GMT, BST in summer) with
  no offset; it is taken as UTC, so summer timestamps are one hour late. Every split
  and metric works at day level, where that hour does not matter.
* items come from the accepted lines only: ``title`` = the stock code's most frequent
  Description (ties: alphabetically first), ``price`` = median UnitPrice;
  description/category/brand are empty (the data has none). An item's ``_row`` is
  the first accepted line of its stock code.

Policy exclusions, one reason per line, the first that applies in this order:

1. ``missing CustomerID`` (anonymous: no user to recommend to);
2. ``cancellation (InvoiceNo starts with C)``;
3. ``Quantity <= 0`` (returns and stock corrections);
4. ``UnitPrice <= 0`` (free samples, write-offs);
5. ``non-product StockCode`` (postage, fees, discounts, gift vouchers: see
   :data:`NON_PRODUCT_CODES`, and codes starting with ``gift``).

A Quantity or UnitPrice that is not a number is *not* a policy matter: the line goes on
to validation, which quarantines it as invalid (a bad UnitPrice only drops out of the
item's median). Everything is vectorised: the whole file takes a few seconds.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from shoprec.data.contracts import EVENTS, ITEMS
from shoprec.data.readers import ReadLimits, read_table
from shoprec.data.sources.base import ROW_COL, SOURCE_COL, RawTables
from shoprec.data.validation.errors import DataValidationError
from shoprec.data.validation.quarantine import INVALID, POLICY, adapter_rows, records_json

COLUMNS = ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country")
NON_PRODUCT_CODES = frozenset(
    {"POST", "D", "M", "C2", "DOT", "BANK CHARGES", "PADS", "AMAZONFEE", "CRUK", "S", "B", "m"}
)
NON_PRODUCT_PREFIX = "gift"


def load(path: Path, limits: ReadLimits = ReadLimits()) -> RawTables:
    """Read the Online Retail file (CSV, CSV.gz, or .xlsx with openpyxl) into raw tables.

    A line with a cell over ``limits.max_field_bytes`` is quarantined as invalid before
    any policy applies (its text is not worth deriving a title from).
    """
    lines, too_long = read_table(path, limits)
    name = str(path)
    missing = [c for c in COLUMNS[:-1] if c not in lines.columns]
    if missing:
        raise DataValidationError(
            name,
            "required columns exist",
            f"Online Retail file lacks column(s) {', '.join(missing)}; found: {', '.join(lines.columns)}",
            records_json(lines.head(5)),
            total=len(lines),
        )
    lines = lines.assign(**{SOURCE_COL: name, ROW_COL: range(len(lines))})
    invalid = adapter_rows("events", name, lines.loc[too_long.index], INVALID, too_long, limits.max_field_bytes)
    lines = lines.drop(index=too_long.index)
    reasons = policy_reasons(lines)
    accepted = lines[reasons.isna()]
    excluded = adapter_rows("events", name, lines[reasons.notna()], POLICY, reasons[reasons.notna()])
    items = derive_items(accepted)
    return RawTables(
        items=items,
        events=to_events(accepted),
        excluded=pd.concat([invalid, excluded], ignore_index=True),
        raw_rows={"items": len(items), "events": len(lines) + len(invalid)},
    )


def policy_reasons(lines: pd.DataFrame) -> pd.Series:
    """The policy reason of each line (None: accepted), first match in the documented order."""
    quantity = pd.to_numeric(lines["Quantity"].str.strip(), errors="coerce")
    price = pd.to_numeric(lines["UnitPrice"].str.strip(), errors="coerce")
    code = lines["StockCode"].str.strip()
    checks = [
        ("missing CustomerID", lines["CustomerID"].str.strip() == ""),
        ("cancellation (InvoiceNo starts with C)", lines["InvoiceNo"].str.strip().str.startswith("C")),
        ("Quantity <= 0", quantity <= 0),
        ("UnitPrice <= 0", price <= 0),
        ("non-product StockCode", code.isin(NON_PRODUCT_CODES) | code.str.startswith(NON_PRODUCT_PREFIX)),
    ]
    reasons = pd.Series(None, index=lines.index, dtype=object)
    for reason, hit in checks:
        reasons[hit.to_numpy() & reasons.isna().to_numpy()] = reason
    return reasons


def to_events(accepted: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": accepted["CustomerID"].str.strip().str.replace(r"^(\d+)\.0*$", r"\1", regex=True),
            "item_id": accepted["StockCode"].str.strip(),
            "event_type": "purchase",
            "timestamp": accepted["InvoiceDate"],
            "session_id": accepted["InvoiceNo"].str.strip(),
            "query": "",
            "quantity": accepted["Quantity"],
            "request_id": "",
            "position": "",
            SOURCE_COL: accepted[SOURCE_COL],
            ROW_COL: accepted[ROW_COL],
        },
        columns=[*EVENTS.names, SOURCE_COL, ROW_COL],
    ).reset_index(drop=True)


def derive_items(accepted: pd.DataFrame) -> pd.DataFrame:
    """One row per stock code: modal Description as title, median UnitPrice as price."""
    lines = pd.DataFrame(
        {
            "item_id": accepted["StockCode"].str.strip(),
            "title": accepted["Description"].str.strip(),
            "price": pd.to_numeric(accepted["UnitPrice"].str.strip(), errors="coerce"),
            SOURCE_COL: accepted[SOURCE_COL],
            ROW_COL: accepted[ROW_COL],
        }
    )
    grouped = lines.groupby("item_id", sort=True)
    first = grouped[[SOURCE_COL, ROW_COL]].first()
    votes = (
        lines[lines["title"] != ""]
        .value_counts(["item_id", "title"])
        .rename("n")
        .reset_index()
        .sort_values(["item_id", "n", "title"], ascending=[True, False, True])
        .drop_duplicates("item_id")
        .set_index("item_id")["title"]
    )
    items = pd.DataFrame(
        {
            "title": votes.reindex(first.index).fillna(""),
            "description": "",
            "category": "",
            "brand": "",
            "price": grouped["price"].median(),
        },
        index=first.index,
    ).join(first)
    return items.reset_index()[[*ITEMS.names, SOURCE_COL, ROW_COL]]

"""Training pairs for the query models: (query, item) from search sessions that led somewhere.

An event with a non-empty ``query`` whose type has a positive weight in
``interactions.weights`` (click, cart, purchase; views are what the results page showed,
not what the shopper chose) is one pair, weighted like the recommender's examples.
Identical (normalised query, item) pairs are merged with their weights summed, so a
head query does not fill every batch.
"""

from __future__ import annotations

import pandas as pd

from shoprec.search.normalize import normalise


def query_pairs(events: pd.DataFrame, weights: dict[str, float]) -> pd.DataFrame:
    """``query, item_id, weight`` rows (see module docstring); empty when events carry no queries."""
    w = events["event_type"].map(weights).fillna(0.0)
    has_query = events["query"].fillna("").str.strip().ne("")
    chosen = events.loc[has_query & (w > 0), ["query", "item_id"]].assign(weight=w[has_query & (w > 0)])
    chosen["query"] = chosen["query"].map(normalise)
    merged = chosen.groupby(["query", "item_id"], as_index=False, sort=True)["weight"].sum()
    return merged.astype({"weight": "float32"})

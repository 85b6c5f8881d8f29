"""Training pairs for the query models: (query, item) from search sessions that led somewhere.

An event with a non-empty ``query`` whose type has a positive weight in
``interactions.weights`` (click, cart, purchase; views are what the results page showed,
not what the shopper chose) is one pair, weighted like the recommender's examples.
Identical (normalised query, item) pairs are merged with their weights summed, so a
head query does not fill every batch.

:func:`first_choices` keeps only the first item chosen in each search session: the
shopper's answer to the query. Every event of a session carries its query, so later
choices are the session wandering (same category, other nouns and brands); what a
query *means* (:mod:`shoprec.search.query.expansion`) is learned from first choices, while the
query tower, which also learns what shoppers go on to want, trains on all of them.
"""

from __future__ import annotations

import pandas as pd

from shoprec.search.query.normalize import normalise


def _chosen(events: pd.DataFrame, weights: dict[str, float]) -> pd.DataFrame:
    """Events with a query and a positive weight, with that weight as ``weight``."""
    w = events["event_type"].map(weights).fillna(0.0)
    keep = events["query"].fillna("").str.strip().ne("") & (w > 0)
    return events.loc[keep].assign(weight=w[keep])


def query_pairs(events: pd.DataFrame, weights: dict[str, float]) -> pd.DataFrame:
    """``query, item_id, weight`` rows (see module docstring); empty when events carry no queries."""
    chosen = _chosen(events, weights)[["query", "item_id", "weight"]]
    chosen["query"] = chosen["query"].map(normalise)
    merged = chosen.groupby(["query", "item_id"], as_index=False, sort=True)["weight"].sum()
    return merged.astype({"weight": "float32"})


def first_choices(events: pd.DataFrame, weights: dict[str, float]) -> pd.DataFrame:
    """``query, item_id``: the first chosen item of each (search session, normalised query);
    events without a session (no ``session_id`` column, or an empty one) count by shopper."""
    chosen = _chosen(events, weights)
    query = chosen["query"].map(normalise)
    session = chosen["user_id"].astype(str)
    if "session_id" in chosen:
        sid = chosen["session_id"].fillna("").astype(str)
        session = sid.where(sid.ne(""), session)
    first = chosen.assign(key=session + "\x00" + query, query=query).sort_values("timestamp", kind="stable")
    first = first.drop_duplicates("key")
    return pd.DataFrame({"query": first["query"].to_numpy(), "item_id": first["item_id"].to_numpy()})

"""Text pairs that should land close together, mined from the shop's own data for fine-tuning MiniLM.

Three kinds, so that fine-tuning works with and without search logs:

* ``query``: a logged query -> the text of the item chosen first after it
  (:func:`shoprec.search.pairs.first_choices`: the shopper's answer to the query);
* ``basket``: the texts of two items bought in the same session (the shopper's basket;
  by shopper and day when events carry no session), each item paired with the next
  distinct one bought, so a large basket gives a chain, not all its pairs;
* ``title``: an item's title <-> its category, brand and description (self-supervised:
  every catalog has it).

Only events before ``before`` count: the validation window (where the models are chosen)
and the test window (where the ranker's labels and the search evaluation come from) come
after it, so no pair repeats what those windows score. Item texts are the ones the
catalog is embedded from (:func:`shoprec.text.embed.item_text`).

Each kind gets an equal share of ``max_pairs``; a kind with fewer pairs leaves its rest
to the others. Within a kind the pairs kept are a seeded sample.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from shoprec.search.pairs import first_choices
from shoprec.text.embed import item_text

KINDS = ("query", "basket", "title")


def _query_pairs(events: pd.DataFrame, text: pd.Series, weights: dict[str, float]) -> pd.DataFrame:
    first = first_choices(events, weights)
    first = first[first["item_id"].isin(text.index)]
    return pd.DataFrame({"anchor": first["query"].to_numpy(), "positive": text[first["item_id"]].to_numpy()})


def _basket_pairs(events: pd.DataFrame, text: pd.Series) -> pd.DataFrame:
    bought = events[(events["event_type"] == "purchase") & events["item_id"].isin(text.index)]
    basket = bought["user_id"].astype(str) + "\x00" + bought["timestamp"].dt.strftime("%Y-%m-%d")
    if "session_id" in bought:
        sid = bought["session_id"].fillna("").astype(str)
        basket = sid.where(sid.ne(""), basket)
    bought = (bought.assign(basket=basket).sort_values(["basket", "timestamp", "item_id"], kind="stable")
              .drop_duplicates(["basket", "item_id"]))
    following = bought.groupby("basket")["item_id"].shift(-1)
    chain = bought.assign(other=following).dropna(subset=["other"])
    return pd.DataFrame({"anchor": text[chain["item_id"]].to_numpy(), "positive": text[chain["other"]].to_numpy()})


def _title_pairs(items: pd.DataFrame) -> pd.DataFrame:
    rest = item_text(items.assign(title=""))
    frame = pd.DataFrame({"anchor": items["title"].fillna("").astype(str).str.strip().to_numpy(), "positive": rest})
    return frame[frame["anchor"].ne("") & frame["positive"].ne("")]


def mine_pairs(events: pd.DataFrame, items: pd.DataFrame, before: pd.Timestamp, weights: dict[str, float],
               max_pairs: int, seed: int) -> pd.DataFrame:
    """``anchor, positive, kind`` rows (see the module docstring), distinct, at most ``max_pairs``."""
    events = events[events["timestamp"] < before]
    text = pd.Series(item_text(items), index=items["item_id"].to_numpy())
    mined = {"query": _query_pairs(events, text, weights), "basket": _basket_pairs(events, text),
             "title": _title_pairs(items)}
    rng = np.random.default_rng(seed)
    kept, left = [], max_pairs
    for i, kind in enumerate(sorted(KINDS, key=lambda k: len(mined[k]))):  # smallest first: its rest goes on
        frame = mined[kind].drop_duplicates(ignore_index=True)
        share = left // (len(KINDS) - i)
        if len(frame) > share:
            frame = frame.iloc[np.sort(rng.choice(len(frame), share, replace=False))]
        kept.append(frame.assign(kind=kind))
        left -= len(frame)
    return pd.concat(kept, ignore_index=True)

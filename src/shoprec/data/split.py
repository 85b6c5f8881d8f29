"""Temporal train / validation / test split and the per-user test ground truth.

The protocol every metric in shoprec reports on (the same for the sample storefront and
Online Retail):

* ``train``: all events before ``test_start``;
* ``valid``: the last ``validation_days`` of train, a subset used for tuning only;
  models selected on it are retrained on the whole of train;
* ``test``: events from ``test_start`` on, by users seen in train;
* ``test_truth``: per test user, the distinct items purchased in the test window, with
  ``known_item`` telling whether the item had any event in train (the headline metrics
  use known items only: a recommender cannot rank what it never saw; the cold-start
  slice uses the others) and ``bought_before`` whether this user bought it in train
  (the "new" view leaves those out).

Splitting by time, never at random, is what makes the numbers honest: a random split
leaks a shopper's future into training.
"""

from __future__ import annotations

import pandas as pd

from shoprec.config import SplitParams


def resolve_test_start(events: pd.DataFrame, source: str, params: SplitParams) -> pd.Timestamp:
    """The configured cut-off for this source, or the last ``test_days`` of the data."""
    configured = params.test_start.get(source, "")
    if configured:
        return pd.Timestamp(configured, tz="UTC")
    last_day = events["timestamp"].max().normalize()
    return last_day - pd.Timedelta(days=params.test_days - 1)


def ground_truth(train: pd.DataFrame, test: pd.DataFrame) -> pd.DataFrame:
    """Distinct (user, item) purchases of the test window, flagged by whether train saw the item
    and whether the user bought it in train."""
    bought = test.loc[test["event_type"] == "purchase", ["user_id", "item_id"]].drop_duplicates()
    before = pd.MultiIndex.from_frame(train.loc[train["event_type"] == "purchase", ["user_id", "item_id"]])
    bought = bought.assign(known_item=bought["item_id"].isin(set(train["item_id"])),
                           bought_before=pd.MultiIndex.from_frame(bought[["user_id", "item_id"]]).isin(before))
    return bought.sort_values(["user_id", "item_id"], ignore_index=True)


def split_events(events: pd.DataFrame, test_start: pd.Timestamp, validation_days: int) -> dict[str, pd.DataFrame]:
    """Cut events in time; see the module docstring for the protocol."""
    events = events.sort_values(["timestamp", "user_id", "item_id"], kind="stable", ignore_index=True)
    train = events[events["timestamp"] < test_start].reset_index(drop=True)
    valid_start = test_start - pd.Timedelta(days=validation_days)
    valid = train[train["timestamp"] >= valid_start].reset_index(drop=True)
    test = events[(events["timestamp"] >= test_start) & events["user_id"].isin(set(train["user_id"]))]
    test = test.reset_index(drop=True)
    if train.empty or test.empty:
        raise ValueError(
            f"split: test_start {test_start.date()} leaves {len(train)} train and {len(test)} test events "
            f"(data spans {events['timestamp'].min().date()} .. {events['timestamp'].max().date()}); "
            "set split.test_start for this source in params.yaml to a date inside that range"
        )
    return {"train": train, "valid": valid, "test": test, "test_truth": ground_truth(train, test)}

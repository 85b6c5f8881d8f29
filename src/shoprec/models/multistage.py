"""The full shoprec recommender: retrieve -> rank, fitted the way it will be used.

The ranker must learn from candidates and features as they look at serving time, so it
is trained on a time-shifted replay of the pipeline:

1. *replay*: fit the two-tower on train events before ``valid_start``; for users active
   in ``[valid_start, cutoff)``, generate candidates and features as of ``valid_start``
   and label them with what the users did in that window; fit the ranker;
2. *final*: refit the two-tower on all train events and compute user state as of
   ``cutoff``; the ranker (which only sees relative, time-free features) scores
   candidates from it.

Training the ranker on candidates from a retrieval model that had already seen the
labels would teach it to trust the two-tower score more than it deserves.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import tensorflow as tf

from shoprec.config import Params
from shoprec.models.candidates import Candidates, Shoppers, UserState, build_user_state, candidates
from shoprec.models.catalog import Catalog
from shoprec.models.query_tower import QueryTowerWeights
from shoprec.models.ranking import Ranker, RankerArrays, predict, train_ranker
from shoprec.models.retrieval import (
    RetrievalData, TwoTower, build_examples, embed_queries, query_inputs,
    train_two_tower,
)

CLICK_TYPES = ("click", "add_to_cart", "purchase")


@dataclass
class FittedRetrieval:
    model: TwoTower
    data: RetrievalData
    losses: list[float]


def fit_retrieval(events: pd.DataFrame, catalog: Catalog, cfg: Params,
                  strategy: tf.distribute.Strategy) -> FittedRetrieval:
    data = build_examples(events, catalog, cfg.interactions.weights, cfg.interactions.history_types, cfg.retrieval)
    model, losses = train_two_tower(data, catalog, cfg.retrieval, strategy, cfg.seed)
    return FittedRetrieval(model, data, losses)


def query_embedder(fitted: FittedRetrieval, events: pd.DataFrame, catalog: Catalog, cutoff: pd.Timestamp,
                   cfg: Params):
    """``user_ids -> query embeddings`` as of ``cutoff`` (history = ``events``)."""

    def embed(user_ids: np.ndarray) -> np.ndarray:
        inputs = query_inputs(user_ids, events, fitted.data.user_index, catalog, cfg.interactions.history_types,
                              fitted.data.event_types, cfg.retrieval.history_length, cutoff)
        return embed_queries(fitted.model, inputs)

    return embed


def user_state(events: pd.DataFrame, catalog: Catalog, cutoff: pd.Timestamp, cfg: Params, tower: QueryTowerWeights,
               item_emb: np.ndarray) -> UserState:
    return build_user_state(events, catalog, cfg.interactions.weights, cutoff, tower, item_emb,
                            cfg.interactions.history_types, cfg.retrieval.history_length, cfg.ranking.recent_days,
                            cfg.baselines.ease_lambda, cfg.baselines.ease_max_items)


def ranker_inputs(shoppers: Shoppers, catalog: Catalog, cands: Candidates) -> dict[str, np.ndarray]:
    """Ranker features of candidate pairs: numeric features and both content vectors (see candidates)."""
    return {
        "numeric": cands.numeric,
        "user_text": shoppers.user_text[cands.user_pos].astype(np.float32),
        "item_text": catalog.text_emb[cands.item],
    }


def label_pairs(window: pd.DataFrame, users: np.ndarray, cands: Candidates, catalog: Catalog, heads: list[str]) -> dict:
    """``label_<head>[p] = 1`` where pair ``p``'s user did the head's event on its item in ``window``."""
    item_index = catalog.row_of
    user_pos = {u: i for i, u in enumerate(users)}
    pair = cands.user_pos.astype(np.int64) * catalog.n_items + cands.item
    out = {}
    for head in heads:
        types = ("purchase",) if head == "purchase" else CLICK_TYPES
        hit = window[window["event_type"].isin(types) & window["user_id"].isin(user_pos.keys())
                     & window["item_id"].isin(item_index.keys())]
        keys = hit["user_id"].map(user_pos).to_numpy(np.int64) * catalog.n_items + hit["item_id"].map(item_index).to_numpy()
        out[f"label_{head}"] = np.isin(pair, np.unique(keys)).astype(np.float32)
    return out


@dataclass
class MultiStage:
    """Fitted system over one user state; ``score(rows)`` follows the baselines' scorer protocol."""

    catalog: Catalog
    state: UserState
    ranker: RankerArrays
    cfg: Params
    name: str = "shoprec"

    def rank_shoppers(self, shoppers: Shoppers) -> tuple[Candidates, dict[str, np.ndarray]]:
        """Candidates of ``shoppers`` and the ranker's predictions on them: every list's scoring path."""
        cands = candidates(self.state.items, shoppers, self.catalog, self.cfg.ranking.n_retrieval,
                           self.cfg.ranking.n_copurchase)
        return cands, self.rank_pairs(shoppers, cands)

    def rank_pairs(self, shoppers: Shoppers, cands: Candidates) -> dict[str, np.ndarray]:
        """The ranker on candidate pairs: :func:`ranker_inputs`' features, with the content projection taken
        once per shopper and once per catalog item (:attr:`item_content`)."""
        users = self.ranker.project(shoppers.user_text.astype(np.float32))
        return predict(self.ranker, cands.numeric, users, cands.user_pos, self.item_content, cands.item)

    @cached_property
    def item_content(self) -> np.ndarray:
        """The ranker's projection of every catalog item's text (``[n_items, d]``), taken once."""
        return self.ranker.project(self.catalog.text_emb)

    def rank(self, rows: np.ndarray) -> tuple[Candidates, dict[str, np.ndarray]]:
        """:meth:`rank_shoppers` of matrix ``rows`` as of the training cut-off (-1: no history)."""
        return self.rank_shoppers(self.state.at(rows))

    def score(self, rows: np.ndarray) -> np.ndarray:
        """Purchase probability on candidates, ``-inf`` elsewhere."""
        cands, pred = self.rank(rows)
        out = np.full((len(rows), self.catalog.n_items), -np.inf, dtype=np.float32)
        out[cands.user_pos, cands.item] = pred["purchase"]
        return out


@dataclass
class TwoTowerScorer:
    """Retrieval alone: cosine of query and candidate embeddings."""

    state: UserState
    name: str = "two_tower"

    def score(self, rows: np.ndarray) -> np.ndarray:
        return self.state.at(rows).query @ self.state.items.item_emb.T


def heads_for(events: pd.DataFrame) -> list[str]:
    """Purchase head always; a click head where the data has click or cart events."""
    return ["purchase"] + (["click"] if events["event_type"].isin(["click", "add_to_cart"]).any() else [])


def fit_ranker(replay: UserState, window: pd.DataFrame, catalog: Catalog, heads: list[str], cfg: Params,
               strategy: tf.distribute.Strategy) -> tuple[Ranker, dict]:
    """Train the ranker on candidates from the replay state, labelled by the window's events."""
    active = window.loc[window["event_type"].isin(CLICK_TYPES), "user_id"].unique()
    users = np.asarray(sorted(set(active) & replay.inter.user_index.keys()), dtype=object)
    if len(users) == 0:
        raise ValueError("ranking: no user of the validation window was seen before it; widen split.validation_days")
    shoppers = replay.at(replay.inter.rows(users))
    cands = candidates(replay.items, shoppers, catalog, cfg.ranking.n_retrieval, cfg.ranking.n_copurchase)
    feats = ranker_inputs(shoppers, catalog, cands) | label_pairs(window, users, cands, catalog, heads)
    positive = np.any([feats[f"label_{h}"] > 0 for h in heads], axis=0)
    rng = np.random.default_rng(cfg.seed)
    keep = positive | (rng.random(len(positive)) < cfg.ranking.negative_sample)
    ranker, losses = train_ranker({k: v[keep] for k, v in feats.items()}, heads, cfg.ranking, strategy, cfg.seed)
    report = {
        "replay_users": int(len(users)),
        "candidate_pairs": int(len(positive)),
        "training_pairs": int(keep.sum()),
        "positives": int(positive.sum()),
        "losses": losses,
    }
    return ranker, report

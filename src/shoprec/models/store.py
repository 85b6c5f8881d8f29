"""Load what the training stages stored: the catalog, the two-towers' vectors, the ranker, the system.

The evaluation, the serving bundle, the search engine and the CLI rebuild the recommender
from these files, so none of them needs a two-tower model in memory (see
:class:`~shoprec.layout.RetrievalFiles` for the layout).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from shoprec.config import Params, RankingParams
from shoprec.layout import Layout, RankingFiles, RetrievalFiles, SplitFiles
from shoprec.models.candidates import UserState
from shoprec.models.catalog import Catalog
from shoprec.models.baselines import EASE, ItemKNN, OwnHistory, Popularity
from shoprec.models.multistage import MultiStage, TwoTowerScorer, user_state
from shoprec.models.query_tower import QueryTowerWeights
from shoprec.models.ranking import Ranker, RankerArrays
from shoprec.text.catalog_embeddings import read_embeddings


def load_catalog(items_path: Path, text_emb_path: Path) -> Catalog:
    items = pd.read_parquet(items_path)
    ids, vectors = read_embeddings(text_emb_path)
    if not np.array_equal(ids, items["item_id"].to_numpy(dtype=object)):
        raise ValueError(f"{text_emb_path} does not match {items_path} row for row; re-run the embed_items stage")
    return Catalog.build(items, vectors)


def cutoffs(split: SplitFiles) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(valid_start, test_start) of the split."""
    summary = json.loads(split.summary.read_text())
    return pd.Timestamp(summary["valid_start"]), pd.Timestamp(summary["test_start"])


def phases(split: SplitFiles) -> dict[str, tuple[pd.DataFrame, pd.Timestamp]]:
    """Each two-tower's training events and cut-off: ``replay`` before the validation window, ``final`` all of train."""
    train = pd.read_parquet(split.train)
    valid_start, test_start = cutoffs(split)
    return {"replay": (train[train["timestamp"] < valid_start], valid_start), "final": (train, test_start)}


@dataclass(frozen=True)
class StoredVectors:
    """A two-tower phase's stored vectors: each training user's query vector as of the cut-off,
    the cold-start vector (an empty history) for anyone else, and the item vectors."""

    user_row: dict[str, int]
    query: np.ndarray  # [n_users, d]
    cold: np.ndarray  # [d]
    items: np.ndarray  # [n_items, d]

    @classmethod
    def load(cls, path: Path) -> "StoredVectors":
        stored = np.load(path, allow_pickle=False)
        return cls({str(u): i for i, u in enumerate(stored["user_ids"])}, stored["query_emb"],
                   stored["cold_query_emb"], stored["item_emb"])

    def user(self, user_id: str) -> np.ndarray:
        row = self.user_row.get(user_id)
        return self.cold if row is None else self.query[row]

    def users(self, user_ids: np.ndarray) -> np.ndarray:
        idx = np.fromiter((self.user_row.get(str(u), -1) for u in user_ids), dtype=np.int64, count=len(user_ids))
        return np.where((idx >= 0)[:, None], self.query[np.maximum(idx, 0)], self.cold[None, :])


def stored_state(events: pd.DataFrame, catalog: Catalog, cutoff: pd.Timestamp, cfg: Params,
                 retrieval: RetrievalFiles, phase: str) -> UserState:
    """Rebuild a :class:`UserState` from events and a two-tower phase's stored item vectors and query tower."""
    items = StoredVectors.load(retrieval.embeddings(phase)).items
    return user_state(events, catalog, cutoff, cfg, QueryTowerWeights.load(retrieval.query_tower(phase)), items)


def load_ranker(ranking: RankingFiles, text_dim: int) -> RankerArrays:
    """The stored ranker as the arrays scoring runs on (``text_dim``: the catalog's content vectors')."""
    spec = json.loads(ranking.config.read_text())
    numeric = np.zeros((1, spec["n_numeric"]), np.float32)
    model = Ranker(spec["heads"], RankingParams.model_validate(spec["ranking"]), np.concatenate([numeric, numeric]))
    text = np.zeros((1, text_dim), np.float32)
    model({"numeric": numeric, "user_text": text, "item_text": text})  # builds the layers the weights load into
    model.load_weights(str(ranking.weights)).expect_partial()
    return RankerArrays.from_model(model)


def load_system(split: SplitFiles, items_path: Path, text_emb_path: Path, retrieval: RetrievalFiles,
                ranking: RankingFiles, params: Params) -> MultiStage:
    """The full system as of the test cut-off, ready to score (evaluation, CLI, service)."""
    catalog = load_catalog(items_path, text_emb_path)
    train, test_start = phases(split)["final"]
    state = stored_state(train, catalog, test_start, params, retrieval, "final")
    return MultiStage(catalog, state, load_ranker(ranking, catalog.text_emb.shape[1]), params)


def load_layout(params: Params, layout: Layout = Layout()) -> MultiStage:
    """:func:`load_system` on the files of a repository after ``dvc repro`` (or a serving bundle)."""
    return load_system(layout.split, layout.items, layout.text_embeddings, layout.retrieval, layout.ranking, params)


def scorers(system: MultiStage, params: Params) -> dict[str, Callable[[], object]]:
    """Every system the evaluation compares, by name, each built only when called (EASE inverts
    a matrix): the baselines, ``two_tower`` (retrieval alone) and ``shoprec`` (``system`` itself)."""
    inter, b = system.state.inter, params.baselines
    return {
        "popularity": lambda: Popularity(inter), "own_history": lambda: OwnHistory(inter),
        "itemknn": lambda: ItemKNN(inter, b.itemknn_neighbours),
        "ease": lambda: EASE(inter, b.ease_lambda, b.ease_max_items),
        "two_tower": lambda: TwoTowerScorer(system.state), system.name: lambda: system,
    }

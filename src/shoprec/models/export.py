"""SavedModel exports whose signatures take raw ids, for any TF-serving stack.

* retrieval: ``recommend(user_id[B], history[B, H], day_of_week[B]) -> (scores[B, K], item_ids[B, K])``;
  history holds item ids, "" for padding. A ``StringLookup`` turns ids into the tokens
  the towers use (unknown user -> 0, the cold-start vector; unknown item -> 0, padding),
  and a ``tfrs.layers.factorized_top_k.BruteForce`` index over the candidate
  embeddings returns the top K. A sequence user tower (``retrieval.user_tower: gru``) also
  takes each history event's ``event_type[B, H]`` and ``days_ago[B, H]`` (days before the
  query time).
* ranking: ``score(user_text[N, d], item_text[N, d], numeric[N, F]) -> {head: p[N]}``
  (the candidate stage computes the numeric features and both content vectors).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from shoprec import saved_model
from shoprec.models.catalog import Catalog
from shoprec.models.ranking import Ranker

TOP_K = 100


class RetrievalModule(tf.Module):
    def __init__(self, fitted, catalog: Catalog, item_emb: np.ndarray, k: int = TOP_K):
        super().__init__()
        users = sorted(fitted.data.user_index, key=fitted.data.user_index.get)
        self.user_lookup = tf.keras.layers.StringLookup(vocabulary=users, num_oov_indices=1)
        self.item_lookup = tf.keras.layers.StringLookup(vocabulary=list(catalog.item_ids), num_oov_indices=1)
        self.query_tower = fitted.model.query_tower
        sequential = self.query_tower.gru is not None
        if sequential:  # type tokens as history.type_tokens writes them: position in the vocabulary + 1, unknown 0
            self.type_lookup = tf.keras.layers.StringLookup(vocabulary=list(fitted.data.event_types),
                                                            num_oov_indices=1)
        self.index = tfrs.layers.factorized_top_k.BruteForce(k=min(k, catalog.n_items))
        self.index.index(tf.constant(item_emb), tf.constant(list(catalog.item_ids)))
        ids = [tf.TensorSpec([None], tf.string, name="user_id"), tf.TensorSpec([None, None], tf.string, name="history"),
               tf.TensorSpec([None], tf.int32, name="day_of_week")]
        events = [tf.TensorSpec([None, None], tf.string, name="event_type"),
                  tf.TensorSpec([None, None], tf.float32, name="days_ago")]
        self.recommend = tf.function(self._events if sequential else self._items,
                                     input_signature=ids + events if sequential else ids)

    def _items(self, user_id, history, day_of_week):
        return self._top({"user": tf.cast(self.user_lookup(user_id), tf.int32),
                          "history": tf.cast(self.item_lookup(history), tf.int32), "dow": day_of_week})

    def _events(self, user_id, history, day_of_week, event_type, days_ago):
        tokens = tf.cast(self.item_lookup(history), tf.int32)
        return self._top({"user": tf.cast(self.user_lookup(user_id), tf.int32), "history": tokens, "dow": day_of_week,
                          "history_type": tf.cast(self.type_lookup(event_type), tf.int32),
                          "history_age": tf.where(tokens > 0, tf.math.log1p(tf.maximum(days_ago, 0.0)), 0.0)})

    def _top(self, features: dict) -> dict:
        scores, ids = self.index(self.query_tower(features))
        return {"scores": scores, "item_ids": ids}


def export_retrieval(fitted, catalog: Catalog, item_emb: np.ndarray, path: Path) -> Path:
    module = RetrievalModule(fitted, catalog, item_emb)
    # one call traces the signature and builds every variable before saving
    example = [tf.constant([""]), tf.constant([[""]]), tf.constant([0], tf.int32)]
    if module.query_tower.gru is not None:
        example += [tf.constant([[""]]), tf.constant([[0.0]])]
    module.recommend(*example)
    saved_model.save(module, Path(path), module.recommend)
    return path


class RankingModule(tf.Module):
    def __init__(self, ranker: Ranker, emb_dim: int, n_numeric: int):
        super().__init__()
        self.ranker = ranker
        # DCN cross layers need the feature width at trace time, so the signature is concrete
        self.score = tf.function(
            lambda user_text, item_text, numeric: self.ranker(
                {"user_text": user_text, "item_text": item_text, "numeric": numeric}),
            input_signature=[
                tf.TensorSpec([None, emb_dim], tf.float32, name="user_text"),
                tf.TensorSpec([None, emb_dim], tf.float32, name="item_text"),
                tf.TensorSpec([None, n_numeric], tf.float32, name="numeric"),
            ],
        )


def export_ranking(ranker: Ranker, emb_dim: int, n_numeric: int, path: Path) -> Path:
    module = RankingModule(ranker, emb_dim, n_numeric)
    saved_model.save(module, Path(path), module.score)
    return path

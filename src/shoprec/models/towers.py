"""The two towers of the retrieval model.

Items are *tokens* (catalog index + 1, 0 = padding). All item content lives in constant
tables inside the graph, so a tower maps a token to a vector with gathers only.

Candidate tower (item encoder)::

    v_i = W [ e_id(bucket_i) ; P t_i ; e_cat(c_i) ; e_brand(b_i) ; e_price(p_i) ]
    c_i = v_i / ||v_i||

where ``t_i`` is the MiniLM text embedding and ``P`` a trainable projection (transfer
learning: the language model is frozen, the projection adapts it). Items with fewer than
``min_item_count`` training interactions share id bucket 0, so a brand-new item is
placed by its content alone.

Query tower::

    h_u = mean_{j in history(u)} v_j          (the item encoder, shared, masked mean)
    q_u = normalise( MLP [ e_user(u) ; h_u ; e_dow(d) ] )

Sharing the item encoder puts the pooled history in the candidates' space, so "more
like what you bought" is easy to represent; the user id embedding adds what the history
does not say. Both outputs are L2-normalised, so the retrieval logit is a cosine.

``retrieval.user_tower: gru`` replaces the mean by the last state of a GRU run over the
same events in time order, each step ``[ v_j ; e_type(type_j) ; log1p(age_j) ]`` (the
event's type, and its age in days at the query time), padding masked: a sequence model
can weigh the latest events and the kind of interest (a purchase, a cart, a click) where
the mean weighs every event alike.
``retrieval.item_features`` and ``retrieval.query_features`` choose the parts of each
sum, so each part's worth can be measured by leaving it out.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from shoprec.models.catalog import Catalog


ITEM_FEATURES = ("id", "text", "category", "brand", "price")
QUERY_FEATURES = ("user", "history", "dow")
TYPE_DIM = 8  # width of the sequence tower's event-type embedding


def _with_padding_row(a: np.ndarray) -> np.ndarray:
    """Prepend a zero row so that token 0 (padding) gathers zeros."""
    a = np.asarray(a)
    return np.concatenate([np.zeros((1,) + a.shape[1:], dtype=a.dtype), a], axis=0)


class ItemEncoder(tf.keras.layers.Layer):
    """Token -> unnormalised item vector ``v_i`` from the parts named in ``features`` (see module docstring)."""

    def __init__(self, catalog: Catalog, id_buckets: np.ndarray, dim: int,
                 features: tuple[str, ...] = ITEM_FEATURES, **kwargs):
        super().__init__(**kwargs)
        # part name -> (constant table token -> index or vector, the layer that embeds it)
        tables = {
            "id": (id_buckets.astype(np.int32), lambda: tf.keras.layers.Embedding(int(id_buckets.max()) + 1, dim)),
            "text": (catalog.text_emb, lambda: tf.keras.layers.Dense(dim, use_bias=False)),
            "category": (catalog.category_idx, lambda: tf.keras.layers.Embedding(catalog.n_categories, 16)),
            "brand": (catalog.brand_idx, lambda: tf.keras.layers.Embedding(catalog.n_brands, 16)),
            "price": (catalog.price_bucket, lambda: tf.keras.layers.Embedding(catalog.n_price_buckets, 8)),
        }
        self.features = tuple(features)
        self.tables = [tf.constant(_with_padding_row(tables[f][0])) for f in self.features]
        self.parts = [tables[f][1]() for f in self.features]
        self.mix = tf.keras.layers.Dense(dim)

    def call(self, tokens: tf.Tensor) -> tf.Tensor:
        parts = [layer(tf.gather(table, tokens)) for table, layer in zip(self.tables, self.parts)]
        return self.mix(tf.concat(parts, axis=-1))


class QueryTower(tf.keras.layers.Layer):
    """(user token, history, day of week) -> normalised query vector ``q_u``, from the inputs in ``features``.

    The history is :func:`~shoprec.models.history.sequences`' matrices; ``n_event_types``
    > 0 makes it a sequence tower (the GRU of the module docstring) over that many event
    types, else the masked mean reads the item tokens alone.
    """

    def __init__(self, n_users: int, items: ItemEncoder, dim: int, features: tuple[str, ...] = QUERY_FEATURES,
                 n_event_types: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.items = items
        self.features = tuple(features)
        self.user_embedding = tf.keras.layers.Embedding(n_users + 1, dim) if "user" in self.features else None
        self.dow_embedding = tf.keras.layers.Embedding(7, 8) if "dow" in self.features else None
        self.type_embedding = tf.keras.layers.Embedding(n_event_types + 1, TYPE_DIM) if n_event_types else None
        self.gru = tf.keras.layers.GRU(dim) if n_event_types else None
        self.hidden = tf.keras.layers.Dense(2 * dim, activation="relu")
        self.out = tf.keras.layers.Dense(dim)

    def pooled_history(self, history: tf.Tensor) -> tf.Tensor:
        mask = tf.cast(history > 0, tf.float32)[..., None]
        vectors = tf.cast(self.items(history), tf.float32) * mask
        return tf.reduce_sum(vectors, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)

    def sequence_state(self, history: tf.Tensor, types: tf.Tensor, ages: tf.Tensor) -> tf.Tensor:
        """The GRU's last state over the unpadded steps (zeros for an empty history)."""
        steps = tf.concat([tf.cast(self.items(history), tf.float32), tf.cast(self.type_embedding(types), tf.float32),
                           tf.cast(ages, tf.float32)[..., None]], axis=-1)
        return tf.cast(self.gru(steps, mask=history > 0), tf.float32)

    def history_part(self, features: dict) -> tf.Tensor:
        if self.gru is None:
            return self.pooled_history(features["history"])
        return self.sequence_state(features["history"], features["history_type"], features["history_age"])

    def call(self, features: dict) -> tf.Tensor:
        parts = {
            "user": lambda: tf.cast(self.user_embedding(features["user"]), tf.float32),
            "history": lambda: self.history_part(features),
            "dow": lambda: tf.cast(self.dow_embedding(features["dow"]), tf.float32),
        }
        x = tf.concat([parts[f]() for f in self.features], axis=-1)
        return tf.math.l2_normalize(tf.cast(self.out(self.hidden(x)), tf.float32), axis=-1)


class CandidateTower(tf.keras.layers.Layer):
    """Token -> normalised candidate vector ``c_i``."""

    def __init__(self, items: ItemEncoder, **kwargs):
        super().__init__(**kwargs)
        self.items = items

    def call(self, tokens: tf.Tensor) -> tf.Tensor:
        return tf.math.l2_normalize(tf.cast(self.items(tokens), tf.float32), axis=-1)

"""Build the models' typed configs from the one ``Params`` object."""

from __future__ import annotations

from shoprec.config import Params
from shoprec.models.multistage import SystemConfig
from shoprec.models.ranking import RankingConfig
from shoprec.models.retrieval import RetrievalConfig


def system_config(params: Params) -> SystemConfig:
    r, k = params.retrieval, params.ranking
    return SystemConfig(
        weights=dict(params.interactions.weights),
        history_types=tuple(params.interactions.history_types),
        retrieval=RetrievalConfig(
            embedding_dim=r.embedding_dim, temperature=r.temperature, logq_correction=r.logq_correction,
            batch_size=r.batch_size, epochs=r.epochs, learning_rate=r.learning_rate,
            min_item_count=r.min_item_count, user_dropout=r.user_dropout, history_length=r.history_length,
        ),
        ranking=RankingConfig(
            cross_layers=k.cross_layers, deep_units=tuple(k.deep_units), batch_size=k.batch_size, epochs=k.epochs,
            learning_rate=k.learning_rate, negative_sample=k.negative_sample, n_retrieval=k.n_retrieval,
            n_copurchase=k.n_copurchase,
        ),
        seed=params.seed,
        ease_lambda=params.baselines.ease_lambda,
        ease_max_items=params.baselines.ease_max_items,
    )

"""Load a :class:`~shoprec.search.engine.SearchEngine` from what the search stages stored.

The CLI's ``search``, the service and the ``evaluate_search`` stage all load the engine
here, from a repository after ``dvc repro`` or from a serving bundle (same layout).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from shoprec.config import Params, TextParams
from shoprec.layout import Layout, LexicalFiles, QueryModelFiles, TextModelFiles
from shoprec.models.store import StoredVectors
from shoprec.search.engine import SearchEngine
from shoprec.search.index.lexical import LexicalIndex
from shoprec.search.index.semantic import SemanticIndex
from shoprec.search.index.titles import DefiningWords, TitleIndex
from shoprec.search.query.expansion import QueryExpansion
from shoprec.search.query.intent import CategoryIntent
from shoprec.search.query.parse import ColourVocabulary
from shoprec.search.query.spelling import Speller
from shoprec.text.cache import EncodingCache


def popularity_prior(path: Path, n_items: int) -> np.ndarray:
    """``log(1 + n_i) / log(1 + max n)`` in [0, 1] from the stage's popularity counts (all 0 without events)."""
    counts = np.load(path, allow_pickle=False).astype(np.float64)
    if len(counts) != n_items:
        raise ValueError(f"{path} has {len(counts)} items, the catalog {n_items}; re-run build_lexical_index")
    return np.log1p(counts) / max(np.log1p(counts.max(initial=0.0)), 1e-12)


def minilm(params: TextParams):
    """The float MiniLM encoder of ``params`` (its weights from the installed package unless ``model_dir``)."""
    from shoprec.text import MiniLMEncoder

    return MiniLMEncoder(params.model_dir or None, max_length=params.max_length)


def query_side_encoder(params: Params):
    """The encoder searches use: MiniLM with int8 weights (``search.query_encoder: int8``) or the float one.

    Both are ``text.model_dir``'s (the ``finetune_text`` stage's folder, or a bundle's copy of
    it), where the int8 export sits beside the weights it was made from. The int8 interpreter
    gets the CPU threads TensorFlow was given (the server sizes both to a worker's share of
    the cores); 0 there means each library's default.
    """
    if params.search.query_encoder == "float":
        return minilm(params.text)
    import tensorflow as tf

    from shoprec.text.quantized import QuantizedEncoder
    from shoprec.text.weights import TOKENIZER_FILES, resolve_model_dir

    model_dir = resolve_model_dir(params.text.model_dir or None, TOKENIZER_FILES)
    return QuantizedEncoder(TextModelFiles(model_dir).quantized_encoder, model_dir, params.text.max_length,
                            tf.config.threading.get_intra_op_parallelism_threads() or None)


def affinity_scorer(embeddings_path: Path):
    """``(user_id, items) -> (1 + cos(q_u, e_i)) / 2``: the two-tower's affinity of a shopper for items.

    ``q_u`` is the user's stored query vector as of the last training cut-off (the
    cold-start vector for an unknown id), ``e_i`` the items' candidate vectors: one
    product of a 64-d vector with the ``n_personalise`` fused items, so personalised
    search costs the same on any catalog size and needs no ranker features.
    """
    vectors = StoredVectors.load(embeddings_path)

    def score(user_id: str, items: np.ndarray) -> np.ndarray:
        return (1.0 + vectors.items[items] @ vectors.user(user_id)) / 2.0

    return score


def engine_from(items: pd.DataFrame, lexical: LexicalIndex, speller: Speller, semantic: SemanticIndex,
                intent: CategoryIntent | None, params: Params, encoder=None, personal=None,
                colour_min_items: int = 3, expansion: QueryExpansion | None = None,
                popularity: np.ndarray | None = None, title_index: TitleIndex | None = None,
                defining: DefiningWords | None = None) -> SearchEngine:
    """A :class:`SearchEngine` over ``items`` (in-memory parts; MiniLM loaded unless given)."""
    encoder = encoder or minilm(params.text)
    return SearchEngine(
        item_ids=items["item_id"].to_numpy(dtype=object), titles=items["title"].to_numpy(dtype=object),
        categories=items["category"].fillna("").to_numpy(dtype=object), prices=items["price"].to_numpy(np.float64),
        lexical=lexical, speller=speller, colours=ColourVocabulary.learn(items["title"], colour_min_items), semantic=semantic,
        embed=_query_encoder(encoder, params.search.query_cache), intent=intent, cfg=params.search,
        personal=personal, expansion=expansion, popularity=popularity, title_index=title_index, defining=defining,
    )


def _query_encoder(encoder, cache_size: int):
    """MiniLM for queries, repeats served from the cache (the server batches concurrent
    queries itself, in its encoder thread: :class:`shoprec.serving.batching.BackgroundBatcher`)."""
    import tensorflow as tf

    def encode(texts):
        return np.asarray(encoder.embed(tf.constant(texts)))

    return EncodingCache(encode, cache_size) if cache_size else encode


def load_speller(lexical: LexicalFiles) -> Speller:
    """The speller of the catalog vocabulary the ``build_lexical_index`` stage counted."""
    return Speller.from_frequency(json.loads(lexical.vocabulary.read_text()), 4)


def load_engine(params: Params, items_path: Path, lexical: LexicalFiles, query_model: QueryModelFiles,
                user_vectors: Path | None) -> SearchEngine:
    """The engine on what the search stages stored; ``user_vectors`` (the final two-tower's
    stored vectors) personalise, None does not."""
    items = pd.read_parquet(items_path)
    speller = load_speller(lexical)
    intent = CategoryIntent.load(query_model.intent) if query_model.intent.exists() else None
    personal = affinity_scorer(user_vectors) if user_vectors is not None else None
    return engine_from(items, LexicalIndex.load(lexical.bm25, len(items)), speller,
                       SemanticIndex.load(query_model.semantic), intent, params,
                       query_side_encoder(params), personal=personal,
                       expansion=QueryExpansion.load(lexical.expansion),
                       popularity=popularity_prior(lexical.popularity, len(items)),
                       title_index=TitleIndex.load(lexical.titles, len(items)),
                       defining=DefiningWords.load(lexical.defining))


def load_layout_engine(params: Params, layout: Layout = Layout(), personalise: bool = True) -> SearchEngine:
    """:func:`load_engine` on a repository after ``dvc repro`` (or a serving bundle, which has the same layout),
    with the MiniLM the ``finetune_text`` stage left there (the one the item vectors were embedded with)."""
    return load_engine(params.with_text_model(layout.text_model.folder), layout.items, layout.lexical, layout.query_model,
                       layout.retrieval.embeddings("final") if personalise else None)

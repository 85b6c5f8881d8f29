"""DVC stages ``build_lexical_index``, ``train_query_model``, ``evaluate_search``, and loading.

Layout under ``models/search/``::

    lexical/bm25/              bm25s index (items in items.parquet order)
    lexical/vocabulary.json    the speller's known words and their counts
    lexical/expansion.json     query word -> catalog word translations from the click logs
    lexical/popularity.npy     weighted training interactions per item (the hybrid order's prior)
    lexical/titles.npz         which items' titles have each word
    lexical/defining.json      title words that say what a product is (shoppers name them), from the click logs
    query_model/semantic.npz   item vectors (+ query projection when trained)
    query_model/intent.npz     category intent classifier (only when trained)
    query_model/saved_model/   raw query strings -> top-K item ids and scores
    query_model/query_encoder.tflite  MiniLM with int8 weights, for one query at a time (serving)
    query_model/summary.json, losses.csv

``reports/search_metrics.json`` and ``reports/search_metrics.md`` hold the comparison.
"""

from __future__ import annotations

import json
from collections import Counter
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from shoprec.config import Params
from shoprec.data.split import SplitPaths
from shoprec.paths import DEFINING_WORDS, POPULARITY, QUANTIZED_ENCODER, TITLE_INDEX, Artifacts
from shoprec.search.category_intent import CategoryIntent
from shoprec.search.evaluate import evaluate_queries, table, text_ceiling
from shoprec.search.expansion import QueryExpansion
from shoprec.search.hybrid import SearchEngine, analyse
from shoprec.search.lexical import LexicalIndex, token_counts
from shoprec.search.normalize import tokens
from shoprec.search.pairs import first_choices, query_pairs
from shoprec.search.query_parser import ColourVocabulary, clean_text
from shoprec.search.semantic import SemanticIndex
from shoprec.search.spelling import Speller
from shoprec.search.titles import DefiningWords, TitleIndex, title_tokens
from shoprec.text.cache import EncodingCache

SYSTEMS = {"lexical": ("lexical", False), "semantic": ("semantic", False), "hybrid": ("hybrid", False),
           "hybrid_personalised": ("hybrid", True)}


def query_word_counts(events: pd.DataFrame) -> Counter:
    """Per logged query word: the number of sessions that typed it (price phrases cut)."""
    searches = events.loc[events["query"].fillna("").ne(""), ["session_id", "query"]].drop_duplicates()
    return Counter(t for q in searches["query"] for t in tokens(clean_text(q)[1]))


def chosen_titles(chosen: list[tuple[str, int]], titles: list[list[str]]) -> dict[str, list[set[str]]]:
    """Per logged query word (price phrases cut): the title tokens of the items chosen first after it."""
    out: dict[str, list[set[str]]] = {}
    for query, row in chosen:
        for word in set(tokens(clean_text(query)[1])):
            out.setdefault(word, []).append(set(titles[row]))
    return out


def build_speller(items: pd.DataFrame, events: pd.DataFrame, chosen: list[tuple[str, int]], titles: list[list[str]],
                  params: Params) -> Speller:
    """``chosen``: the logged searches' first choices (:func:`first_rows`); ``titles``: the items' title tokens."""
    return Speller.build(token_counts(items), query_word_counts(events), min_query_count=params.search.min_query_count,
                         chosen_titles=chosen_titles(chosen, titles), typo_share=params.search.typo_share)


def first_rows(items: pd.DataFrame, first: pd.DataFrame) -> list[tuple[str, int]]:
    """``(query, catalog row)`` of the logged searches' first choices (items no longer in the catalog dropped)."""
    row = pd.Series(np.arange(len(items)), index=items["item_id"])
    pairs = first[first["item_id"].isin(row.index)]
    return list(zip(pairs["query"], row[pairs["item_id"]].to_numpy().tolist()))


def build_lexical_index(items_path: Path, split_dir: Path, out_dir: Path, params: Params) -> Path:
    """BM25 index, the speller's vocabulary, the query expansion, the title index and defining words, and item
    popularity, from the catalog and training events (layout in the module docstring)."""
    from shoprec.models.interactions import build_interactions

    items = pd.read_parquet(items_path)
    events = pd.read_parquet(SplitPaths.under(split_dir).train)
    cfg = params.search
    out_dir.mkdir(parents=True, exist_ok=True)
    LexicalIndex.build(items, cfg.title_weight, cfg.k1, cfg.b).save(out_dir / "bm25")
    chosen = first_rows(items, first_choices(events, params.interactions.weights))
    titles = title_tokens(items["title"])
    speller = build_speller(items, events, chosen, titles, params)
    (out_dir / "vocabulary.json").write_text(json.dumps(speller.frequency, sort_keys=True))

    @cache
    def read(query: str) -> list[str]:  # a logged query as the engine reads it, so logs and searches agree
        return analyse(query, speller).words

    QueryExpansion.learn(chosen, titles, read, cfg.expansion_min_share, cfg.expansion_min_lift,
                         cfg.expansion_min_items).save(out_dir / "expansion.json")
    TitleIndex.build(titles).save(out_dir / TITLE_INDEX)
    DefiningWords.learn(chosen, titles, title_tokens(items["brand"]), read, cfg.defining_share,
                        cfg.defining_min_items).save(out_dir / DEFINING_WORDS)
    inter = build_interactions(events, items["item_id"].to_numpy(), params.interactions.weights)
    np.save(out_dir / POPULARITY, inter.item_popularity().astype(np.float32))
    return out_dir


def popularity_prior(path: Path, n_items: int) -> np.ndarray:
    """``log(1 + n_i) / log(1 + max n)`` in [0, 1] from the stage's popularity counts (all 0 without events)."""
    counts = np.load(path, allow_pickle=False).astype(np.float64)
    if len(counts) != n_items:
        raise ValueError(f"{path} has {len(counts)} items, the catalog {n_items}; re-run build_lexical_index")
    return np.log1p(counts) / max(np.log1p(counts.max(initial=0.0)), 1e-12)


def _encoder(params: Params):
    from shoprec.text import MiniLMEncoder

    return MiniLMEncoder(params.text.model_dir or None, max_length=params.text.max_length)


def _query_side_encoder(params: Params, model_dir: Path):
    """The encoder searches use: MiniLM with int8 weights (``search.query_encoder: int8``) or the float one.

    The int8 interpreter gets the CPU threads TensorFlow was given (the server sizes
    both to a worker's share of the cores); 0 there means each library's default.
    """
    if params.search.query_encoder == "float":
        return _encoder(params)
    import tensorflow as tf

    from shoprec.text.quantized import QuantizedEncoder

    return QuantizedEncoder(model_dir / QUANTIZED_ENCODER, params.text.model_dir or None, params.text.max_length,
                            tf.config.threading.get_intra_op_parallelism_threads() or None)


def train_query_model(split_dir: Path, items_path: Path, text_emb_path: Path, retrieval_dir: Path, out_dir: Path,
                      params: Params) -> Path:
    """Query tower + category intent from logged searches, or the zero-shot fallback without them."""
    from shoprec.models.stages import load_catalog
    from shoprec.models.training import write_losses
    from shoprec.search.semantic import export_query_model, train_projection
    from shoprec.text import embed_texts
    from shoprec.text.catalog_embeddings import read_embeddings
    from shoprec.text.quantized import export_int8

    cfg = params.search
    catalog = load_catalog(items_path, text_emb_path)
    item_index = {item: i for i, item in enumerate(catalog.item_ids)}
    pairs = query_pairs(pd.read_parquet(SplitPaths.under(split_dir).train), params.interactions.weights)
    pairs = pairs[pairs["item_id"].isin(item_index.keys())]
    encoder = _encoder(params)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "intent.npz").unlink(missing_ok=True)  # a stale classifier must not outlive its data
    summary: dict = {"pairs": int(len(pairs)), "queries": int(pairs["query"].nunique())}
    losses: list[float] = []
    if len(pairs) >= cfg.min_query_pairs:
        ids, item_emb = read_embeddings(retrieval_dir / "item_embeddings.parquet")
        if not np.array_equal(ids, catalog.item_ids):
            raise ValueError("models/retrieval item embeddings do not follow items.parquet; re-run train_retrieval")
        queries = pairs["query"].unique()
        q_emb = embed_texts(queries, encoder, batch_size=params.text.batch_size, progress=False)
        q_row = pd.Series(np.arange(len(queries)), index=queries)[pairs["query"]].to_numpy()
        item = pairs["item_id"].map(item_index).to_numpy()
        weight = pairs["weight"].to_numpy(np.float32)
        projection, losses = train_projection(q_emb[q_row], item, weight, item_emb, cfg.query_hidden,
                                              cfg.query_temperature, cfg.query_epochs, cfg.query_batch_size,
                                              cfg.query_learning_rate, params.seed)
        semantic = SemanticIndex.of(catalog.text_emb, item_emb, projection, cfg.tower_weight)
        labelled = pd.DataFrame({"q": q_row, "category": catalog.categories[item], "w": weight})
        labelled = labelled[labelled["category"] != ""].groupby(["q", "category"], as_index=False)["w"].sum()
        if labelled["category"].nunique() >= 2:
            intent = CategoryIntent.fit(q_emb[labelled["q"].to_numpy()], labelled["category"].to_numpy(),
                                        labelled["w"].to_numpy(np.float32), cfg.intent_threshold, seed=params.seed)
            intent.save(out_dir / "intent.npz")
            summary["intent_categories"] = int(len(intent.categories))
    else:
        semantic = SemanticIndex.of(catalog.text_emb)
    semantic.save(out_dir / "semantic.npz")
    summary["semantic"] = ("MiniLM text cosine + trained query tower vs two-tower item embeddings"
                           if semantic.projection else "zero-shot: MiniLM query vs item text embeddings (no logged queries)")
    write_losses({"query_tower": losses}, out_dir / "losses.csv")
    export_query_model(encoder, semantic, catalog.item_ids, out_dir / "saved_model")
    export_int8(encoder, out_dir / QUANTIZED_ENCODER)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return out_dir


def affinity_scorer(embeddings_path: Path):
    """``(user_id, items) -> (1 + cos(q_u, e_i)) / 2``: the two-tower's affinity of a shopper for items.

    ``q_u`` is the user's stored query vector as of the last training cut-off (the
    cold-start vector for an unknown id), ``e_i`` the items' candidate vectors: one
    product of a 64-d vector with the ``n_personalise`` fused items, so personalised
    search costs the same on any catalog size and needs no ranker features.
    """
    stored = np.load(embeddings_path, allow_pickle=False)
    row = {str(u): i for i, u in enumerate(stored["user_ids"])}
    query_emb, cold, item_emb = stored["query_emb"], stored["cold_query_emb"], stored["item_emb"]

    def score(user_id: str, items: np.ndarray) -> np.ndarray:
        q = query_emb[row[user_id]] if user_id in row else cold
        return (1.0 + item_emb[items] @ q) / 2.0

    return score


def engine_from(items: pd.DataFrame, lexical: LexicalIndex, speller: Speller, semantic: SemanticIndex,
                intent: CategoryIntent | None, params: Params, encoder=None, personal=None,
                colour_min_items: int = 3, expansion: QueryExpansion | None = None,
                popularity: np.ndarray | None = None, title_index: TitleIndex | None = None,
                defining: DefiningWords | None = None) -> SearchEngine:
    """A :class:`SearchEngine` over ``items`` (in-memory parts; MiniLM loaded unless given)."""
    encoder = encoder or _encoder(params)
    return SearchEngine(
        item_ids=items["item_id"].to_numpy(dtype=object), titles=items["title"].to_numpy(dtype=object),
        categories=items["category"].fillna("").to_numpy(dtype=object), prices=items["price"].to_numpy(np.float64),
        lexical=lexical, speller=speller, colours=ColourVocabulary.learn(items["title"], colour_min_items), semantic=semantic,
        embed=_query_encoder(encoder, params.search.query_cache), intent=intent, cfg=params.search,
        personal=personal, expansion=expansion, popularity=popularity, title_index=title_index, defining=defining,
    )


def _query_encoder(encoder, cache_size: int):
    """MiniLM for queries, repeats served from the cache (the server batches concurrent
    queries itself, in its encoder thread: :class:`shoprec.batching.BackgroundBatcher`)."""
    import tensorflow as tf

    def encode(texts):
        return np.asarray(encoder.embed(tf.constant(texts)))

    return EncodingCache(encode, cache_size) if cache_size else encode


def load_engine(params: Params, artifacts: Artifacts = Artifacts(), personalise: bool = True) -> SearchEngine:
    """The engine on the outputs of the last ``dvc repro`` (or a serving bundle, which has the same layout)."""
    items = pd.read_parquet(artifacts.items)
    lexical_dir, model_dir = artifacts.root / "models/search/lexical", artifacts.root / "models/search/query_model"
    speller = Speller.from_frequency(json.loads((lexical_dir / "vocabulary.json").read_text()), 4)
    intent = CategoryIntent.load(model_dir / "intent.npz") if (model_dir / "intent.npz").exists() else None
    personal = affinity_scorer(artifacts.retrieval / "final" / "embeddings.npz") if personalise else None
    return engine_from(items, LexicalIndex.load(lexical_dir / "bm25", len(items)), speller,
                       SemanticIndex.load(model_dir / "semantic.npz"), intent, params,
                       _query_side_encoder(params, model_dir), personal=personal,
                       expansion=QueryExpansion.load(lexical_dir / "expansion.json"),
                       popularity=popularity_prior(lexical_dir / POPULARITY, len(items)),
                       title_index=TitleIndex.load(lexical_dir / TITLE_INDEX, len(items)),
                       defining=DefiningWords.load(lexical_dir / DEFINING_WORDS))


def evaluate_search(labels_path: Path, out_dir: Path, params: Params, artifacts: Artifacts = Artifacts()) -> Path:
    """Every system on the query labels -> ``search_metrics.json`` and a Markdown table."""
    labels = pd.read_parquet(labels_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics: dict = {"queries": int(labels["query_id"].nunique())}
    if metrics["queries"]:
        engine = load_engine(params, artifacts)
        for name, (mode, personal) in SYSTEMS.items():
            user = "" if personal else None  # labels carry no shopper: the cold-start affinity
            metrics[name] = evaluate_queries(
                labels, lambda q: [engine.item_ids[i] for i in engine.rank(q, mode, user)[1]])
        metrics["text_ceiling"] = text_ceiling(labels)
        lex, hyb = metrics["lexical"]["all"]["ndcg@10"], metrics["hybrid"]["all"]["ndcg@10"]
        metrics["hybrid_over_lexical"] = round(hyb / lex, 4) if lex else None
        ceiling = metrics["text_ceiling"]["all"]["ndcg@10"]
        metrics["hybrid_share_of_headroom"] = round((hyb - lex) / (ceiling - lex), 4) if ceiling > lex else None
        metrics["typo_over_clean"] = {
            s: round(metrics[s]["by_type"]["typo"]["ndcg@10"] / max(metrics[s]["by_type"]["clean"]["ndcg@10"], 1e-9), 4)
            for s in SYSTEMS if {"typo", "clean"} <= metrics[s]["by_type"].keys()}
    (out_dir / "search_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    report = table(metrics, list(SYSTEMS)) if metrics["queries"] else "No query labels: search not evaluated."
    (out_dir / "search_metrics.md").write_text(f"# Search on {metrics['queries']} labelled queries\n\n{report}\n")
    return out_dir / "search_metrics.json"

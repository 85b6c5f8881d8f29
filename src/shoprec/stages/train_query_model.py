"""DVC stage ``train_query_model``: the semantic leg of search (:class:`~shoprec.layout.QueryModelFiles`).

With enough logged (query, chosen item) pairs: a query tower (MiniLM + a trained
projection into the two-tower's item space) and a category intent classifier; without
them, zero-shot MiniLM cosine. Either way the SavedModel export (MiniLM with int8 weights,
the query encoder of serving, is ``finetune_text``'s).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from shoprec.config import Params
from shoprec.layout import QueryModelFiles, RetrievalFiles, SplitFiles
from shoprec.models.store import load_catalog
from shoprec.models.training import write_losses
from shoprec.search.index.semantic import (
    SemanticIndex,
    export_query_model,
    train_projection,
)
from shoprec.search.pairs import query_pairs
from shoprec.search.query.intent import CategoryIntent
from shoprec.search.store import minilm
from shoprec.text import embed_texts
from shoprec.text.catalog_embeddings import read_embeddings


def train_query_model(split_dir: Path, items_path: Path, text_emb_path: Path, retrieval_dir: Path, out_dir: Path,
                      params: Params) -> Path:
    """Query tower + category intent from logged searches, or the zero-shot fallback without them."""
    cfg, out = params.search, QueryModelFiles(out_dir)
    catalog = load_catalog(items_path, text_emb_path)
    item_index = catalog.row_of
    pairs = query_pairs(pd.read_parquet(SplitFiles(split_dir).train), params.interactions.weights)
    pairs = pairs[pairs["item_id"].isin(item_index.keys())]
    encoder = minilm(params.text)
    out_dir.mkdir(parents=True, exist_ok=True)
    out.intent.unlink(missing_ok=True)  # a stale classifier must not outlive its data
    summary: dict = {"pairs": int(len(pairs)), "queries": int(pairs["query"].nunique())}
    losses: list[float] = []
    if len(pairs) >= cfg.min_query_pairs:
        ids, item_emb = read_embeddings(RetrievalFiles(retrieval_dir).item_embeddings)
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
            intent.save(out.intent)
            summary["intent_categories"] = int(len(intent.categories))
    else:
        semantic = SemanticIndex.of(catalog.text_emb)
    semantic.save(out.semantic)
    summary["semantic"] = ("MiniLM text cosine + trained query tower vs two-tower item embeddings"
                           if semantic.projection else "zero-shot: MiniLM query vs item text embeddings (no logged queries)")
    write_losses({"query_tower": losses}, out.losses)
    export_query_model(encoder, semantic, catalog.item_ids, out.saved_model)
    out.summary.write_text(json.dumps(summary, indent=2) + "\n")
    return out_dir

"""A serving bundle grown to N items, for load tests at catalog scale (``bench_load.py --items N``).

What a load test at a million items needs is a server holding a million-item catalog and
its indexes, not a model trained on a million items (the storefront generator's users
could not tell a million products apart anyway). So the trained bundle's first items
stay exactly as trained (their users' lists, co-purchase neighbours and search models
are untouched), and the catalog grows with *variants* of them: each added item copies a
random trained item with a new id, a numbered title, a price within +-25% and no
interactions (search popularity 0), and its vectors are the original's plus noise,
renormalised, so the vector index faces N distinct vectors clustered the way real ones are; the
same for their text vectors and their rows in the query tower's item table, which real-time
scoring reads (the ranker's content features, a shopper's history). Then, with the bundle's own params
and code: the BM25 and title indexes over the whole catalog, the semantic index rows, the HNSW
graphs of /similar and of semantic search (``serving.ann`` picks them from
``serving.ann_threshold`` items), and the manifest.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from shoprec.config import load_params
from shoprec.layout import BundleFiles
from shoprec.models.query_tower import QueryTowerWeights
from shoprec.search.index.lexical import LexicalIndex
from shoprec.search.index.semantic import SemanticIndex
from shoprec.search.index.titles import TitleIndex, title_tokens
from shoprec.serving.bundle import file_digests, save_indexes
from shoprec.text.catalog_embeddings import read_embeddings, write_embeddings

NOISE = 0.35  # noise norm relative to the vector's: variants stay near their original, not on it


def _variants(vectors: np.ndarray, origin: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    base = vectors[origin]
    noise = rng.standard_normal(base.shape).astype(np.float32)
    noise *= NOISE * np.linalg.norm(base, axis=1, keepdims=True) / np.linalg.norm(noise, axis=1, keepdims=True)
    out = base + noise
    return out * (np.linalg.norm(base, axis=1, keepdims=True) / np.linalg.norm(out, axis=1, keepdims=True))


def scale_bundle(src: Path, dst: Path, n_items: int, seed: int = 0) -> Path:
    """Copy the bundle ``src`` to ``dst`` with ``n_items`` items in all (see the module docstring)."""
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    bundle = BundleFiles(dst)
    repo, params, rng = bundle.layout, load_params(bundle.params), np.random.default_rng(seed)
    items = pd.read_parquet(repo.items)
    extra = n_items - len(items)
    if extra <= 0:
        raise ValueError(f"the bundle has {len(items):,} items already; ask for more than that")
    origin = rng.integers(0, len(items), extra)
    added = items.iloc[origin].reset_index(drop=True)
    number = pd.Series(np.arange(extra))
    added["item_id"] = "VARIANT-" + number.astype(str).str.zfill(7)
    added["title"] = added["title"] + " no. " + (number % 9973).astype(str)
    added["price"] = (added["price"] * rng.uniform(0.75, 1.25, extra)).round(2)
    catalog = pd.concat([items, added], ignore_index=True)
    catalog.to_parquet(repo.items, index=False)

    embeddings_path = repo.retrieval.item_embeddings
    _, item_emb = read_embeddings(embeddings_path)  # rows follow items.parquet (ServingModel.load checks)
    item_emb = np.concatenate([item_emb, _variants(item_emb, origin, rng)])
    write_embeddings(catalog["item_id"].to_numpy(dtype=object), item_emb, embeddings_path)
    final = repo.retrieval.embeddings("final")  # the towers' vectors (search personalisation)
    stored = dict(np.load(final, allow_pickle=False))
    np.savez(final, **(stored | {"item_emb": item_emb}))

    _, text_emb = read_embeddings(repo.text_embeddings)  # the catalog's text vectors: semantic search's and the ranker's
    text_emb = np.concatenate([text_emb, _variants(text_emb, origin, rng)])
    write_embeddings(catalog["item_id"].to_numpy(dtype=object), text_emb, repo.text_embeddings)
    tower_path = repo.retrieval.query_tower("final")  # its item table reads a shopper's history, variants included
    tower = QueryTowerWeights.load(tower_path)
    history = tower.history_vectors
    grown = np.concatenate([history, _variants(history[1:], origin, rng)])
    dataclasses.replace(tower, history_vectors=grown).save(tower_path)

    semantic_path = repo.query_model.semantic
    semantic = SemanticIndex.load(semantic_path)  # built from the same text vectors: a variant's are the ones above
    SemanticIndex.of(text_emb, item_emb, semantic.projection, semantic.tower_weight).save(semantic_path)

    s = params.search
    lexical = repo.lexical
    shutil.rmtree(lexical.bm25)
    LexicalIndex.build(catalog, s.title_weight, s.k1, s.b).save(lexical.bm25)
    TitleIndex.build(title_tokens(catalog["title"])).save(lexical.titles)
    popularity = np.load(lexical.popularity)
    np.save(lexical.popularity, np.concatenate([popularity, np.zeros(extra, popularity.dtype)]))
    save_indexes(bundle, item_emb, params)

    manifest = json.loads(bundle.manifest.read_text())
    manifest |= {"version": f"{manifest['version']}-x{n_items}", "items": n_items, "files": file_digests(dst)}
    bundle.manifest.write_text(json.dumps(manifest, indent=2) + "\n")
    return dst

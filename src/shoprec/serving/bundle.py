"""The serving bundle: what the service needs from the last ``dvc repro``, in one folder.

The bundle mirrors the repository's artifact layout (:class:`shoprec.layout.Layout`) for
what it copies, so the search engine and the recommender load from it with the same code
as the CLI, plus what only serving needs, precomputed from the gated models under
``serving/`` (:class:`shoprec.layout.BundleFiles`). Its manifest lists the sha256 of every
file, and no run details: the same models give the same bytes.

The recommendation lists are precomputed here, in batches, with the exact code the
evaluation gated (:func:`shoprec.models.recommend.ranked`): a request for one is a lookup
plus an optional MMR re-rank. By default ``/recommend`` computes the list at request time
instead (:mod:`shoprec.serving.realtime`: milliseconds of CPU per shopper), from what the
bundle also carries for it (:func:`realtime_paths`: the training history, the query tower,
the ranker's weights), and the precomputed list is its fallback past the deadline. What
must answer for any input online is retrieval by vector (similar items, semantic search),
which goes through an index (:mod:`shoprec.search.index.vectors`) that scales to a million items.

A baseline (``shoprec package --system popularity``, or ``own_history``, ``itemknn``,
``ease``, ``two_tower``: the systems the evaluation compares) packages the same way: its
lists are the baseline's top scores instead of the ranker's, everything else (search,
/similar, the catalog) is the same run's, so it can serve as an experiment's challenger
or as a fallback. Its version starts with its name (``shoprec:popularity-<data>-<content>``).

The bundle is all the service reads: MiniLM's int8 export and tokenizer files (and, with
``search.query_encoder: float``, its float weights) are copied in from the ``finetune_text``
stage's model directory (the fine-tuned weights, or the pretrained ones it copied;
:func:`copy_text_model`), so a bento never needs the weights package, whose own
dependencies include PyTorch.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from shoprec.config import Params
from shoprec.layout import BundleFiles, Layout

COLD_USER = ""  # the row of recommendations.parquet for a visitor with no history
VIEWS = {"all": False, "new": True}  # view -> exclude the user's purchases
GATED = "shoprec"  # the retrieve -> rank system the gate passed (MultiStage's name)
SYSTEMS = ("popularity", "own_history", "itemknn", "ease", "two_tower", GATED)  # what `package --system` takes


def realtime_paths(repo: Layout) -> list[Path]:
    """What real-time scoring loads (:func:`shoprec.models.store.load_layout` on the bundle): the training
    history and its cut-off, the item text vectors, the final query tower and the ranker's weights."""
    ranking = repo.ranking
    return [repo.split.train, repo.split.summary, repo.text_embeddings, repo.retrieval.query_tower("final"),
            ranking.config, *sorted(ranking.folder.glob(ranking.weights.name + ".*"))]


def copied_paths(repo: Layout) -> list[Path]:
    """Repository artifacts the bundle carries unchanged (the category intent classifier only when trained, the
    help centre's when its stage ran)."""
    paths = [repo.items, repo.retrieval.embeddings("final"), repo.retrieval.item_embeddings, repo.lexical.folder,
             repo.query_model.semantic, repo.text_model.quantized_encoder, *realtime_paths(repo)]
    return paths + [p for p in [repo.query_model.intent, repo.intents.folder] if p.exists()]


def file_digests(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` except the manifest, by relative path."""
    manifest = BundleFiles(root).manifest
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file() and p != manifest
    }


def data_hash(repo: Layout) -> str:
    """sha256 (12 hex) of the clean catalog and events: names the data the models saw."""
    digest = hashlib.sha256()
    for path in (repo.items, repo.events):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _top_scores(scorer, length: int):
    """``rows -> [(items, scores)]``: each row's ``length`` best items by ``scorer``, plus as many as the
    row bought, so that its list without purchases (the ``new`` view) is still ``length`` long."""
    from shoprec.topk import top_k

    def rank(rows: np.ndarray, shoppers) -> list[tuple[np.ndarray, np.ndarray]]:
        bought = shoppers.purchased.getnnz(axis=1)
        items, scores = top_k(scorer.score(rows).astype(np.float32, copy=False), length + int(bought.max(initial=0)))
        return list(zip(items, scores))

    return rank


def _lists(system, length: int, system_name: str, params: Params, batch: int = 256) -> pd.DataFrame:
    """Top ``length`` of every known user and the cold-start visitor by ``system_name``, both views, explained."""
    from shoprec.models.recommend import explain, ranked, without_purchases
    from shoprec.models.store import scorers

    if system_name == GATED:  # the ranker's candidates only, as the evaluation gated them
        rank = lambda rows, shoppers: ranked(system, shoppers)  # noqa: E731
    else:
        rank = _top_scores(scorers(system, params)[system_name](), length)
    users = np.append(system.state.inter.user_ids.astype(str), COLD_USER)
    rows = np.append(np.arange(system.state.inter.n_users), -1)
    frames = []
    for start in range(0, len(rows), batch):
        chunk = rows[start:start + batch]
        shoppers = system.state.at(chunk)
        for pos, (user, (items, scores)) in enumerate(zip(users[start:start + batch], rank(chunk, shoppers))):
            for view, exclude in VIEWS.items():
                top, top_scores = without_purchases(shoppers, pos, items, scores) if exclude else (items, scores)
                top, top_scores = top[:length], top_scores[:length]
                frames.append(pd.DataFrame({
                    "user_id": user, "view": view, "rank": np.arange(1, len(top) + 1, dtype=np.int32),
                    "item": top.astype(np.int32), "score": top_scores.astype(np.float32),
                    "explanation": explain(system, shoppers, pos, top)}))
    return pd.concat(frames, ignore_index=True)


def _history(train: pd.DataFrame, item_index: dict[str, int]) -> pd.DataFrame:
    buys = train[(train["event_type"] == "purchase") & train["item_id"].isin(item_index.keys())]
    grouped = buys.groupby(["user_id", "item_id"], as_index=False).agg(
        purchases=("quantity", "size"), last_bought=("timestamp", "max"))
    return pd.DataFrame({"user_id": grouped["user_id"].astype(str),
                         "item": grouped["item_id"].map(item_index).astype(np.int32),
                         "purchases": grouped["purchases"].astype(np.int32), "last_bought": grouped["last_bought"]})


def _together(copurchase, per_item: int) -> pd.DataFrame:
    """Top ``per_item`` co-purchase neighbours (cosine over buyers) of every item."""
    coo = copurchase.tocoo()
    pairs = pd.DataFrame({"item": coo.row.astype(np.int32), "other": coo.col.astype(np.int32),
                          "score": coo.data.astype(np.float32)})
    pairs = pairs.sort_values(["item", "score", "other"], ascending=[True, False, True])
    pairs["rank"] = pairs.groupby("item").cumcount().astype(np.int32) + 1
    return pairs[pairs["rank"] <= per_item].reset_index(drop=True)


def _save_index(vectors: np.ndarray, params: Params, path: Path) -> None:
    """Build the HNSW graph here, once, when the catalog is large enough to want one (minutes at 1M items)."""
    from shoprec.search.index.vectors import FaissIndex, build_index

    s = params.serving
    index = build_index(vectors, s.ann, s.ann_threshold, s.hnsw_m, s.hnsw_ef_construction, s.hnsw_ef_search)
    if isinstance(index, FaissIndex):
        index.save(path)


def save_indexes(bundle: BundleFiles, item_emb: np.ndarray, params: Params) -> None:
    """The item index of /similar and the semantic search index, each only where ``serving.ann`` wants one."""
    from shoprec.search.index.semantic import SemanticIndex

    for path in (bundle.item_index, bundle.semantic_index):
        path.unlink(missing_ok=True)
    _save_index(item_emb, params, bundle.item_index)
    _save_index(SemanticIndex.load(bundle.layout.query_model.semantic).item_vectors, params, bundle.semantic_index)


def copy_text_model(params: Params, dest: Path) -> None:
    """The MiniLM files the service's query encoder reads, from ``text.model_dir`` (the weights package when empty):
    the tokenizer's (vocabulary, and its config when there), plus the network's for the float encoder."""
    from shoprec.text.weights import REQUIRED_FILES, TOKENIZER_FILES, copy_model_files, resolve_model_dir

    needed = REQUIRED_FILES if params.search.query_encoder == "float" else TOKENIZER_FILES
    copy_model_files(resolve_model_dir(params.text.model_dir or None, needed), dest, needed)


def build_bundle(repo: Layout, params: Params, out_dir: Path, params_path: Path, system_name: str = GATED) -> Path:
    """Write the serving bundle of ``system_name`` (the gated model, or a baseline) over the models under ``repo``
    into ``out_dir`` (replaced). Only the gated model needs the gate to have passed."""
    from shoprec.models.store import load_layout

    if system_name not in SYSTEMS:
        raise ValueError(f"--system {system_name!r} is not a system shoprec evaluates; "
                         f"choose one of {', '.join(SYSTEMS)}, e.g. --system popularity")
    gate = json.loads(repo.reports.gate.read_text())
    if system_name == GATED and not gate.get("passed"):
        raise RuntimeError(f"the gate refused these models ({gate.get('reason', 'no reason recorded')}); "
                           "nothing to package")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    bundle = BundleFiles(out_dir)
    (out_dir / "serving").mkdir(parents=True)
    for src in copied_paths(repo):
        dst = out_dir / src.relative_to(repo.root)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(src, dst) if src.is_dir() else shutil.copy2(src, dst)
    shutil.copy2(params_path, bundle.params)
    copy_text_model(params.with_text_model(repo.text_model.folder), bundle.text_model)
    system = load_layout(params, repo)
    _lists(system, params.serving.list_length, system_name, params).to_parquet(bundle.lists, index=False)
    _history(pd.read_parquet(repo.split.train), system.catalog.row_of).to_parquet(bundle.history, index=False)
    _together(system.state.items.copurchase, params.serving.together_per_item).to_parquet(bundle.together,
                                                                                        index=False)
    save_indexes(bundle, system.state.items.item_emb, params)
    files = file_digests(out_dir)
    data = data_hash(repo)
    content = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    version = f"{data}-{content[:8]}" if system_name == GATED else f"{system_name}-{data}-{content[:8]}"
    manifest = {
        "version": version, "system": system_name, "data_hash": data, "gate": gate,
        "users": int(system.state.inter.n_users), "items": int(system.catalog.n_items), "files": files,
    }
    bundle.manifest.write_text(json.dumps(manifest, indent=2) + "\n")
    return out_dir

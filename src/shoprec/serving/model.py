"""What the service answers with: a serving bundle loaded into memory.

``verify(root)`` checks a bundle without loading models (every file present, sha256 as
the manifest says) so that the server refuses to start on a missing or corrupted model
before it binds a port; ``ServingModel.load(root)`` then builds the in-memory tables:

* ``recommend``: the user's precomputed list (view ``new`` when purchases are excluded),
  re-ranked by MMR when diversity is asked for; an unknown user gets the new-visitor list;
* ``realtime``: the gated system's lists computed at request time
  (:mod:`shoprec.serving.realtime`; None for a baseline's bundle, or with real-time off),
  the precomputed list being its fallback;
* ``similar``: items bought together with the item (co-purchase cosine over buyers), then
  its nearest neighbours in the two-tower item space from the vector index;
* ``search``: the hybrid :class:`~shoprec.search.engine.SearchEngine` over the bundle;
* ``user``: what the shop knows about a shopper (recent purchases), for the storefront;
* ``help``: the help centre (:mod:`shoprec.help`; None when the bundle has no intent classifier): a
  search's help card, from the query vector search already has, and ``assist``'s answer to a chat message.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from shoprec.config import Params, RealtimeParams, load_params
from shoprec.layout import BundleFiles
from shoprec.models.catalog import row_index
from shoprec.models.diversity import mmr
from shoprec.serving.bundle import COLD_USER, GATED

RECENT = 8  # purchases shown per user
ITEM_FIELDS = ("item_id", "title", "category", "price")


class BundleError(RuntimeError):
    """The bundle cannot be served; the message says which file and what to do."""


class UnknownItem(KeyError):
    pass


def verify(root: Path) -> dict:
    """The bundle's manifest, after checking that every listed file exists with its sha256."""
    bundle = BundleFiles(root)
    manifest_path = bundle.manifest
    if not manifest_path.is_file():
        raise BundleError(f"{manifest_path} is missing: not a shoprec bundle; run `shoprec package` (dvc repro)")
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"]
    except (ValueError, KeyError) as exc:
        raise BundleError(f"{manifest_path} is not a valid manifest ({exc}); rebuild with `shoprec package`") from exc
    lexical = bundle.layout.lexical
    needed = (bundle.lists, bundle.history, bundle.together, bundle.layout.items, bundle.params,
              bundle.layout.text_model.quantized_encoder, bundle.text_vocab,
              lexical.titles, lexical.defining, lexical.popularity)
    for rel in map(bundle.name, needed):
        if rel not in files:
            raise BundleError(f"bundle {root} lacks {rel}; rebuild with `shoprec package`")
    for rel, digest in files.items():
        path = root / rel
        if not path.is_file():
            raise BundleError(f"bundle file {path} is missing; rebuild with `shoprec package`")
        if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            raise BundleError(f"bundle file {path} is corrupted (sha256 differs from {manifest_path.name}); "
                              "rebuild with `shoprec package`")
    return manifest


def bundle_params(bundle: BundleFiles) -> Params:
    """The bundle's params, with ``text.model_dir`` set to the bundle's MiniLM files: the service
    reads its tokenizer (and float weights) from the bundle, never from an installed package."""
    return load_params(bundle.params).with_text_model(bundle.text_model)


def _load_index(path: Path, ef_search: int):
    from shoprec.search.index.vectors import FaissIndex

    index = FaissIndex.load(path)
    index.ef_search = ef_search
    return index


def _columns(frame: pd.DataFrame, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Plain NumPy columns: a request indexes them directly (pandas indexing costs ~50 us a call)."""
    return {n: frame[n].to_numpy() for n in names}


def _grouped(frame: pd.DataFrame, keys: str | list[str]) -> dict:
    """``{key: row positions}`` of ``frame`` (kept in frame order)."""
    return {k: np.asarray(v) for k, v in frame.groupby(keys, sort=False).indices.items()}


@dataclass
class ServingModel:
    version: str
    params: Params
    items: dict[str, np.ndarray]  # item_id, title, category, price columns (catalog order)
    item_index: dict[str, int]
    item_emb: np.ndarray
    lists: dict[str, np.ndarray]  # item, score, explanation columns of recommendations.parquet
    list_rows: dict[tuple[str, str], np.ndarray]
    history: dict[str, np.ndarray]  # item, purchases, last_bought (newest first per user)
    history_rows: dict[str, np.ndarray]
    together: dict[str, np.ndarray]  # other, score
    together_rows: dict[int, np.ndarray]
    index: object  # shoprec.search.index.vectors index over item_emb (/similar, and real-time two-tower candidates)
    engine: object  # shoprec.search.engine.SearchEngine
    realtime: object = None  # shoprec.serving.realtime.RealTime, or None: precomputed lists only
    help: object = None  # shoprec.help.answers.HelpDesk, or None: no help centre in the bundle

    @classmethod
    def load(cls, root: Path, version: str | None = None, packaged_at: dt.datetime | None = None,
             realtime: RealtimeParams | None = None) -> "ServingModel":
        """The bundle at ``root``; given ``packaged_at`` (when it entered the model store, which places the
        ``auto`` serving clock), the gated system also scores in real time, unless ``realtime`` (default:
        the bundle's ``serving.realtime``) is off."""
        from shoprec.help.answers import HelpDesk
        from shoprec.search.index.vectors import ExactIndex, FilteredSearch
        from shoprec.search.store import load_layout_engine
        from shoprec.serving.realtime import RealTime
        from shoprec.text.catalog_embeddings import read_embeddings

        manifest = verify(root)
        bundle = BundleFiles(root)
        params = bundle_params(bundle)
        items = pd.read_parquet(bundle.layout.items, columns=["item_id", "title", "category", "price"])
        items["category"] = items["category"].fillna("")
        ids, item_emb = read_embeddings(bundle.layout.retrieval.item_embeddings)
        if not np.array_equal(ids, items["item_id"].to_numpy(dtype=object)):
            raise BundleError(f"bundle {root}: item embeddings do not follow items.parquet; rebuild the bundle")
        lists, history, together = (pd.read_parquet(path) for path in (bundle.lists, bundle.history, bundle.together))
        if (COLD_USER, "all") not in set(zip(lists["user_id"], lists["view"])):
            raise BundleError(f"bundle {root}: {bundle.name(bundle.lists)} has no new-visitor list; rebuild the bundle")
        history = history.sort_values(["user_id", "last_bought"], ascending=[True, False]).reset_index(drop=True)
        s = params.serving
        live = realtime or s.realtime
        intents = bundle.layout.intents
        engine = load_layout_engine(params, bundle.layout)
        if bundle.semantic_index.exists():  # a large catalog: the semantic leg of search goes through HNSW too
            engine.semantic_search = FilteredSearch(engine.semantic.item_vectors,
                                                    _load_index(bundle.semantic_index, s.semantic_ef_search),
                                                    s.ann_exact_subset)
        index = _load_index(bundle.item_index, s.hnsw_ef_search) if bundle.item_index.exists() else ExactIndex(item_emb)
        return cls(
            version=version or manifest["version"], params=params, items=_columns(items, ITEM_FIELDS),
            item_index=row_index(items["item_id"]), item_emb=item_emb,
            lists=_columns(lists, ("item", "score", "explanation")), list_rows=_grouped(lists, ["user_id", "view"]),
            history=_columns(history, ("item", "purchases", "last_bought")), history_rows=_grouped(history, "user_id"),
            together=_columns(together, ("other", "score")), together_rows=_grouped(together, "item"),
            index=index, engine=engine,
            realtime=(RealTime.load(bundle, params, live.clock_offset, packaged_at, live.cache_seconds, index)
                      if packaged_at is not None and live.enabled and manifest.get("system") == GATED else None),
            help=HelpDesk.load(intents.classifier, intents.answers) if intents.classifier.exists() else None,
        )

    def warm_up(self) -> None:
        """Answer one request of each kind: the first search traces the tokenizer's graph and
        sets up the query encoder (seconds), which a server does before it reports ready
        rather than in a client's request."""
        user = next(iter(self.history_rows), COLD_USER)
        self.recommend(user, 10)
        if self.realtime is not None:
            self.realtime.warm_up(user)
        self.similar(self.items["item_id"][0], 10)
        self.search(str(self.items["title"][0]), user, 10, None)

    def _item(self, i: int, score: float, explanation: str) -> dict:
        return {"item_id": self.items["item_id"][i], "title": self.items["title"][i],
                "category": self.items["category"][i], "price": float(self.items["price"][i]),
                "score": round(float(score), 6), "explanation": explanation}

    def known(self, user_id: str) -> bool:
        return user_id != COLD_USER and (user_id, "all") in self.list_rows

    def recommend(self, user_id: str, k: int, exclude_purchased: bool = False, diversity: float | None = None) -> dict:
        """Top ``k`` with explanations; an unknown user gets the new-visitor list (cold start)."""
        known = self.known(user_id)
        rows = self.list_rows[(user_id if known else COLD_USER, "new" if exclude_purchased and known else "all")]
        items, scores, why = (self.lists[c][rows] for c in ("item", "score", "explanation"))
        weight = self.params.ranking.diversity if diversity is None else diversity
        chosen = mmr(scores, self.item_emb[items], weight, k)
        return {"user_id": user_id, "known_user": known, "realtime": False,
                "items": [self._item(items[c], scores[c], why[c]) for c in chosen]}

    def recommend_now(self, store, user_id: str, recent_items: list[str], wall: float, k: int,
                      exclude_purchased: bool = False, diversity: float | None = None) -> dict:
        """:meth:`recommend` computed from the shopper's history as of wall-clock ``wall`` (seconds since the
        epoch): training events, ``store``'s events since the cut-off and ``recent_items``."""
        asked = self.look_up_now(store, user_id, recent_items, wall, k, exclude_purchased, diversity)
        return self.answer_now(asked) if asked.cached is not None else self.compute_now([asked])[0]

    def look_up_now(self, store, user_id: str, recent_items: list[str], wall: float, k: int,
                    exclude_purchased: bool = False, diversity: float | None = None):
        """The first half of :meth:`recommend_now`: the store read and the list cache
        (:meth:`~shoprec.serving.realtime.RealTime.look_up`)."""
        weight = self.params.ranking.diversity if diversity is None else diversity
        return self.realtime.look_up(store, user_id, recent_items, wall, k, exclude_purchased, weight)

    def compute_now(self, asks: list) -> list[dict]:
        """The second half of :meth:`recommend_now`, for lists the cache did not hold: the scoring, of several
        requests in one pass (:meth:`~shoprec.serving.realtime.RealTime.compute_many`)."""
        return [self.answer_now(a, computed) for a, computed in zip(asks, self.realtime.compute_many(asks),
                                                                    strict=True)]

    def answer_now(self, asked, computed: tuple[bool, list[dict]] | None = None) -> dict:
        known, items = computed or asked.cached
        return {"user_id": asked.user_id, "known_user": known, "realtime": True,
                "items": [{**item, "score": round(item["score"], 6)} for item in items]}

    def similar(self, item_id: str, k: int) -> dict:
        """Items bought together with ``item_id`` first, then its nearest neighbours by embedding."""
        if item_id not in self.item_index:
            raise UnknownItem(item_id)
        i = self.item_index[item_id]
        title = self.items["title"][i]
        out, seen = [], {i}
        for r in self.together_rows.get(i, [])[:k]:
            other, score = int(self.together["other"][r]), float(self.together["score"][r])
            out.append(self._item(other, score, f"bought together with {title}"))
            seen.add(other)
        if len(out) < k:
            idx, scores = self.index.search(self.item_emb[i][None, :], k + len(seen))
            for other, score in zip(idx[0], scores[0]):
                if len(out) == k:
                    break
                if int(other) not in seen:
                    out.append(self._item(int(other), score, f"similar to {title}"))
                    seen.add(int(other))
        return {"item_id": item_id, "items": out}

    def text_to_encode(self, query: str) -> str | None:
        """The text to encode ahead of searching ``query``, or None when that would not pay:
        MiniLM is milliseconds of CPU, the rest of a search ~0.4 ms. Only with the encoding
        cache (``search.query_cache``), where the vector waits for the search, and only for
        a text not in it; without the cache the search encodes the query itself."""
        from shoprec.text.cache import EncodingCache

        embed = self.engine.embed
        if not isinstance(embed, EncodingCache):
            return None
        text = self.engine.text_to_embed(query)
        return None if text in embed else text

    def search(self, query: str, user_id: str | None, k: int, filters: dict | None) -> dict:
        """The engine's answer, plus the help card when the query is a service question (None otherwise)."""
        result = self.engine.search(query, user_id, k, filters)
        for item in result["items"]:
            item["explanation"] = "matches your search" + (" and what you buy" if user_id and self.known(user_id) else "")
        if self.help is not None:  # the search's own vector, from the encoding cache
            vector = self.engine.embed([result["parsed"]["text"] or query])
            result["help"] = self.help.card(vector, self._shopper(user_id))
        return result

    def assist(self, message: str, user_id: str | None) -> dict:
        """A chat message's answer: the intent's template filled from the shopper's history, or a hand-over."""
        if self.help is None:
            return {"service": True, "intent": None, "answer": None, "confidence": 0.0, "handoff": True,
                    "guesses": [], "reason": "this model has no help centre (no service_phrasings in its data)"}
        verdict = self.help.classifier.verdicts(self.engine.embed([self.engine.text_to_embed(message)]))[0]
        return self.help.reply(verdict, self._shopper(user_id))

    def _shopper(self, user_id: str | None):
        """What an answer may say of the shopper: their last order and how many products they bought."""
        from shoprec.help.answers import Shopper

        rows = self.history_rows.get(user_id) if user_id else None
        if rows is None or not len(rows):
            return Shopper({})
        last, h = rows[0], self.history  # newest first
        return Shopper({"last_order_date": f"{pd.Timestamp(h['last_bought'][last]):%Y-%m-%d}",
                        "last_order_item": str(self.items["title"][int(h["item"][last])]),
                        "purchases": str(len(rows))})

    def user(self, user_id: str) -> dict:
        rows = self.history_rows.get(user_id, np.array([], dtype=np.int64))[:RECENT]
        h = self.history
        recent = [self._item(int(h["item"][r]), 0.0,
                             f"bought {int(h['purchases'][r])}x, last {pd.Timestamp(h['last_bought'][r]):%Y-%m-%d}")
                  for r in rows]
        return {"user_id": user_id, "known_user": self.known(user_id), "recent_purchases": recent}

    def users(self, limit: int) -> list[str]:
        """Known users with the most purchases first (for the storefront's user picker)."""
        return self._by_purchases[:limit]

    @cached_property
    def _by_purchases(self) -> list[str]:
        counts = {u: int(self.history["purchases"][rows].sum()) for u, rows in self.history_rows.items()}
        return sorted(counts, key=lambda u: (-counts[u], u))

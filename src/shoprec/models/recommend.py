"""One shopper's final list with a reason per item: what the CLI and the service return.

Explanations come from the same state the ranker used:

* an item the shopper bought before: "you bought this N times";
* an item they clicked or carted: "you added this to your cart" / "you clicked this";
* otherwise the nearest item of their history in the two-tower item space:
  "because you bought X" (or "because you looked at X" when they never bought);
* a shopper with no history (cold start): "popular in <category>".
"""

from __future__ import annotations

import numpy as np

from shoprec.models.diversity import mmr
from shoprec.models.multistage import MultiStage


_SIGNAL_PHRASES = {"add_to_cart": "you added this to your cart", "click": "you clicked this", "view": "you viewed this"}


def explain(system: MultiStage, row: int, items: np.ndarray) -> list[str]:
    catalog, state = system.catalog, system.state
    if row < 0:
        return [_popular(catalog, i) for i in items]
    bought = state.inter.purchased[row].toarray().ravel()
    signal = state.inter.weighted[row].toarray().ravel()
    weights = system.cfg.interactions.weights
    anchors = np.flatnonzero(bought) if bought.any() else np.flatnonzero(signal)
    verb = "bought" if bought.any() else "looked at"
    nearest = anchors[np.argmax(state.item_emb[items] @ state.item_emb[anchors].T, axis=1)] if len(anchors) else None
    out = []
    for pos, i in enumerate(items):
        if bought[i] > 0:
            times = int(bought[i])
            out.append(f"you bought this {times} time{'s' if times > 1 else ''} before")
        elif signal[i] > 0:
            strongest = min(weights, key=lambda t: abs(weights[t] - signal[i]))  # the event type behind the weight
            out.append(_SIGNAL_PHRASES.get(strongest, "you looked at this before"))
        elif nearest is not None:
            out.append(f"because you {verb} {catalog.titles[nearest[pos]]}")
        else:
            out.append(_popular(catalog, i))
    return out


def _popular(catalog, item: int) -> str:
    return f"popular in {catalog.categories[item]}" if catalog.categories[item] else "popular right now"


def ranked(system: MultiStage, rows: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per matrix row (-1 = cold user): its candidates best first and their p(purchase)."""
    cands, pred = system.rank(rows)
    order = np.lexsort((cands.item, -pred["purchase"], cands.user_pos))  # by user, then best first
    bounds = np.searchsorted(cands.user_pos[order], np.arange(len(rows) + 1))
    items, scores = cands.item[order], pred["purchase"][order]
    return [(items[a:b], scores[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def without_purchases(system: MultiStage, row: int, items: np.ndarray, scores: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """``items`` minus what matrix ``row`` bought in train (the evaluation's ``new`` view)."""
    if row < 0:
        return items, scores
    keep = system.state.inter.purchased[row].toarray().ravel()[items] == 0
    return items[keep], scores[keep]


def recommend(system: MultiStage, user_id: str, k: int, exclude_purchased: bool = False,
              diversity: float = 0.0) -> list[dict]:
    """Top ``k`` items for ``user_id`` (unknown users get the cold-start list)."""
    row = int(system.state.inter.rows([user_id])[0])
    items, scores = ranked(system, np.array([row]))[0]
    if exclude_purchased:
        items, scores = without_purchases(system, row, items, scores)
    chosen = mmr(scores, system.state.item_emb[items], diversity, k)
    items, scores = items[chosen], scores[chosen]
    return [
        {"item_id": str(system.catalog.item_ids[i]), "title": str(system.catalog.titles[i]),
         "category": str(system.catalog.categories[i]), "price": float(system.catalog.price[i]), "score": float(s),
         "explanation": why}
        for i, s, why in zip(items, scores, explain(system, row, items))
    ]

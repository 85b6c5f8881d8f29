"""A bounded cache of text encodings: repeated search queries skip MiniLM.

Shoppers repeat queries ("lunch bag", "red heart"): in a shop's search log the head
queries are a large share of the traffic (in the load benchmark's workload, 40% of the
queries repeat an earlier one). MiniLM is most of a search's CPU (~3 ms a query on one
core), so a repeated query's vector is kept: least recently used entries are dropped
beyond ``size`` texts (384 float32 each: 10,000 texts are 15 MB per server process).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np


class EncodingCache:
    """``encode(texts) -> rows`` with the rows of recently seen texts served from memory."""

    def __init__(self, encode: Callable[[list[str]], np.ndarray], size: int) -> None:
        self.encode, self.size = encode, size
        self._rows: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def __contains__(self, text: str) -> bool:
        return text in self._rows

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            found = {t: self._rows[t] for t in texts if t in self._rows}
            for t in found:
                self._rows.move_to_end(t)
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            rows = self.encode(missing).copy()  # its own memory: a view would keep a whole batch alive
            rows.flags.writeable = False  # shared between callers
            found |= dict(zip(missing, rows))
            with self._lock:
                self._rows.update((t, found[t]) for t in missing)
                while len(self._rows) > self.size:
                    self._rows.popitem(last=False)
        with self._lock:
            self.hits, self.misses = self.hits + len(texts) - len(missing), self.misses + len(missing)
        return np.stack([found[t] for t in texts])

"""Is a difference in a mean metric real, or the luck of which shoppers (or queries) were tested?

Paired bootstrap: with per-unit scores ``a_u`` (the system) and ``b_u`` (the rival) on
the same ``n`` units, the observed difference is ``d = mean_u (a_u - b_u)``. Draw ``n``
units with replacement, ``B`` times, and take the mean difference of each draw; the
``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of those ``B`` means bound ``d``
at confidence ``level`` (the percentile interval). Pairing (resampling the unit, both
scores together) removes the between-unit spread that both systems share, which is most
of it: a hard shopper is hard for every model.

Seeded, so a rerun on the same lists gives the same interval to the last digit.
"""

from __future__ import annotations

import numpy as np

CHUNK = 100  # resamples drawn at once: bounds memory at CHUNK x units indices


def paired_bootstrap(a: np.ndarray, b: np.ndarray, resamples: int, level: float, seed: int) -> dict:
    """``{"difference", "low", "high", "units", "resamples", "level"}`` of ``mean(a - b)``."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if d.ndim != 1 or len(d) == 0:
        raise ValueError(f"paired_bootstrap needs two equal-length, non-empty score vectors; got {len(d)} units")
    rng = np.random.default_rng(seed)
    means = np.concatenate([d[rng.integers(0, len(d), size=(min(CHUNK, resamples - start), len(d)))].mean(axis=1)
                            for start in range(0, resamples, CHUNK)])
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return {"difference": round(float(d.mean()), 6), "low": round(float(low), 6), "high": round(float(high), 6),
            "units": int(len(d)), "resamples": int(resamples), "level": level}

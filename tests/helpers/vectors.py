"""Synthetic catalogs of unit vectors shaped like product embeddings, for ANN tests and benchmarks.

``clustered_unit_vectors``: category centres on the sphere with uneven (log-normal) sizes,
each item its centre plus isotropic Gaussian noise, renormalised; queries are perturbed
catalog items (a user vector near what the user bought).
"""

from __future__ import annotations

import numpy as np


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def clustered_unit_vectors(n: int, dim: int = 64, clusters: int = 2000, spread: float = 0.1,
                           seed: int = 0) -> np.ndarray:
    """A mixture of Gaussians on the unit sphere, float32 ``[n, dim]``.

    ``spread`` is the per-dimension noise, so an item sits at cosine ``~1/sqrt(1 + dim spread²)``
    from its centre (0.78 for the defaults): clusters are tight but items stay distinct.
    """
    rng = np.random.default_rng(seed)
    centres = _unit(rng.standard_normal((clusters, dim), dtype=np.float32))
    sizes = rng.lognormal(0.0, 1.0, clusters)
    members = rng.choice(clusters, size=n, p=sizes / sizes.sum())
    return _unit(centres[members] + spread * rng.standard_normal((n, dim), dtype=np.float32))


def perturbed_queries(vectors: np.ndarray, n: int, noise: float = 0.05, seed: int = 1) -> np.ndarray:
    """``n`` random catalog rows plus per-dimension Gaussian ``noise``, renormalised."""
    rng = np.random.default_rng(seed)
    rows = vectors[rng.choice(len(vectors), size=n, replace=False)]
    return _unit(rows + noise * rng.standard_normal(rows.shape, dtype=np.float32))


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each row's true top-k that the approximate top-k contains."""
    return float(np.mean([len(np.intersect1d(f, t)) / len(t) for f, t in zip(found, truth)]))

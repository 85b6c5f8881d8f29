"""Per-user statistics of an A/B test: differences with normal intervals, SRM, minimal detectable effect.

The randomisation unit is the shopper, so every variance is computed over users, never
over impressions (impressions of one shopper are correlated; treating them as independent
makes intervals too narrow).

* A per-user mean (conversion: did the user buy anything attributed, 0/1): arm mean
  ``m = mean(x)``, ``var(m) = s^2 / n`` (``s^2`` the sample variance, ``ddof=1``).
* A ratio of sums (CTR = sum clicks / sum impressions over the arm's users): ``R = xbar / ybar``;
  by the delta method ``var(R) ~= (s_x^2 - 2 R s_xy + R^2 s_y^2) / (n ybar^2)``.
* The difference treatment - control of independent arms has variance ``var_t + var_c``;
  the interval is ``d +- z se`` with ``z = Phi^-1(1 - alpha/2)`` and the two-sided p-value
  ``2 (1 - Phi(|d| / se))``.
* Minimal detectable effect at the current sample: ``(z_{1-alpha/2} + z_power) se``.
* Sample-ratio mismatch: Pearson's chi-square of the users per arm against the designed
  split, one degree of freedom.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Estimate:
    value: float
    variance: float


@dataclass(frozen=True)
class Difference:
    estimate: float
    se: float
    low: float
    high: float
    p: float

    def as_dict(self) -> dict:
        """JSON-ready: an undefined number (too few users) is None, not NaN."""
        return {"estimate": finite(self.estimate), "se": finite(self.se), "ci": [finite(self.low), finite(self.high)],
                "p": finite(self.p)}


def finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def mean(x: np.ndarray) -> Estimate:
    x = np.asarray(x, float)
    return Estimate(float(x.mean()) if len(x) else float("nan"), float(x.var(ddof=1) / len(x)) if len(x) > 1 else float("nan"))


def ratio(x: np.ndarray, y: np.ndarray) -> Estimate:
    """Delta-method estimate of ``sum x / sum y`` over users (``y`` > 0 in total)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = len(x)
    if n < 2 or y.sum() <= 0:
        return Estimate(float(x.sum() / y.sum()) if y.sum() > 0 else float("nan"), float("nan"))
    r = x.sum() / y.sum()
    cov = np.cov(x, y, ddof=1)
    var = (cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1]) / (n * y.mean() ** 2)
    return Estimate(float(r), float(var))


def z_of(confidence: float) -> float:
    return float(stats.norm.ppf(1 - (1 - confidence) / 2))


def difference(control: Estimate, treatment: Estimate, confidence: float) -> Difference:
    d = treatment.value - control.value
    se = float(np.sqrt(control.variance + treatment.variance))
    if not np.isfinite(se) or se == 0:
        p = float("nan") if not np.isfinite(se) else (0.0 if d != 0 else 1.0)
        return Difference(d, se, d if se == 0 else float("nan"), d if se == 0 else float("nan"), p)
    z = z_of(confidence)
    return Difference(d, se, d - z * se, d + z * se, float(2 * stats.norm.sf(abs(d) / se)))


def srm_p(users_control: int, users_treatment: int, treatment_share: float) -> float:
    """Chi-square p-value of the observed split against ``treatment_share`` (1 df)."""
    n = users_control + users_treatment
    expected = np.array([n * (1 - treatment_share), n * treatment_share])
    observed = np.array([users_control, users_treatment])
    keep = expected > 0
    if n == 0 or keep.sum() < 2:
        return 1.0 if (observed[~keep] == 0).all() else 0.0
    chi2 = float((((observed - expected) ** 2)[keep] / expected[keep]).sum())
    return float(stats.chi2.sf(chi2, df=1))


def mde(se: float, confidence: float, power: float) -> float:
    return float((z_of(confidence) + stats.norm.ppf(power)) * se)

"""Is one submission really better than another on the same test images?

Two tests for two predictors ``x1``, ``x2`` scored against the same ground truth ``y`` (dependent,
overlapping correlations):

- :func:`steiger_z`: Steiger's (1980) Z test of H0: ρ(y, x1) = ρ(y, x2), using the Fisher-transformed
  correlations, their pooled value and the predictors' own correlation ρ(x1, x2). Applied to
  Spearman coefficients (Pearson on ranks) with the Fieller–Hartley–Pearson variance factor 1.06;
  an approximation there (about 5.8% false positives at the nominal 5% in our simulation, n = 150).
- :func:`paired_bootstrap`: resample the images (the same resamples for both predictors) and take
  the percentile interval of Δρ = ρ(y, x1) − ρ(y, x2); its two-sided p-value is twice the smaller
  tail share of Δρ* on either side of 0 (with the usual +1 correction).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from ..errors import InputError
from ..submissions import DEFAULT_MAX_BYTES, read_submission
from .._ranks import spearman
from ._ranking import BootstrapSpearman

if TYPE_CHECKING:
    from .results import Result


@dataclass(frozen=True)
class Comparison:
    """Result of comparing two predictors against the same ground truth."""

    n: int
    rho_a: float
    rho_b: float
    rho_ab: float
    steiger_z: float
    steiger_p: float
    delta: float
    delta_ci_low: float | None = None
    delta_ci_high: float | None = None
    bootstrap_p: float | None = None
    n_boot: int = 0
    n_degenerate: int = 0

    def to_dict(self) -> dict[str, float | int | None]:
        """The fields as a plain dict (for the result document)."""
        return dict(self.__dict__)


#: Fieller, Hartley & Pearson (1957): var(atanh(ρ_Spearman)) ≈ 1.06 / (n − 3) for bivariate normal
#: data; :func:`compare` scales Steiger's Z by it (without it the test is liberal, ~6.6% at 5%).
SPEARMAN_VARIANCE_FACTOR: float = 1.06


def steiger_z(r_yx1: float, r_yx2: float, r_x1x2: float, n: int, *,
              variance_factor: float = 1.0) -> tuple[float, float]:
    """Steiger's Z for two dependent correlations sharing ``y``; returns (Z, two-sided p).

    Z = (z1 − z2)·√(n − 3) / √((2 − 2c)·f), with z = atanh(r), r̄ = (r_yx1 + r_yx2)/2,
    c = [r_x1x2(1 − 2r̄²) − ½r̄²(1 − 2r̄² − r_x1x2²)] / (1 − r̄²)², and f = ``variance_factor``
    (1 for Pearson's r; :data:`SPEARMAN_VARIANCE_FACTOR` for Spearman's ρ).
    """
    if n <= 3:
        raise ValueError(f"Steiger's Z needs n > 3, got {n}")
    for r in (r_yx1, r_yx2, r_x1x2):
        if not (-1.0 <= r <= 1.0) or math.isnan(r):
            raise ValueError(f"correlation {r!r} outside [-1, 1]")
    if r_yx1 == r_yx2:
        return 0.0, 1.0
    eps = 1e-12
    z1 = math.atanh(max(-1 + eps, min(1 - eps, r_yx1)))
    z2 = math.atanh(max(-1 + eps, min(1 - eps, r_yx2)))
    rbar = (r_yx1 + r_yx2) / 2.0
    rb2 = rbar * rbar
    psi = r_x1x2 * (1 - 2 * rb2) - 0.5 * rb2 * (1 - 2 * rb2 - r_x1x2 * r_x1x2)
    c = psi / (1 - rb2) ** 2
    denom = 2.0 - 2.0 * c
    if denom <= 0:  # the two predictors are (numerically) the same ranking
        return (math.inf if z1 > z2 else -math.inf), 0.0
    z = (z1 - z2) * math.sqrt(n - 3) / math.sqrt(denom * variance_factor)
    p = float(2.0 * stats.norm.sf(abs(z)))
    return float(z), p


def paired_bootstrap(y: np.ndarray, x1: np.ndarray, x2: np.ndarray, *, n_boot: int = 1000, seed: int = 0,
                     level: float = 0.95) -> tuple[float, float, float, int]:
    """Percentile CI and two-sided p-value of Δρ = ρ(y, x1) − ρ(y, x2) over paired resamples;
    returns (ci_low, ci_high, p, n_degenerate) where degenerate resamples (ρ undefined) are counted
    and left out."""
    rhos = BootstrapSpearman(y, [x1, x2]).run(n_boot, seed)
    delta = rhos[:, 0] - rhos[:, 1]
    ok = np.isfinite(delta)
    d = delta[ok]
    if d.size == 0:
        return float("nan"), float("nan"), float("nan"), int((~ok).sum())
    alpha = (1 - level) / 2
    lo, hi = np.quantile(d, [alpha, 1 - alpha])
    tail = min((d <= 0).sum(), (d >= 0).sum())
    p = min(1.0, 2.0 * (tail + 1) / (d.size + 1))
    return float(lo), float(hi), float(p), int((~ok).sum())


def compare(y: np.ndarray, a: np.ndarray, b: np.ndarray, *, n_boot: int = 0, seed: int = 0) -> Comparison:
    """Compare predictors ``a`` and ``b`` on ground truth ``y`` (aligned arrays): Steiger's Z always,
    the paired bootstrap of Δρ too when ``n_boot`` > 0."""
    y, a, b = (np.asarray(v, dtype=float) for v in (y, a, b))
    if not (y.shape == a.shape == b.shape) or y.ndim != 1:
        raise ValueError("compare needs three aligned 1-d arrays")
    r_a, r_b, r_ab = (spearman(u, v, min_n=2)[0] for u, v in ((a, y), (b, y), (a, b)))
    z, p = _steiger_or_nan(r_a, r_b, r_ab, y.size)
    lo = hi = bp = None
    n_deg = 0
    if n_boot > 0:
        lo, hi, bp, n_deg = paired_bootstrap(y, a, b, n_boot=n_boot, seed=seed)
    return Comparison(n=int(y.size), rho_a=r_a, rho_b=r_b, rho_ab=r_ab, steiger_z=z, steiger_p=p,
                      delta=r_a - r_b, delta_ci_low=lo, delta_ci_high=hi, bootstrap_p=bp, n_boot=n_boot,
                      n_degenerate=n_deg)


def _steiger_or_nan(r_a: float, r_b: float, r_ab: float, n: int) -> tuple[float, float]:
    """Steiger's Z and p on Spearman's ρ, or NaN for both where the test is undefined: a ρ that is
    not finite (a constant ground truth or prediction) or n ≤ 3. A board or ``--compare`` then shows
    no significance instead of crashing; :func:`steiger_z` itself stays strict on such input."""
    if n <= 3 or not all(math.isfinite(r) for r in (r_a, r_b, r_ab)):
        return math.nan, math.nan
    return steiger_z(r_a, r_b, r_ab, n, variance_factor=SPEARMAN_VARIANCE_FACTOR)


def compare_submission(result: "Result", other: str | os.PathLike[str], *, n_boot: int = 1000, seed: int = 0,
                       max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, Any]:
    """Compare a scored result with another submission file for the same images: Δρ (this − other)
    with Steiger's Z and the paired bootstrap. Needs a rank-correlation protocol (aadb, ava)."""
    if result.paired is None:
        raise InputError(f"the {result.protocol} protocol has no single prediction set to compare")
    other_sub = read_submission(other, list(result.paired.image_ids), max_bytes=max_bytes,
                                split_name=f"{result.protocol} test split")
    b = other_sub.scores.reindex(list(result.paired.image_ids)).to_numpy(dtype=float)
    return compare_predictions(result, b, other_sub.sha256, n_boot=n_boot, seed=seed)


def compare_predictions(result: "Result", other: np.ndarray, other_sha256: str, *, n_boot: int = 1000,
                        seed: int = 0) -> dict[str, Any]:
    """Compare a scored result with other predictions aligned to its sorted image ids."""
    if result.paired is None:
        raise InputError(f"the {result.protocol} protocol has no single prediction set to compare")
    other = np.asarray(other, dtype=float)
    if other.shape != result.paired.truth.shape:
        raise InputError(f"the other predictions cover {other.size} images, this result {result.paired.truth.size}")
    c = compare(result.paired.truth, result.paired.predictions, other, n_boot=n_boot, seed=seed)
    return {**c.to_dict(), "other_submission_sha256": other_sha256, "delta_is": "this - other"}

"""The Benjamini–Hochberg false-discovery-rate procedure, the one home of the consistency and
reliability analyses' multiple-testing step.

It computes exactly what ``statsmodels.stats.multitest.multipletests(p, alpha=q, method="fdr_bh")``
computes, in the same floating-point operations (a test checks equality), without importing
statsmodels, which pulls in ``scipy.stats`` and takes seconds to import: an analysis that needs
one sort and one running minimum should not pay that at every command.
"""

from __future__ import annotations

import numpy as np


def benjamini_hochberg(p: np.ndarray, q: float) -> tuple[np.ndarray, np.ndarray]:
    """Rejections at false discovery rate ``q`` and BH-adjusted p-values of the 1-d ``p``, in
    the order of ``p``: with p sorted, reject all up to the largest k with p₍ₖ₎ ≤ q·k/m; the adjusted
    value is the running minimum, from the top, of p₍ₖ₎·m/k, capped at 1."""
    p = np.asarray(p, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"p-values must be 1-dimensional, got shape {p.shape}")
    m = len(p)
    if m == 0:
        return np.zeros(0, bool), np.zeros(0)
    order = np.argsort(p)
    p_sorted = np.take(p, order)
    ecdf = np.arange(1, m + 1) / float(m)
    reject = p_sorted <= ecdf * q
    if reject.any():
        reject[:np.flatnonzero(reject).max()] = True
    adjusted = np.minimum.accumulate((p_sorted / ecdf)[::-1])[::-1]
    adjusted[adjusted > 1] = 1
    out_adjusted, out_reject = np.empty_like(adjusted), np.empty_like(reject)
    out_adjusted[order], out_reject[order] = adjusted, reject
    return out_reject, out_adjusted

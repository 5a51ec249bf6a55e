"""Multiple-testing correction: the one Benjamini–Hochberg procedure of the toolkit (statsmodels'
``multipletests(method="fdr_bh")``), shared by the consistency and reliability analyses."""

from __future__ import annotations

import numpy as np


def benjamini_hochberg(p: np.ndarray, tested: np.ndarray, q: float) -> tuple[np.ndarray, np.ndarray]:
    """Benjamini–Hochberg at FDR ``q`` over the p-values marked ``tested``: the adjusted p-values
    (NaN where not tested) and the rejections (False where not tested)."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p, dtype=float)
    tested = np.asarray(tested, dtype=bool)
    adjusted = np.full(len(p), np.nan)
    rejected = np.zeros(len(p), bool)
    if tested.any():
        rej, adj, _, _ = multipletests(p[tested], alpha=q, method="fdr_bh")
        adjusted[tested], rejected[tested] = adj, rej
    return adjusted, rejected

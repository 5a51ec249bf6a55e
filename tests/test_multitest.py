"""The Benjamini–Hochberg step equals statsmodels' ``fdr_bh`` exactly (its reference), ties included."""

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from aadb_toolkit._multitest import benjamini_hochberg


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("q", [0.01, 0.05, 0.2])
def test_equals_statsmodels_bit_for_bit(seed, q):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    # permutation p-values: a small grid, so ties are common; plus some tiny ones
    p = (1 + rng.integers(0, 1001, n)) / 1001.0
    p[rng.random(n) < 0.3] = 1 / 1001.0
    reject, adjusted = benjamini_hochberg(p, q)
    want_reject, want_adjusted, _, _ = multipletests(p, alpha=q, method="fdr_bh")
    assert np.array_equal(reject, want_reject)
    assert np.array_equal(adjusted, want_adjusted)


def test_edge_cases():
    assert [a.size for a in benjamini_hochberg(np.array([]), 0.05)] == [0, 0]
    reject, adjusted = benjamini_hochberg(np.array([0.04]), 0.05)
    assert reject.tolist() == [True] and adjusted.tolist() == [0.04]
    with pytest.raises(ValueError):
        benjamini_hochberg(np.zeros((2, 2)), 0.05)

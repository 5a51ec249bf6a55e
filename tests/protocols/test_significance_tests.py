"""Steiger's Z and the paired bootstrap for dependent correlations."""

from __future__ import annotations

import numpy as np
import pytest

from aadb_toolkit import _ranks


def spearman(x, y):
    return _ranks.spearman(x, y, min_n=2)[0]
from aadb_toolkit.protocols.significance import SPEARMAN_VARIANCE_FACTOR, compare, paired_bootstrap, steiger_z


def _mrr_z(r1, r2, r12, n):
    """Meng, Rosenthal & Rubin (1992) Z, an independent test of the same hypothesis."""
    rm2 = (r1 * r1 + r2 * r2) / 2
    f = min(1.0, (1 - r12) / (2 * (1 - rm2)))
    h = (1 - f * rm2) / (1 - rm2)
    return (np.arctanh(r1) - np.arctanh(r2)) * np.sqrt((n - 3) / (2 * (1 - r12) * h))


def test_steiger_hand_computed_value():
    # r̄ = .35, ψ = .2(1 − .245) − .06125(1 − .245 − .04) = 0.1072063; c = ψ / (1 − .1225)²
    z, p = steiger_z(0.4, 0.3, 0.2, 20)
    c = (0.2 * (1 - 2 * 0.35**2) - 0.5 * 0.35**2 * (1 - 2 * 0.35**2 - 0.04)) / (1 - 0.35**2) ** 2
    expected = (np.arctanh(0.4) - np.arctanh(0.3)) * np.sqrt(17) / np.sqrt(2 - 2 * c)
    assert z == pytest.approx(expected, rel=1e-12)
    # close to the MRR Z (0.3583792 in a published R implementation's tests)
    assert _mrr_z(0.4, 0.3, 0.2, 20) == pytest.approx(0.3583792, abs=1e-6)
    assert z == pytest.approx(0.3583792, abs=1e-3)
    assert p == pytest.approx(0.7200596, abs=1e-3)


def test_steiger_properties():
    z, p = steiger_z(0.6, 0.5, 0.7, 500)
    z2, p2 = steiger_z(0.5, 0.6, 0.7, 500)
    assert z > 0 and z2 == pytest.approx(-z) and p2 == pytest.approx(p)
    assert steiger_z(0.5, 0.5, 0.3, 100) == (0.0, 1.0)
    # higher correlation between predictors → the same difference is more significant
    assert steiger_z(0.6, 0.5, 0.9, 200)[1] < steiger_z(0.6, 0.5, 0.1, 200)[1]
    with pytest.raises(ValueError):
        steiger_z(0.5, 0.4, 0.2, 3)
    with pytest.raises(ValueError):
        steiger_z(1.5, 0.4, 0.2, 30)


def test_steiger_false_positive_rate_under_the_null():
    rng = np.random.default_rng(0)
    n, sims, hits = 150, 1000, 0
    for _ in range(sims):
        y = rng.normal(size=n)
        a = y + rng.normal(0, 1.2, n)
        b = y + rng.normal(0, 1.2, n)
        hits += compare(y, a, b).steiger_p < 0.05
    assert 0.03 <= hits / sims <= 0.08  # about 5.8% in 4,000 simulations


def test_paired_bootstrap_detects_a_real_difference_and_not_a_null_one():
    rng = np.random.default_rng(1)
    n = 400
    y = rng.normal(size=n)
    good, bad = y + rng.normal(0, 0.5, n), y + rng.normal(0, 2.0, n)
    lo, hi, p, n_deg = paired_bootstrap(y, good, bad, n_boot=300, seed=0)
    delta = spearman(good, y) - spearman(bad, y)
    assert n_deg == 0 and 0 < lo < delta < hi and p < 0.01
    lo0, hi0, p0, _ = paired_bootstrap(y, good, good + 1.0, n_boot=200, seed=0)  # same ranking
    assert lo0 == hi0 == 0.0 and p0 == 1.0


def test_compare_combines_both_tests():
    rng = np.random.default_rng(2)
    y = rng.normal(size=200)
    a, b = y + rng.normal(0, 0.5, 200), y + rng.normal(0, 1.5, 200)
    c = compare(y, a, b, n_boot=200, seed=3)
    assert c.delta == pytest.approx(c.rho_a - c.rho_b)
    assert c.rho_ab == pytest.approx(spearman(a, b))
    assert c.steiger_p < 0.05 and c.bootstrap_p < 0.05 and c.delta_ci_low > 0
    assert compare(y, a, b).bootstrap_p is None
    z_plain = steiger_z(c.rho_a, c.rho_b, c.rho_ab, 200)[0]
    assert c.steiger_z == pytest.approx(z_plain / np.sqrt(SPEARMAN_VARIANCE_FACTOR))


@pytest.mark.parametrize("case", ["constant truth", "constant prediction", "three images"])
def test_compare_leaves_steiger_undefined_where_rho_is_undefined_or_n_too_small(case):
    """A constant ground truth or prediction leaves ρ undefined, and Steiger's Z needs n > 3:
    ``compare`` then gives a NaN Z and p (no significance), while ``steiger_z`` itself stays strict."""
    y, a, b = np.array([3.0, 4, 5, 6, 7]), np.array([1.0, 2, 3, 5, 4]), np.array([5.0, 4, 3, 2, 1])
    if case == "constant truth":
        y = np.full(5, 3.0)
    elif case == "constant prediction":
        b = np.zeros(5)
    else:
        y, a, b = y[:3], a[:3], b[:3]
    c = compare(y, a, b, n_boot=20, seed=0)
    assert np.isnan(c.steiger_z) and np.isnan(c.steiger_p) and c.n == y.size
    with pytest.raises(ValueError):
        steiger_z(c.rho_a, c.rho_b, c.rho_ab, c.n)

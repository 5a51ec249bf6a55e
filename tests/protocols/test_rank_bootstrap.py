"""The fast rank engine against scipy: point ρ to 1e-12, every bootstrap resample to 1e-9."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from aadb_toolkit import _ranks
from aadb_toolkit._numbers import MAX_RESAMPLES
from aadb_toolkit.errors import InputError
from aadb_toolkit.protocols._ranking import BootstrapSpearman, bootstrap_spearman, pearson, spearman_ci


def spearman(x, y):
    return _ranks.spearman(x, y, min_n=2)[0]


def test_hand_computed_spearman_with_ties():
    # ranks of x: [1, 2, 3.5, 5, 3.5]; of y: 1..5 → ρ = 8 / sqrt(9.5 · 10)
    assert spearman(np.array([5, 6, 7, 8, 7]), np.arange(1, 6)) == pytest.approx(8 / np.sqrt(95), abs=1e-15)
    assert spearman(np.arange(5), np.arange(5)[::-1]) == -1.0
    assert np.isnan(spearman(np.ones(4), np.arange(4)))
    assert np.isnan(pearson(np.arange(4), np.zeros(4)))


@pytest.mark.parametrize("ties", [False, True])
def test_point_spearman_equals_scipy(ties):
    rng = np.random.default_rng(3)
    for n in (3, 10, 257, 5000):
        y = rng.integers(1, 6, n).astype(float) if ties else rng.normal(size=n)
        x = (rng.integers(0, 4, n) if ties else rng.normal(size=n)) + 0.5 * y
        assert abs(spearman(x, y) - stats.spearmanr(x, y).statistic) < 1e-12


@pytest.mark.parametrize("y_ties, x_ties", [(False, False), (True, False), (False, True), (True, True)])
def test_bootstrap_resamples_equal_scipy_on_explicit_resamples(y_ties, x_ties):
    rng = np.random.default_rng(7)
    n = 40
    y = rng.integers(1, 6, n).astype(float) if y_ties else rng.normal(size=n)
    x1 = rng.integers(0, 5, n).astype(float) if x_ties else y + rng.normal(size=n)
    x2 = rng.normal(size=n)
    bs = BootstrapSpearman(y, [x1, x2])
    base = bs.base_order()
    checked = 0
    for c in bs.counts(60, seed=11):
        assert c.sum() == n and c.shape == (n,)
        got = bs.rho_from_counts(c)
        yy = np.repeat(y[base], c)
        for j, x in enumerate((x1, x2)):
            ref = stats.spearmanr(np.repeat(x[base], c), yy).statistic
            if np.isnan(ref):
                assert np.isnan(got[j])
            else:
                assert abs(got[j] - ref) < 1e-9
                checked += 1
    assert checked > 100


def test_run_matches_counts_and_is_seeded():
    rng = np.random.default_rng(1)
    y, x = rng.normal(size=300), rng.normal(size=300)
    a = bootstrap_spearman(y, x, 50, seed=5)
    b = bootstrap_spearman(y, x, 50, seed=5)
    c = bootstrap_spearman(y, x, 50, seed=6)
    assert a.shape == (50, 1) and np.array_equal(a, b) and not np.array_equal(a, c)
    bs = BootstrapSpearman(y, x)
    manual = np.array([bs.rho_from_counts(cnt)[0] for cnt in bs.counts(50, seed=5)])
    assert np.array_equal(manual, a[:, 0])
    # blocks of resamples may run on several threads; the result does not depend on it
    assert np.array_equal(bootstrap_spearman(y, x, 50, seed=5, threads=1), bootstrap_spearman(y, x, 50, seed=5, threads=3))


def test_degenerate_resample_is_nan_not_dropped():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    bs = BootstrapSpearman(y, np.array([4.0, 3.0, 2.0, 1.0]))
    assert np.isnan(bs.rho_from_counts(np.array([4, 0, 0, 0]))[0])
    assert bs.rho_from_counts(np.array([1, 1, 1, 1]))[0] == pytest.approx(-1.0)


def test_spearman_ci_percentiles_match_a_naive_scipy_loop():
    rng = np.random.default_rng(2)
    n = 120
    y = rng.integers(1, 8, n).astype(float)
    x = y + rng.normal(0, 2, n)
    rho, lo, hi, n_deg = spearman_ci(y, x, n_boot=200, seed=9)
    bs = BootstrapSpearman(y, x)
    base = bs.base_order()
    naive = [stats.spearmanr(np.repeat(x[base], c), np.repeat(y[base], c)).statistic for c in bs.counts(200, seed=9)]
    assert n_deg == 0
    assert lo == pytest.approx(np.quantile(naive, 0.025), abs=1e-9)
    assert hi == pytest.approx(np.quantile(naive, 0.975), abs=1e-9)
    assert lo < rho < hi


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="finite"):
        BootstrapSpearman(np.array([1.0, np.nan]), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="equal length"):
        BootstrapSpearman(np.arange(3.0), np.arange(4.0))


def test_default_threads_follow_the_environment(monkeypatch):
    from aadb_toolkit.protocols._ranking import default_threads

    monkeypatch.setenv("AADB_BOOTSTRAP_THREADS", "1")
    assert default_threads() == 1
    monkeypatch.setenv("AADB_BOOTSTRAP_THREADS", "x")
    with pytest.raises(ValueError, match="AADB_BOOTSTRAP_THREADS"):
        default_threads()
    monkeypatch.delenv("AADB_BOOTSTRAP_THREADS")
    assert 1 <= default_threads() <= 2


def test_resample_counts_out_of_range_are_input_errors():
    """n_boot sizes the arrays (10**20 was numpy's ValueError): 0 to MAX_RESAMPLES, as every command
    takes it, refused before anything is allocated."""
    rng = np.random.default_rng(0)
    b = BootstrapSpearman(rng.normal(size=30), [rng.normal(size=30)])
    for n_boot in (10**20, -1, MAX_RESAMPLES + 1, 10.0):
        with pytest.raises(InputError, match="n_boot must be a whole number from 0 to 1,000,000") as exc:
            b.run(n_boot, 0)
        assert exc.value.field == "n_boot"
        with pytest.raises(InputError):
            next(b.counts(n_boot, 0))
    assert b.run(0, 0).shape == (0, 1)

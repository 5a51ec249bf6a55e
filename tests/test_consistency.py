"""Batch consistency analysis: exact statistics against scipy/statsmodels, permutation p-values
against an independent brute-force loop, planted agreement and planted random raters, degenerate
batches, the output files and the CLI."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from aadb_toolkit import consistency, sources
from aadb_toolkit.cli import main as cli_main
from aadb_toolkit.errors import InputError

from tiny_data import make_tiny_curated


def _frame(matrices: dict[str, np.ndarray]) -> pd.DataFrame:
    """Ratings table from {batch_id: (raters × images) score matrix, NaN = not rated}."""
    rows = []
    for bid, M in matrices.items():
        for r in range(M.shape[0]):
            for i in range(M.shape[1]):
                if not np.isnan(M[r, i]):
                    rows.append((bid, f"{bid}_w{r}", f"{bid}_img{i}", M[r, i]))
    return pd.DataFrame(rows, columns=["batch_id", "rater_id", "image_id", "score"])


def _planted(n_batches: int, *, random_batches: float = 0.0, seed: int = 0, R: int = 5, N: int = 10):
    """Batches whose 5 raters follow a shared latent quality; a planted share answer uniformly at random."""
    rng = np.random.default_rng(seed)
    mats, is_random = {}, {}
    for b in range(n_batches):
        rand = b < round(random_batches * n_batches)
        q = rng.normal(size=N)
        if rand:
            M = rng.integers(1, 6, size=(R, N)).astype(float)
        else:
            M = np.clip(np.rint(3 + 1.1 * q + rng.normal(0, 0.5, (R, N))), 1, 5)
        mats[f"B{b:04d}"] = M
        is_random[f"B{b:04d}"] = rand
    return _frame(mats), pd.Series(is_random)


# --- independent brute-force reference ---------------------------------------------------------
def _mean_rho(M: np.ndarray) -> float:
    if M.shape[0] > 2 and not np.isnan(M).any() and (np.ptp(M, axis=1) > 0).all():  # one call, all pairs
        rho = np.atleast_2d(stats.spearmanr(M.T).statistic)
        return float(rho[np.triu_indices(M.shape[0], 1)].mean())
    vals = []
    for a, b in itertools.combinations(range(M.shape[0]), 2):
        m = ~np.isnan(M[a]) & ~np.isnan(M[b])
        x, y = M[a, m], M[b, m]
        if m.sum() < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
            continue
        vals.append(stats.spearmanr(x, y).statistic)
    return float(np.mean(vals)) if vals else math.nan


def _avg_ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks by binary search in the sorted values (a different method from the library's)."""
    s = np.sort(x)
    return (np.searchsorted(s, x, "left") + np.searchsorted(s, x, "right") + 1) / 2.0


def _mean_rho_quick(M: np.ndarray) -> float:
    """The same statistic from sorted-value ranks and np.corrcoef (faster than spearmanr calls)."""
    if not np.isnan(M).any():
        ranks = np.vstack([_avg_ranks(row) for row in M])
        ok = np.ptp(ranks, axis=1) > 0
        if ok.sum() < 2:
            return math.nan
        rho = np.corrcoef(ranks[ok])
        return float(rho[np.triu_indices(int(ok.sum()), 1)].mean())
    vals = []
    for a, b in itertools.combinations(range(M.shape[0]), 2):
        m = ~np.isnan(M[a]) & ~np.isnan(M[b])
        if m.sum() < 3:
            continue
        x, y = _avg_ranks(M[a, m]), _avg_ranks(M[b, m])
        if np.ptp(x) == 0 or np.ptp(y) == 0:
            continue
        vals.append(np.corrcoef(x, y)[0, 1])
    return float(np.mean(vals)) if vals else math.nan


def _brute_p(M: np.ndarray, n_perm: int, rng: np.random.Generator) -> float:
    """Permutation p-value by a plain loop: shuffle each rater's own scores, recompute, count."""
    obs, hits = _mean_rho_quick(M), 0
    for _ in range(n_perm):
        Mp = M.copy()
        for a in range(M.shape[0]):
            idx = np.flatnonzero(~np.isnan(M[a]))
            Mp[a, idx] = M[a, idx][rng.permutation(len(idx))]
        s = _mean_rho_quick(Mp)
        hits += bool(np.isnan(s) or s >= obs - 1e-12)
    return (1 + hits) / (1 + n_perm)


def _close_mc(p_fast: float, n_fast: int, p_ref: float, n_ref: int) -> bool:
    p = (p_fast + p_ref) / 2
    se = math.sqrt(max(p * (1 - p), 1e-4) * (1 / n_fast + 1 / n_ref))
    return abs(p_fast - p_ref) <= 4.5 * se + 1e-3


def _weak_batches(seed: int, n: int, *, missing: float = 0.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for b in range(n):
        q = rng.normal(size=10)
        M = np.clip(np.rint(3 + 0.4 * q + rng.normal(0, 1, (5, 10))), 1, 5)
        if missing:
            M[rng.random((5, 10)) < missing] = np.nan
        out[f"B{b}"] = M
    return out


# --- exact statistics ------------------------------------------------------------------------
def test_pair_rho_equals_scipy_on_every_pair():
    mats = _weak_batches(3, 12, missing=0.0)
    mats.update({f"X{k}": M for k, M in _weak_batches(4, 6, missing=0.25).items()})
    mats["B0"][2] = 4.0  # a constant rater: its pairs are excluded and counted
    df = _frame(mats)
    res = consistency.analyze_batches(df, n_perm=50)
    assert len(res.pairs) == 18 * 10
    checked = 0
    for row in res.pairs.itertuples(index=False):
        M = mats[row.batch_id]
        a, b = int(row.rater_a.split("_w")[1]), int(row.rater_b.split("_w")[1])
        m = ~np.isnan(M[a]) & ~np.isnan(M[b])
        assert row.n_common == m.sum()
        if m.sum() < 3:
            assert row.status == "too_few_common_images" and np.isnan(row.rho)
        elif np.ptp(M[a, m]) == 0 or np.ptp(M[b, m]) == 0:
            assert row.status == "constant_rater" and np.isnan(row.rho)
        else:
            assert row.status == "ok"
            assert abs(row.rho - stats.spearmanr(M[a, m], M[b, m]).statistic) <= 1e-12
            checked += 1
    assert checked > 150
    b0 = res.batches.set_index("batch_id").loc["B0"]
    assert b0["n_pairs_constant"] == 4 and b0["n_pairs_valid"] == 6
    assert res.summary["excluded_pairs"]["constant_rater"] >= 4
    for bid, M in mats.items():
        got = res.batches.set_index("batch_id").loc[bid, "mean_rho"]
        assert abs(got - _mean_rho(M)) <= 1e-12


def test_bh_equals_statsmodels():
    df, _ = _planted(80, random_batches=0.5, seed=2)
    res = consistency.analyze_batches(df, n_perm=400, q=0.1, seed=3)
    t = res.batches[res.batches["status"] == "tested"]
    reject, p_adj, _, _ = multipletests(t["p_value"].to_numpy(), alpha=0.1, method="fdr_bh")
    np.testing.assert_allclose(t["p_adjusted"].to_numpy(), p_adj, rtol=0, atol=1e-15)
    assert (t["significant"].to_numpy() == reject).all()
    assert res.summary["n_significant"] == int(reject.sum())
    # p-values follow the (1 + #exceedances) / (1 + n_perm) grid
    k = t["p_value"].to_numpy() * 401 - 1
    np.testing.assert_allclose(k, np.rint(k), atol=1e-9)


def test_permutation_p_matches_brute_force_complete_and_irregular():
    mats = _weak_batches(11, 3)
    mats.update({f"X{k}": M for k, M in _weak_batches(12, 1, missing=0.2).items()})
    res = consistency.analyze_batches(_frame(mats), n_perm=20_000, seed=5)
    rng = np.random.default_rng(99)
    by_id = res.batches.set_index("batch_id")
    assert by_id.loc["XB0", "complete"] == False  # noqa: E712 - numpy bool
    for bid, M in mats.items():
        n_ref = 1000 if bid.startswith("X") else 2000
        p_ref = _brute_p(M, n_ref, rng)
        p_fast = by_id.loc[bid, "p_value"]
        assert _close_mc(p_fast, 20_000, p_ref, n_ref), (bid, p_fast, p_ref)


def test_pairwise_p_matches_brute_force():
    mats = _weak_batches(21, 2)
    res = consistency.analyze_batches(_frame(mats), n_perm=20_000, method="pairwise", seed=1)
    rng = np.random.default_rng(7)
    for row in res.pairs.head(6).itertuples(index=False):
        M = mats[row.batch_id]
        a, b = int(row.rater_a.split("_w")[1]), int(row.rater_b.split("_w")[1])
        obs = stats.spearmanr(M[a], M[b]).statistic
        ra, rb = _avg_ranks(M[a]), _avg_ranks(M[b])
        hits = sum(np.corrcoef(ra, rb[rng.permutation(10)])[0, 1] >= obs - 1e-12 for _ in range(1500))
        assert _close_mc(row.p_value, 20_000, (1 + hits) / 1501, 1500), (row, hits)
    reject, p_adj, _, _ = multipletests(res.pairs["p_value"].to_numpy(), alpha=0.05, method="fdr_bh")
    np.testing.assert_allclose(res.pairs["p_adjusted"].to_numpy(), p_adj)
    assert res.summary["unit"] == "pair" and res.summary["n_tests"] == 20


def _kendall_w_reference(M: np.ndarray) -> float:
    m, n = M.shape
    ranks = np.vstack([_avg_ranks(row) for row in M])
    Rj = ranks.sum(0)
    S = ((Rj - Rj.mean()) ** 2).sum()
    T = sum(sum(t**3 - t for t in np.unique(row, return_counts=True)[1]) for row in M)
    return 12 * S / (m**2 * (n**3 - n) - m * T)


def test_kendall_w_value_and_p():
    mats = _weak_batches(31, 3)
    mats["P"] = np.tile(np.arange(1.0, 6.0).repeat(2), (4, 1))  # perfect agreement, with ties
    res = consistency.analyze_batches(_frame(mats), n_perm=20_000, method="kendall-w", seed=2)
    by_id = res.batches.set_index("batch_id")
    for bid, M in mats.items():
        assert abs(by_id.loc[bid, "kendall_w"] - _kendall_w_reference(M)) <= 1e-12
        ranks = np.vstack([stats.rankdata(row) for row in M])  # scipy's ranks give the same W
        assert np.allclose(ranks, np.vstack([_avg_ranks(row) for row in M]))
    assert abs(by_id.loc["P", "kendall_w"] - 1.0) <= 1e-12
    rng = np.random.default_rng(3)
    for bid in ("B0", "B1", "B2"):
        M = mats[bid]
        obs = _kendall_w_reference(M)
        hits = sum(_kendall_w_reference(np.vstack([row[rng.permutation(10)] for row in M])) >= obs - 1e-12
                   for _ in range(1500))
        assert _close_mc(by_id.loc[bid, "p_value"], 20_000, (1 + hits) / 1501, 1500)


# --- planted truth ---------------------------------------------------------------------------
def test_agreeing_raters_make_nearly_all_batches_significant():
    df, _ = _planted(200, seed=4)
    res = consistency.analyze_batches(df, n_perm=2000, seed=0)
    assert res.summary["percent_significant"] >= 97.0
    assert res.summary["n_tested"] == 200


@pytest.mark.parametrize("share", [0.2, 0.4])
def test_planted_share_of_random_batches_found_non_significant(share):
    df, is_random = _planted(300, random_batches=share, seed=int(share * 10))
    res = consistency.analyze_batches(df, n_perm=2000, seed=1)
    sig = res.batches.set_index("batch_id")["significant"]
    non_sig_share = 1 - sig.mean()
    assert abs(non_sig_share - share) <= 0.06, non_sig_share
    # and it is the planted batches that fail: few random batches pass, few agreeing ones fail
    assert sig[is_random].mean() <= 0.1
    assert sig[~is_random].mean() >= 0.95


def test_tiny_curated_agreeing_vs_noisy(tmp_path):
    clean = make_tiny_curated(tmp_path / "clean", n_batches=60, seed=3, image_size=8)
    res = consistency.run_consistency(sources.load(clean), tmp_path / "out_clean", n_perm=2000)
    assert res.summary["percent_significant"] >= 90.0
    noisy = make_tiny_curated(tmp_path / "noisy", n_batches=60, seed=3, image_size=8, noise_raters=1.0)
    res_noisy = consistency.run_consistency(sources.load(noisy), tmp_path / "out_noisy", n_perm=2000)
    assert res_noisy.summary["percent_significant"] <= 15.0


# --- degenerate batches, inputs and outputs -------------------------------------------------
def test_degenerate_batches_are_counted_not_dropped():
    nan = np.nan
    rng = np.random.default_rng(0)
    mats = {
        "ok": np.clip(np.rint(3 + rng.normal(size=(5, 10))), 1, 5),
        "one_rater": np.array([[1.0, 2, 3, 4, 5]]),
        "two_common": np.array([[1.0, 2, 3, nan, nan], [2.0, 1, nan, 4, 5]]),
        "all_constant": np.array([[3.0, 3, 3, 3], [1.0, 2, 3, 4], [2.0, 2, 2, 2]]),
        "two_images": np.array([[1.0, 2], [2.0, 1], [1.0, 2]]),
    }
    res = consistency.analyze_batches(_frame(mats), n_perm=200)
    st = res.batches.set_index("batch_id")["status"]
    assert st["ok"] == "tested"
    assert st["one_rater"] == "too_few_raters"
    assert st["two_common"] == "too_few_common_images"
    assert st["all_constant"] == "all_pairs_constant"
    assert st["two_images"] == "too_few_common_images"
    s = res.summary
    assert s["n_batches"] == 5 and s["n_tested"] == 1 and s["n_not_tested"] == 4
    assert s["degenerate"] == {"too_few_raters": 1, "too_few_common_images": 2, "all_pairs_constant": 1}
    assert s["excluded_pairs"]["constant_rater"] == 3
    assert s["excluded_pairs"]["too_few_common_images"] == 1 + 3
    assert res.batches.set_index("batch_id").loc["all_constant", "p_value"] != res.batches.set_index("batch_id").loc["all_constant", "p_value"]
    sig = int(res.batches["significant"].sum())
    assert s["percent_significant"] == pytest.approx(100 * sig / 5)
    assert s["percent_significant_of_tested"] == pytest.approx(100 * sig / 1)


def test_seeded_and_reproducible():
    df, _ = _planted(20, random_batches=0.5, seed=8)
    a = consistency.analyze_batches(df, n_perm=300, seed=11)
    b = consistency.analyze_batches(df, n_perm=300, seed=11)
    c = consistency.analyze_batches(df, n_perm=300, seed=12)
    pd.testing.assert_frame_equal(a.batches, b.batches)
    assert not np.array_equal(a.batches["p_value"], c.batches["p_value"])


def test_batches_sharing_a_draw_get_uncorrelated_p_values():
    """Two batches with the same scores share one draw of shuffles in a chunk; their own
    relabellings make their p-values uncorrelated over seeds (the same draw alone would make them
    equal), while each stays a valid p-value of its own batch (docs/consistency.md)."""
    M = np.array([[1, 2, 3, 4, 5, 1, 2, 3, 4, 5],
                  [2, 1, 3, 5, 4, 2, 1, 4, 3, 5],
                  [5, 4, 3, 2, 1, 1, 2, 3, 4, 5],
                  [3, 3, 1, 5, 2, 4, 1, 5, 2, 4],
                  [1, 5, 2, 4, 3, 3, 4, 2, 5, 1]], float)
    df = _frame({"A": M, "B": M})
    p = np.array([consistency.analyze_batches(df, n_perm=99, seed=s, show_progress=False).batches["p_value"]
                  for s in range(300)])
    assert np.corrcoef(p[:, 0], p[:, 1])[0, 1] < 0.25  # sd of a null correlation over 300 seeds ≈ 0.06
    assert abs(p[:, 0].mean() - p[:, 1].mean()) < 0.05


def test_bad_input_is_named():
    df, _ = _planted(3, seed=1)
    with pytest.raises(InputError, match="score"):
        consistency.analyze_batches(df.drop(columns="score"))
    dup = pd.concat([df, df.iloc[[5]]], ignore_index=True)
    with pytest.raises(InputError, match="twice"):
        consistency.analyze_batches(dup, n_perm=10)
    bad = df.astype({"score": object})
    bad.loc[7, "score"] = "five"
    with pytest.raises(InputError, match="row 7"):
        consistency.analyze_batches(bad, n_perm=10)
    with pytest.raises(InputError, match="method"):
        consistency.analyze_batches(df, method="kendal-w")
    missing = df.copy()
    missing.loc[[0, 1], "score"] = np.nan
    res = consistency.analyze_batches(missing, n_perm=10)
    assert res.summary["n_ratings_missing_score"] == 2
    assert res.batches["n_ratings"].sum() == len(df) - 2


def test_outputs_and_cli(tiny_curated, tmp_path):
    out = tmp_path / "cons"
    rc = cli_main(["consistency", "--data", str(tiny_curated), "--out", str(out), "--n-perm", "500",
                   "--seed", "4", "--method", "pairwise"])
    assert rc == 0
    summary = json.loads((out / "consistency.json").read_text())
    for key in ("n_batches", "n_significant", "percent_significant", "q", "n_perm", "method", "seed",
                "degenerate", "excluded_pairs", "percent_significant_of_tested"):
        assert key in summary
    assert summary["n_batches"] == 20 and summary["method"] == "pairwise" and summary["n_perm"] == 500
    batches = pd.read_csv(out / "consistency_batches.csv")
    assert len(batches) == 20
    assert (out / "consistency_batch_rho.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "consistency_p_values.png").stat().st_size > 1000
    rc = cli_main(["consistency", "--data", str(tmp_path / "nowhere"), "--out", str(out)])
    assert rc == 1


def test_other_batch_shapes_two_raters_and_long_batches():
    """2 raters × 12 images (permutations by sorted random keys) and 3 × 60 (scipy ranks)."""
    rng = np.random.default_rng(0)
    mats = {"R2N12": np.clip(np.rint(3 + 0.3 * rng.normal(size=12) + rng.normal(0, 1, (2, 12))), 1, 5),
            "R3N60": np.clip(np.rint(3 + 0.15 * rng.normal(size=60) + rng.normal(0, 1, (3, 60))), 1, 5)}
    res = consistency.analyze_batches(_frame(mats), n_perm=10_000, seed=2)
    by_id = res.batches.set_index("batch_id")
    for bid, M in mats.items():
        assert by_id.loc[bid, "mean_rho"] == pytest.approx(_mean_rho(M), abs=1e-12)
        n_ref = 1500 if bid == "R2N12" else 600
        p_ref = _brute_p(M, n_ref, np.random.default_rng(1))
        assert _close_mc(by_id.loc[bid, "p_value"], 10_000, p_ref, n_ref), (bid, p_ref)


def test_no_pairs_at_all_and_kendall_on_the_complete_block(tmp_path):
    single = pd.DataFrame({"batch_id": ["a"] * 3 + ["b"] * 3, "rater_id": ["x"] * 3 + ["y"] * 3,
                           "image_id": list("ijkijk"), "score": [1, 2, 3, 3, 2, 1]})
    for method in consistency.METHODS:
        res = consistency.analyze_batches(single, n_perm=20, method=method)
        assert res.summary["degenerate"]["too_few_raters"] == 2 and res.pairs.empty
        consistency.write_outputs(res, tmp_path / method)
        assert json.loads((tmp_path / method / "consistency.json").read_text())["n_tested"] == 0
    rng = np.random.default_rng(4)
    M = np.clip(np.rint(3 + rng.normal(size=(4, 8))), 1, 5)
    M[0, 7] = np.nan  # rater 0 skipped the last image: W uses the 7 images everyone rated
    res = consistency.analyze_batches(_frame({"k": M}), n_perm=50, method="kendall-w")
    row = res.batches.iloc[0]
    assert row["n_images"] == 7 and res.summary["n_ratings_outside_complete_block"] == 3
    assert row["kendall_w"] == pytest.approx(_kendall_w_reference(M[:, :7]), abs=1e-12)


def test_progress_bar_only_when_asked(capsys):
    """A bar over the permutations on stderr when asked; nothing at all (not even tqdm's import)
    when not."""
    df, _ = _planted(3, seed=2)
    consistency.analyze_batches(df, n_perm=50, seed=0, show_progress=False)
    assert capsys.readouterr().err == ""
    consistency.analyze_batches(df, n_perm=50, seed=0, show_progress=True)
    err = capsys.readouterr().err
    assert "permutations" in err and "150" in err


class _StopAtFirstChunk(Exception):
    pass


class _FirstChunkOnly:
    """A progress bar that stops the test at the first chunk's update."""

    def update(self, n: int) -> None:
        raise _StopAtFirstChunk


def test_permutation_chunks_are_generated_not_listed():
    """The chunks' offsets are generated one at a time: with 10**9 permutations of 20 batches (past
    the commands' bound, as a library caller may ask) the first chunk is drawn at once, without a
    list of every (batch, offset) pair first (1.2 million of them here, memory growing with n_perm)."""
    import tracemalloc

    scores = np.random.default_rng(0).integers(1, 6, (20, 5, 10)).astype(float)
    tracemalloc.start()
    try:
        with pytest.raises(_StopAtFirstChunk):
            consistency._complete_group(scores, consistency.METHODS["pairwise"], 10**9, np.random.default_rng(0),
                                        _FirstChunkOnly())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 * 2**20, peak


@pytest.mark.parametrize("option, value, why", [
    ("--seed", "-1", "--seed must be a whole number from 0 to 9,223,372,036,854,775,807"),
    ("--seed", str(2**63), "--seed must be a whole number from 0 to 9,223,372,036,854,775,807"),
    ("--n-perm", str(10**20), "--n-perm must be a whole number from 1 to 1,000,000"),
    ("--n-perm", "0", "--n-perm must be a whole number from 1 to 1,000,000"),
], ids=["negative_seed", "huge_seed", "huge_n_perm", "zero_n_perm"])
def test_cli_refuses_a_seed_or_n_perm_out_of_range(tiny_curated, tmp_path, capsys, option, value, why):
    """The same seed range as ``aadb score`` (what a document records: int64), and at most
    1,000,000 permutations, as ``--n-boot``: a one-line error before any work."""
    out = tmp_path / "cons"
    rc = cli_main(["consistency", "--data", str(tiny_curated), "--out", str(out), "--n-perm", "10", option, value,
                   "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1 and err.startswith("aadb consistency: error: ") and why in err, err
    assert not out.exists()


def test_analyze_batches_refuses_a_seed_or_n_perm_out_of_range():
    from aadb_toolkit._numbers import MAX_RESAMPLES

    df, _ = _planted(2)
    for kwargs, field in (({"seed": -1}, "seed"), ({"seed": 2**63}, "seed"), ({"n_perm": MAX_RESAMPLES + 1}, "n_perm"),
                          ({"n_perm": 0}, "n_perm"), ({"n_perm": 10.0}, "n_perm"), ({"seed": True}, "seed")):
        with pytest.raises(InputError, match="must be a whole number") as exc:
            consistency.analyze_batches(df, **{"n_perm": 10, **kwargs})
        assert exc.value.field == field


#: A generator setting as a simulated release's manifest records it (provenance ``setting``).
SETTING = {"setting": "model", "overrides": {"raters.taste_sd": 0.5}, "sha256": "0" * 64}


def _synthetic_curated(root):
    """A curated folder whose manifest says it was curated from a synthetic release."""
    cur = make_tiny_curated(root, n_batches=20, seed=1, image_size=8)
    manifest = json.loads((cur / "manifest.json").read_text())
    (cur / "manifest.json").write_text(json.dumps({**manifest, "synthetic": True, "synthetic_setting": SETTING}))
    return cur


def test_a_synthetic_source_is_named_synthetic_in_the_summary_and_the_headline(tiny_curated, tmp_path, capsys):
    """SPEC: a synthetic source is named synthetic in every table, result and message. ``aadb
    consistency`` wrote only ``source`` and printed a headline that did not say so."""
    out = tmp_path / "syn"
    rc = cli_main(["consistency", "--data", str(_synthetic_curated(tmp_path / "s")), "--out", str(out),
                   "--n-perm", "10", "--no-progress"])
    printed = capsys.readouterr().out
    assert rc == 0 and "SYNTHETIC data (a test instrument, not AADB)" in printed, printed
    summary = json.loads((out / "consistency.json").read_text())
    assert summary["synthetic"] is True and summary["dataset"] == "synthetic-aadb"
    assert summary["synthetic_setting"] == SETTING
    rc = cli_main(["consistency", "--data", str(tiny_curated), "--out", str(tmp_path / "real"), "--n-perm", "10",
                   "--no-progress"])
    printed = capsys.readouterr().out
    assert rc == 0 and "SYNTHETIC" not in printed
    real = json.loads((tmp_path / "real" / "consistency.json").read_text())
    assert real["synthetic"] is False and real["dataset"] == "aadb" and "synthetic_setting" not in real


def test_the_csv_tables_never_hold_a_spreadsheet_formula(tmp_path):
    """Review 2026-12-04 (afternoon): a HIT id such as ``=cmd|' /C calc'!A0`` reached
    consistency_batches.csv and consistency_pairs.csv as written, a formula a spreadsheet runs."""
    rng = np.random.default_rng(0)
    rows = [("=cmd|' /C calc'!A0" if b == 0 else f"b{b}", f"r{b}_{r}", f"i{b}_{k}", int(rng.integers(1, 6)))
            for b in range(3) for r in range(3) for k in range(6)]
    ratings = pd.DataFrame(rows, columns=["batch_id", "rater_id", "image_id", "score"])
    result = consistency.analyze_batches(ratings, n_perm=20, method="pairwise")
    paths = consistency.write_outputs(result, tmp_path / "out")
    for role in ("batches", "pairs"):
        text = paths[role].read_text()
        assert "'=cmd" in text and not any(line.startswith("=") for line in text.splitlines()), role

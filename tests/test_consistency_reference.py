"""An independent reference for the consistency analyses (issue 4, "statistics are right").

Everything here is written from the definitions, not from the library: plain loops over batches
and pairs with ``scipy.stats.spearmanr``; permutation null distributions either enumerated
*exactly* (small batches: every combination of every rater's permutations) or drawn with
``numpy.random.Generator.permuted`` (a different generator path from the library's permutation
table); ``statsmodels`` for Benjamini–Hochberg; Kendall's W by its textbook formula; the human
consistency table and Krippendorff's α on hand-computed and published examples.
The library's Monte-Carlo p-values are compared with the exact ones by a binomial tolerance.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from aadb_toolkit import consistency, human, reliability

# --- building ratings tables ------------------------------------------------------------------


def _table(mats: dict, *, batch_key=str, rater_key=None, image_key=None) -> pd.DataFrame:
    """Ratings table from {batch: raters × images matrix}; NaN cells are *not rated* (no row)."""
    rows = []
    for bi, (bid, M) in enumerate(mats.items()):
        for r in range(M.shape[0]):
            for i in range(M.shape[1]):
                if not np.isnan(M[r, i]):
                    rid = f"{bid}-r{r}" if rater_key is None else rater_key(bi, r)
                    iid = f"{bid}-i{i}" if image_key is None else image_key(bi, i)
                    rows.append((batch_key(bid), rid, iid, float(M[r, i])))
    return pd.DataFrame(rows, columns=["batch_id", "rater_id", "image_id", "score"])


def _matrices(ratings: pd.DataFrame) -> dict:
    """Reference pivot: per batch, a raters × images matrix (rows with a missing score left out)."""
    out = {}
    usable = ratings[ratings["score"].notna()]
    for bid, part in usable.groupby("batch_id", sort=False):
        M = part.pivot(index="rater_id", columns="image_id", values="score")
        out[str(bid)] = (list(map(str, M.index)), M.to_numpy(dtype=float))
    return out


# --- the reference statistics -------------------------------------------------------------------


def ref_pair(x: np.ndarray, y: np.ndarray) -> tuple[float, str, int]:
    m = ~np.isnan(x) & ~np.isnan(y)
    n = int(m.sum())
    if n < 3:
        return math.nan, "too_few_common_images", n
    if np.ptp(x[m]) == 0 or np.ptp(y[m]) == 0:
        return math.nan, "constant_rater", n
    return float(stats.spearmanr(x[m], y[m]).statistic), "ok", n


def ref_batch(M: np.ndarray) -> dict:
    """Mean pairwise ρ over the defined pairs, the pair list and the degenerate kind (or None)."""
    R = M.shape[0]
    pairs = {(a, b): ref_pair(M[a], M[b]) for a, b in itertools.combinations(range(R), 2)}
    ok = [v[0] for v in pairs.values() if v[1] == "ok"]
    if R < 2:
        kind = "too_few_raters"
    elif all(v[1] == "too_few_common_images" for v in pairs.values()):
        kind = "too_few_common_images"
    elif not ok:
        kind = "all_pairs_constant"
    else:
        kind = None
    return {"pairs": pairs, "mean_rho": float(np.mean(ok)) if ok else math.nan, "degenerate": kind}


def _rank_rows(x: np.ndarray) -> np.ndarray:
    return stats.rankdata(x, method="average", axis=-1)


def _rho_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Row-wise Spearman ρ (Pearson of average ranks); NaN where a row is constant."""
    rx, ry = _rank_rows(x), _rank_rows(y)
    rx = rx - rx.mean(-1, keepdims=True)
    ry = ry - ry.mean(-1, keepdims=True)
    den = np.sqrt((rx * rx).sum(-1) * (ry * ry).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (rx * ry).sum(-1) / np.where(den > 0, den, 1), np.nan)


def ref_null_stats(M: np.ndarray, Mp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean-ρ statistic and the per-pair ρ of each permuted copy ``Mp`` (P, R, N) of ``M``.

    Pairs are those of ``M`` with ≥ 3 common images (the common set does not change under the
    permutation); the statistic averages the pairs defined in that copy (NaN when none is)."""
    R = M.shape[0]
    rated = ~np.isnan(M)
    pair_rhos = {}
    for a, b in itertools.combinations(range(R), 2):
        common = np.flatnonzero(rated[a] & rated[b])
        if len(common) >= 3:
            pair_rhos[(a, b)] = _rho_rows(Mp[:, a, common], Mp[:, b, common])
    stack = np.column_stack(list(pair_rhos.values()))
    n_def = (~np.isnan(stack)).sum(1)
    with np.errstate(invalid="ignore"):
        stat = np.where(n_def > 0, np.nansum(stack, 1) / np.maximum(n_def, 1), np.nan)
    return stat, pair_rhos


def exact_permutations(M: np.ndarray) -> np.ndarray:
    """Every combination of every rater's permutations of their own scores: (n_combos, R, N)."""
    R, N = M.shape
    per_rater = []
    for a in range(R):
        own = np.flatnonzero(~np.isnan(M[a]))
        perms = np.array(list(itertools.permutations(range(len(own)))))
        copies = np.full((len(perms), N), np.nan)
        copies[:, own] = M[a, own][perms]
        per_rater.append(copies)
    grids = np.meshgrid(*[np.arange(len(p)) for p in per_rater], indexing="ij")
    idx = [g.ravel() for g in grids]
    return np.stack([per_rater[a][idx[a]] for a in range(R)], axis=1)


def mc_permutations(M: np.ndarray, n_perm: int, rng: np.random.Generator) -> np.ndarray:
    """``n_perm`` copies of ``M``, each rater's scores shuffled independently among their own images."""
    R, N = M.shape
    out = np.full((n_perm, R, N), np.nan)
    for a in range(R):
        own = np.flatnonzero(~np.isnan(M[a]))
        out[:, a, own] = rng.permuted(np.tile(M[a, own], (n_perm, 1)), axis=1)
    return out


def exceed(null: np.ndarray, obs: float) -> np.ndarray:
    """stat* ≥ stat (with a rounding allowance); an undefined stat* counts as an exceedance."""
    return np.isnan(null) | (null >= obs - 1e-9)


def binomial_ok(p_lib: float, n_perm: int, p_true: float, z: float = 5.0) -> bool:
    """The library's count ~ Binomial(n_perm, p_true): accept within z standard deviations (+1)."""
    count = p_lib * (1 + n_perm) - 1
    return abs(count - n_perm * p_true) <= z * math.sqrt(n_perm * p_true * (1 - p_true)) + 1.5


def two_mc_ok(p_a: float, n_a: int, p_b: float, n_b: int, z: float = 5.0) -> bool:
    p = (p_a + p_b) / 2
    se = math.sqrt(max(p * (1 - p), 1e-4) * (1 / n_a + 1 / n_b))
    return abs(p_a - p_b) <= z * se + 2 / min(n_a, n_b)


def ref_kendall_w(M: np.ndarray) -> float:
    """Kendall's W with tie correction over the images every rater rated, constant raters left out:
    W = 12 S / (m²(n³−n) − m Σ_j T_j), T_j = Σ (t³ − t) over rater j's tie groups."""
    block = M[:, ~np.isnan(M).any(0)]
    block = block[np.ptp(block, axis=1) > 0]
    m, n = block.shape
    ranks = np.vstack([stats.rankdata(row) for row in block])
    Ri = ranks.sum(0)
    S = float(((Ri - m * (n + 1) / 2) ** 2).sum())
    T = sum(float(((c**3) - c).sum()) for c in (np.unique(row, return_counts=True)[1] for row in block))
    return 12 * S / (m**2 * (n**3 - n) - m * T)


# --- data ---------------------------------------------------------------------------------------


def _heavy_ties(rng: np.random.Generator, R: int = 5, N: int = 10, signal: float = 0.5) -> np.ndarray:
    q = rng.normal(size=N)
    return np.clip(np.rint(3 + signal * q + rng.normal(0, 1, (R, N))), 1, 5)


def _irregular(rng: np.random.Generator) -> np.ndarray:
    R, N = int(rng.integers(2, 8)), int(rng.integers(3, 13))
    M = _heavy_ties(rng, R, N, signal=rng.uniform(0, 1.5))
    M[rng.random((R, N)) < 0.3] = np.nan
    for a in range(R):  # every rater keeps at least one rating (a rater with none is not a rater)
        if np.isnan(M[a]).all():
            M[a, rng.integers(N)] = 3.0
    return M


@pytest.fixture(scope="module")
def varied() -> dict:
    rng = np.random.default_rng(20261129)
    mats = {}
    for k in range(12):
        mats[f"complete{k:02d}"] = _heavy_ties(rng)
    for k in range(25):
        mats[f"irregular{k:02d}"] = _irregular(rng)
    M = _heavy_ties(rng)
    M[1] = 4.0
    M[3] = 2.0
    mats["two_constant"] = M
    mats["all_constant"] = np.vstack([np.full(6, 3.0), _heavy_ties(rng, 1, 6)])  # 1 of 2 raters constant
    mats["few_common"] = np.array([[1, 2, np.nan, np.nan, 5], [np.nan, 3, 4, 5, np.nan], [2, np.nan, np.nan, 1, 4.0]])
    mats["one_rater"] = np.array([[1.0, 2, 3, 4, 5]])
    mats["two_images"] = _heavy_ties(rng, 4, 2)
    mats["non_integer"] = np.round(rng.normal(3, 1, (4, 7)), 1)
    return mats


# --- exact statistics on every pair, degenerate kinds, BH ----------------------------------------


@pytest.mark.parametrize("method", ["batch-mean-spearman", "pairwise"])
def test_every_pair_and_batch_equal_the_reference(varied, method):
    df = _table(varied)
    res = consistency.analyze_batches(df, n_perm=200, method=method, seed=1)
    assert res.summary["n_batches"] == len(varied)
    batches = res.batches.set_index("batch_id")
    pairs = res.pairs.set_index(["batch_id", "rater_a", "rater_b"])
    n_pairs_checked = 0
    for bid, M in varied.items():
        ref = ref_batch(M)
        row = batches.loc[bid]
        assert row["status"] == (ref["degenerate"] or "tested"), bid
        if ref["degenerate"] is None:
            assert abs(row["mean_rho"] - ref["mean_rho"]) <= 1e-12, bid
        else:
            assert np.isnan(row.get("p_value", math.nan)) and not row["significant"]
        assert row["n_pairs"] == len(ref["pairs"])
        assert row["n_pairs_valid"] == sum(v[1] == "ok" for v in ref["pairs"].values())
        assert row["n_pairs_constant"] == sum(v[1] == "constant_rater" for v in ref["pairs"].values())
        assert row["n_pairs_too_few_common"] == sum(v[1] == "too_few_common_images" for v in ref["pairs"].values())
        for (a, b), (rho, status, n) in ref["pairs"].items():
            got = pairs.loc[(bid, f"{bid}-r{a}", f"{bid}-r{b}")]
            assert got["status"] == status and got["n_common"] == n
            if status == "ok":
                assert abs(got["rho"] - rho) <= 1e-12, (bid, a, b)
            else:
                assert np.isnan(got["rho"])
            n_pairs_checked += 1
    assert n_pairs_checked == len(res.pairs)
    kinds = [ref_batch(M)["degenerate"] for M in varied.values()]
    assert res.summary["degenerate"] == {k: kinds.count(k) for k in consistency.DEGENERATE_KINDS}
    assert res.summary["n_tested"] == kinds.count(None)


def _bh_reference(p: np.ndarray, q: float) -> tuple[np.ndarray, np.ndarray]:
    """Benjamini–Hochberg step-up written out: adjusted p = min over k ≥ i of p_(k)·m/k, capped at 1."""
    m = len(p)
    order = np.argsort(p, kind="stable")
    adj_sorted = np.minimum.accumulate((p[order] * m / np.arange(1, m + 1))[::-1])[::-1]
    adj = np.empty(m)
    adj[order] = np.minimum(adj_sorted, 1.0)
    return adj, adj <= q


@pytest.mark.parametrize("method", ["batch-mean-spearman", "pairwise", "kendall-w"])
def test_bh_equals_statsmodels_and_the_step_up_rule(varied, method):
    res = consistency.analyze_batches(_table(varied), n_perm=300, method=method, seed=2, q=0.2)
    table = res.pairs if method == "pairwise" else res.batches
    tested = table["p_value"].notna().to_numpy()
    p = table.loc[tested, "p_value"].to_numpy()
    reject, adj, _, _ = multipletests(p, alpha=0.2, method="fdr_bh")
    np.testing.assert_allclose(table.loc[tested, "p_adjusted"].to_numpy(), adj, rtol=0, atol=1e-15)
    assert (table.loc[tested, "significant"].to_numpy() == reject).all()
    adj2, rej2 = _bh_reference(p, 0.2)
    np.testing.assert_allclose(adj, adj2, rtol=1e-12)
    assert (rej2 == reject).all()
    assert not table.loc[~tested, "significant"].any() and table.loc[~tested, "p_adjusted"].isna().all()
    assert res.summary["n_significant"] == int(reject.sum())
    # p-values have the (1 + count) / (1 + n_perm) form
    counts = p * 301 - 1
    np.testing.assert_allclose(counts, np.rint(counts), atol=1e-9)


# --- permutation p-values against exact null distributions and a brute-force Monte Carlo ------


SMALL_EXACT = {
    # complete, heavy ties: 4 raters × 4 images (24³ combinations with rater 0 free too: 24⁴ = 331,776)
    "c44": np.array([[1, 2, 2, 3], [2, 2, 3, 3], [1, 3, 2, 4], [2, 1, 3, 3.0]]),
    # complete, 2 raters × 6 images, weak agreement (720² combinations)
    "c26": np.array([[1, 3, 2, 5, 4, 2], [2, 2, 1, 4, 1, 3.0]]),
    # irregular: raters rated different subsets; pairs over 3–4 common images
    "i35": np.array([[1, 2, 3, 4, np.nan], [np.nan, 2, 1, 3, 3], [2, 1, 3, np.nan, 4.0]]),
    # irregular with a rater constant on a common set only under some permutations
    "i35c": np.array([[1, 1, 1, 5, np.nan], [1, 2, 3, 4, 5], [np.nan, 2, 2, 3, 1.0]]),
}


@pytest.fixture(scope="module")
def exact_p() -> dict:
    out = {}
    for bid, M in SMALL_EXACT.items():
        obs = ref_batch(M)["mean_rho"]
        null, _ = ref_null_stats(M, exact_permutations(M))
        out[bid] = float(exceed(null, obs).mean())
    return out


@pytest.mark.parametrize("chunk", [None, 997])
def test_default_p_values_match_the_exact_null_within_binomial_error(exact_p, chunk, monkeypatch):
    if chunk is not None:  # tiny memory chunks: many permutation blocks per batch, must not bias
        monkeypatch.setattr(consistency, "_CHUNK_ELEMENTS", chunk)
    n_perm = 20_000
    res = consistency.analyze_batches(_table(SMALL_EXACT), n_perm=n_perm, seed=7)
    got = res.batches.set_index("batch_id")["p_value"]
    assert 0.01 < min(exact_p.values()) and max(exact_p.values()) < 0.95  # informative, not at the edges
    for bid, p_true in exact_p.items():
        assert binomial_ok(got[bid], n_perm, p_true), (bid, got[bid], p_true)


def test_default_p_values_match_a_brute_force_monte_carlo_on_full_size_batches():
    rng = np.random.default_rng(11)
    mats = {f"w{k}": _heavy_ties(rng, signal=0.35) for k in range(4)}
    mats["irr"] = _heavy_ties(rng, 6, 9, signal=0.4)
    mats["irr"][rng.random((6, 9)) < 0.25] = np.nan
    mats["long12"] = _heavy_ties(rng, 3, 12, signal=0.3)  # > 10 images: permutations by sorted random keys
    mats["long60"] = _heavy_ties(rng, 2, 60, signal=0.15)  # > 48 images: ranks from scipy's rankdata
    n_perm = 20_000
    res = consistency.analyze_batches(_table(mats), n_perm=n_perm, seed=3)
    got = res.batches.set_index("batch_id")["p_value"]
    ref_rng = np.random.default_rng(99)
    informative = 0
    for bid, M in mats.items():
        obs = ref_batch(M)["mean_rho"]
        null, _ = ref_null_stats(M, mc_permutations(M, n_perm, ref_rng))
        p_ref = (1 + exceed(null, obs).sum()) / (1 + n_perm)
        informative += 0.01 < p_ref < 0.99
        assert two_mc_ok(got[bid], n_perm, p_ref, n_perm), (bid, got[bid], p_ref)
    assert informative >= 4


def test_pairwise_p_values_match_the_exact_null(exact_p):
    n_perm = 20_000
    mats = {k: SMALL_EXACT[k] for k in ("c44", "c26", "i35")}
    res = consistency.analyze_batches(_table(mats), n_perm=n_perm, method="pairwise", seed=5)
    pairs = res.pairs.set_index(["batch_id", "rater_a", "rater_b"])
    checked = 0
    for bid, M in mats.items():
        every = exact_permutations(M)
        _, null_pairs = ref_null_stats(M, every)
        for (a, b), null in null_pairs.items():
            rho, status, _ = ref_pair(M[a], M[b])
            row = pairs.loc[(bid, f"{bid}-r{a}", f"{bid}-r{b}")]
            assert row["status"] == status
            if status != "ok":
                continue
            p_true = float(exceed(null, rho).mean())
            assert binomial_ok(row["p_value"], n_perm, p_true), (bid, a, b, row["p_value"], p_true)
            checked += 1
    assert checked >= 8


# --- Kendall's W ----------------------------------------------------------------------------------


def test_kendall_w_hand_computed_textbook_table():
    # Three judges rank four items; judge C ties items 1 and 2 (ranks 1.5, 1.5; T_C = 2³ − 2 = 6).
    # Rank sums R_i = 3.5, 6.5, 8, 12; mean m(n+1)/2 = 7.5; S = 16 + 1 + 0.25 + 20.25 = 37.5.
    # W = 12·37.5 / (3²(4³ − 4) − 3·6) = 450 / 522 = 25/29 (without the correction: 450/540).
    M = np.array([[1, 2, 3, 4], [1, 3, 2, 4], [1, 1, 3, 4.0]])
    assert ref_kendall_w(M) == pytest.approx(25 / 29, abs=1e-15)
    res = consistency.analyze_batches(_table({"T": M}), n_perm=50, method="kendall-w")
    assert res.batches["kendall_w"].iloc[0] == pytest.approx(25 / 29, abs=1e-12)
    assert res.batches["statistic"].iloc[0] == pytest.approx(25 / 29, abs=1e-12)


def test_kendall_w_equals_reference_and_its_p_value_the_exact_null(varied):
    res = consistency.analyze_batches(_table(varied), n_perm=100, method="kendall-w", seed=4)
    batches = res.batches.set_index("batch_id")
    n_checked = 0
    outside = 0
    for bid, M in varied.items():
        block = M[:, ~np.isnan(M).any(0)]
        outside += int((~np.isnan(M[:, np.isnan(M).any(0)])).sum())
        row = batches.loc[bid]
        if M.shape[0] >= 2 and block.shape[1] >= 3 and (np.ptp(block, axis=1) > 0).sum() >= 2:
            assert row["status"] == "tested", bid
            assert abs(row["kendall_w"] - ref_kendall_w(M)) <= 1e-12, bid
            n_checked += 1
        else:
            assert row["status"] != "tested" and np.isnan(row["p_value"]), bid
    assert n_checked >= 14
    assert res.summary["n_ratings_outside_complete_block"] == outside

    # the p-value: permutations of each rater's scores in the block; W* ≥ W ⇔ S* ≥ S
    n_perm = 20_000
    small = {"c44": SMALL_EXACT["c44"], "c26": SMALL_EXACT["c26"]}
    got = consistency.analyze_batches(_table(small), n_perm=n_perm, method="kendall-w", seed=8)
    got = got.batches.set_index("batch_id")["p_value"]
    for bid, M in small.items():
        every = exact_permutations(M)
        w_obs = ref_kendall_w(M)
        ranks = _rank_rows(every)
        m, n = M.shape
        S = ((ranks.sum(1) - m * (n + 1) / 2) ** 2).sum(-1)
        T = sum(float(((c**3) - c).sum()) for c in (np.unique(row, return_counts=True)[1] for row in M))
        w_null = 12 * S / (m**2 * (n**3 - n) - m * T)
        p_true = float((w_null >= w_obs - 1e-12).mean())
        assert binomial_ok(got[bid], n_perm, p_true), (bid, got[bid], p_true)


# --- input forms ---------------------------------------------------------------------------------


def test_missing_scores_are_counted_and_behave_like_unrated_cells():
    rng = np.random.default_rng(5)
    mats = {f"b{k}": _heavy_ties(rng, signal=0.8) for k in range(4)}
    df = _table(mats)
    holes = rng.choice(len(df), size=9, replace=False)
    with_nan = df.copy()
    with_nan.loc[holes, "score"] = np.nan
    res_nan = consistency.analyze_batches(with_nan, n_perm=500, seed=3)
    res_drop = consistency.analyze_batches(df.drop(index=holes), n_perm=500, seed=3)
    assert res_nan.summary["n_ratings_missing_score"] == 9
    assert res_nan.summary["n_ratings"] == len(df)
    cols = ["batch_id", "status", "mean_rho", "n_pairs_valid", "p_value"]
    pd.testing.assert_frame_equal(res_nan.batches[cols], res_drop.batches[cols])
    for bid, (raters, M) in _matrices(with_nan).items():
        row = res_nan.batches.set_index("batch_id").loc[bid]
        assert abs(row["mean_rho"] - ref_batch(M)["mean_rho"]) <= 1e-12


def test_a_batch_whose_scores_are_all_missing_is_reported_not_dropped():
    df = _table({"a": _heavy_ties(np.random.default_rng(1), 3, 5), "b": np.full((3, 4), 2.0)})
    df.loc[df["batch_id"] == "b", "score"] = np.nan
    res = consistency.analyze_batches(df, n_perm=100)
    row = res.batches.set_index("batch_id").loc["b"]
    assert row["status"] in consistency.DEGENERATE_KINDS and not row["significant"]
    assert res.summary["n_batches"] == 2 and res.summary["n_ratings_missing_score"] == 12
    assert sum(res.summary["degenerate"].values()) == 1


@pytest.mark.parametrize("form", ["int", "categorical", "categorical_unused", "mixed_rater_ints"])
def test_id_dtypes_do_not_change_the_results(varied, form):
    base = _table(varied)
    names = list(varied)
    other = base.copy()
    if form == "int":
        other["batch_id"] = other["batch_id"].map({n: 1000 + k for k, n in enumerate(names)})
        other["rater_id"] = pd.factorize(other["rater_id"])[0] + 7
        other["image_id"] = pd.factorize(other["image_id"])[0]
    elif form == "categorical":
        for col in ("batch_id", "rater_id", "image_id"):
            other[col] = other[col].astype("category")
    elif form == "categorical_unused":
        other["batch_id"] = pd.Categorical(other["batch_id"], categories=[*names, "never-used"])
    else:
        codes = pd.factorize(other["rater_id"])[0]
        other["rater_id"] = pd.Series([int(c) if c % 2 else f"s{c}" for c in codes], dtype=object)
    a = consistency.analyze_batches(base, n_perm=200, seed=9)
    b = consistency.analyze_batches(other, n_perm=200, seed=9)
    assert b.summary["n_batches"] == len(varied)  # an unused category is not a batch
    to_name = dict(zip(b.batches["batch_id"], base.groupby(other["batch_id"].astype(str), sort=False)["batch_id"].first()
                       .reindex(b.batches["batch_id"]).to_numpy()))
    bb = b.batches.assign(batch_id=b.batches["batch_id"].map(to_name)).set_index("batch_id").loc[a.batches["batch_id"]]
    for col in ("status", "n_pairs_valid", "n_pairs_constant", "n_pairs_too_few_common"):
        assert (bb[col].to_numpy() == a.batches[col].to_numpy()).all(), col
    np.testing.assert_allclose(bb["mean_rho"].to_numpy(), a.batches["mean_rho"].to_numpy(), rtol=0, atol=1e-12)


# --- determinism -----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["batch-mean-spearman", "pairwise", "kendall-w"])
def test_seeded_and_independent_of_row_order(varied, method):
    df = _table(varied)
    a = consistency.analyze_batches(df, n_perm=300, seed=12, method=method)
    again = consistency.analyze_batches(df, n_perm=300, seed=12, method=method)
    pd.testing.assert_frame_equal(a.batches, again.batches)
    shuffled = df.sample(frac=1.0, random_state=3)
    b = consistency.analyze_batches(shuffled, n_perm=300, seed=12, method=method)
    pd.testing.assert_frame_equal(a.batches, b.batches)
    key = ["batch_id", "rater_a", "rater_b"]
    pd.testing.assert_frame_equal(a.pairs.sort_values(key, ignore_index=True), b.pairs.sort_values(key, ignore_index=True))
    other_seed = consistency.analyze_batches(df, n_perm=300, seed=13, method=method)
    unit = "pairs" if method == "pairwise" else "batches"
    p_a, p_b = getattr(a, unit)["p_value"].dropna(), getattr(other_seed, unit)["p_value"].dropna()
    assert len(p_a) == len(p_b) > 10 and not np.array_equal(p_a.to_numpy(), p_b.to_numpy())


# --- human consistency: a hand-computed example --------------------------------------------------

# test images t1–t4, train images r1, r2; three workers.
HUMAN_RATINGS = pd.DataFrame(
    [("t1", "w1", 1), ("t1", "w2", 2), ("t1", "w3", 1),
     ("t2", "w1", 2), ("t2", "w2", 2), ("t2", "w3", 3),
     ("t3", "w1", 3), ("t3", "w2", 5), ("t3", "w3", 4),
     ("t4", "w1", 5), ("t4", "w2", 4),
     ("r1", "w1", 3), ("r1", "w3", 2),
     ("r2", "w2", 4)], columns=["image_id", "rater_id", "score"])
HUMAN_IMAGES = pd.DataFrame({"image_id": ["t1", "t2", "t3", "t4", "r1", "r2"],
                             "split": ["test"] * 4 + ["train"] * 2})
# own rating included: means t1 4/3, t2 7/3, t3 4, t4 9/2.
#   w1 (1,2,3,5) is in the means' order: ρ = 1.   w3 (1,3,4) on t1–t3: ρ = 1.
#   w2 (2,2,5,4): ranks (1.5,1.5,4,3) vs (1,2,3,4); centred (−1,−1,1.5,0.5) and (−1.5,−0.5,0.5,1.5):
#   dot 3.5, norms² 4.5 and 5 → ρ = 3.5/√22.5.
# leave-one-out: w1 against (1.5, 2.5, 4.5, 4): ranks (1,2,3,4) vs (1,2,4,3) → ρ = 1 − 6·2/60 = 0.8;
#   w2 against (1, 2.5, 3.5, 5): ρ = 3.5/√22.5 again; w3 against (1.5, 2, 4): ρ = 1.
W2 = 3.5 / math.sqrt(22.5)


@pytest.mark.parametrize("loo, expected", [(False, {"w1": 1.0, "w2": W2, "w3": 1.0}),
                                           (True, {"w1": 0.8, "w2": W2, "w3": 1.0})])
def test_worker_rho_hand_computed(loo, expected):
    table = human.worker_table(HUMAN_RATINGS, HUMAN_IMAGES, leave_one_out=loo).set_index("rater_id")
    for w, rho in expected.items():
        assert table.loc[w, "rho"] == pytest.approx(rho, abs=1e-12)
        assert table.loc[w, "rho_status"] == "ok"
    assert table["n_scope"].to_dict() == {"w1": 4, "w2": 4, "w3": 3}
    assert table["n_images"].to_dict() == {"w1": 5, "w2": 5, "w3": 4}  # counted over all splits


def test_threshold_summary_hand_computed_for_both_count_scopes():
    all_scope = human.worker_table(HUMAN_RATINGS, HUMAN_IMAGES)
    summ = human.threshold_summary(all_scope, (0, 3, 4), n_boot=0).set_index("min_images")
    assert summ["n_workers"].to_dict() == {0: 3, 3: 3, 4: 2}
    assert summ.loc[0, "mean_rho"] == pytest.approx((2 + W2) / 3, abs=1e-12)
    assert summ.loc[4, "mean_rho"] == pytest.approx((1 + W2) / 2, abs=1e-12)
    test_only = human.worker_table(HUMAN_RATINGS, HUMAN_IMAGES, count_scope="scope")
    assert test_only.set_index("rater_id")["n_images"].to_dict() == {"w1": 4, "w2": 4, "w3": 3}
    summ = human.threshold_summary(test_only, (0, 3, 4), n_boot=0).set_index("min_images")
    assert summ["n_workers"].to_dict() == {0: 3, 3: 2, 4: 0}
    assert summ.loc[3, "mean_rho"] == pytest.approx((1 + W2) / 2, abs=1e-12)
    assert np.isnan(summ.loc[4, "mean_rho"])
    # scope "all": ρ over every image each worker rated (w1 adds r1: mean 2.5 against its 3)
    everything = human.worker_table(HUMAN_RATINGS, HUMAN_IMAGES, scope="all").set_index("rater_id")
    means = HUMAN_RATINGS.groupby("image_id")["score"].mean()
    for w, part in HUMAN_RATINGS.groupby("rater_id"):
        ref = stats.spearmanr(part["score"], means.loc[part["image_id"]]).statistic
        assert everything.loc[w, "rho"] == pytest.approx(ref, abs=1e-12)


# --- Krippendorff's α ------------------------------------------------------------------------------

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", example C: 4 observers,
# 12 units, missing values. Published: nominal .743, ordinal .815, interval .849, ratio .797.
KRIPP_C = np.array([
    [1, 2, 3, 3, 2, 1, 4, 1, 2, np.nan, np.nan, np.nan],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, np.nan, 3],
    [np.nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, np.nan],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, np.nan],
])


def _kripp_table(data: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame([(f"u{u}", f"o{o}", data[o, u]) for o in range(data.shape[0]) for u in range(data.shape[1])
                         if not np.isnan(data[o, u])], columns=["image_id", "rater_id", "score"])


@pytest.mark.parametrize("level, published", [("ordinal", 0.815), ("interval", 0.849)])
def test_krippendorff_alpha_published_example(level, published):
    got = reliability.krippendorff_alpha(_kripp_table(KRIPP_C), level=level, n_boot=0)
    assert round(got["alpha"], 3) == published
    assert got["n_pairable_images"] == 11 and got["n_images"] == 12  # unit 12 has one value


@pytest.mark.parametrize("level", ["ordinal", "interval"])
def test_krippendorff_alpha_equals_the_package_on_reliability_data(level):
    import krippendorff

    rng = np.random.default_rng(17)
    data = np.clip(np.rint(3 + rng.normal(size=40) + rng.normal(0, 1, (25, 40))), 1, 5)
    data[rng.random(data.shape) < 0.8] = np.nan  # sparse: ~5 of 25 raters per image
    direct = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
    got = reliability.krippendorff_alpha(_kripp_table(data), level=level, n_boot=0)
    assert got["alpha"] == pytest.approx(direct, abs=1e-12)


def test_rater_reliability_p_values_match_the_exact_null():
    rng = np.random.default_rng(23)
    M = _heavy_ties(rng, 4, 6, signal=0.6)
    ratings = _table({"b": M})
    n_perm = 20_000
    table = reliability.rater_reliability(ratings, n_perm=n_perm, seed=2).set_index("rater_id")
    perms = np.array(list(itertools.permutations(range(6))))
    checked = 0
    for a in range(4):
        others = np.delete(M, a, axis=0).mean(0)
        row = table.loc[f"b-r{a}"]
        if np.ptp(M[a]) == 0 or np.ptp(others) == 0:
            assert row["status"] != "tested"
            continue
        rho = stats.spearmanr(M[a], others).statistic
        assert row["rho"] == pytest.approx(rho, abs=1e-12)
        null = np.array([stats.spearmanr(M[a][pi], others).statistic for pi in perms])
        p_true = float((null >= rho - 1e-9).mean())
        assert binomial_ok(row["p_value"], n_perm, p_true), (a, row["p_value"], p_true)
        checked += 1
    assert checked >= 3
    tested = table["status"] == "tested"
    reject, adj, _, _ = multipletests(table.loc[tested, "p_value"], alpha=0.05, method="fdr_bh")
    np.testing.assert_allclose(table.loc[tested, "p_adjusted"].to_numpy(), adj, atol=1e-15)


@pytest.mark.parametrize("bad", [np.inf, -np.inf, "inf"])
def test_an_infinite_score_is_an_input_error_not_a_missing_one(bad):
    from aadb_toolkit.errors import InputError

    df = _table({"a": np.array([[1, 2, 3, 4.0], [2, 1, 4, 3]])}).astype({"score": object})
    df.loc[5, "score"] = bad
    with pytest.raises(InputError, match="score") as err:
        consistency.analyze_batches(df, n_perm=10)
    assert err.value.row == 5 and err.value.field == "score"


def test_reliability_is_seeded_and_independent_of_row_order():
    rng = np.random.default_rng(31)
    df = _table({f"b{k}": _heavy_ties(rng, 5, 8, signal=0.7) for k in range(3)},
                rater_key=lambda b, r: f"w{(b + r) % 7}")  # raters shared across batches
    shuffled = df.sample(frac=1.0, random_state=1).reset_index(drop=True)
    a = reliability.rater_reliability(df, n_perm=500, seed=4)
    b = reliability.rater_reliability(shuffled, n_perm=500, seed=4)
    pd.testing.assert_frame_equal(a, b)
    for level in reliability.LEVELS:
        ka = reliability.krippendorff_alpha(df, level=level, n_boot=50, seed=4)
        kb = reliability.krippendorff_alpha(shuffled, level=level, n_boot=50, seed=4)
        assert ka["alpha"] == pytest.approx(kb["alpha"], abs=1e-12)
        assert (ka["ci_low"], ka["ci_high"]) == pytest.approx((kb["ci_low"], kb["ci_high"]), abs=1e-12)

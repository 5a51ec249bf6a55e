"""Batch-level rater-consistency analysis (paper §3, docs/consistency.md).

Within each batch (AMT HIT), every pair of raters is compared by Spearman's ρ over the images
both rated; the batch statistic is the mean pairwise ρ; its one-sided p-value comes from a
permutation test (each rater's scores shuffled independently within the batch); and the
Benjamini–Hochberg procedure (``_multitest``, equal to statsmodels' ``fdr_bh``) controls the false
discovery rate across batches.
Options: per-pair tests with BH across all pairs, and Kendall's W with a tie correction.

Speed: average ranks are computed once (the ranks of permuted scores are the permuted ranks);
complete batches of the same shape are processed together; a permutation of n ≤ 10 images is one
row of each of two small half tables (``_ranks.permutation_halves``), drawn exactly uniformly from
one seeded generator in memory-bounded chunks whose batches share the draw, each batch relabelling
its raters' images by its own uniform permutation (see :class:`_Draw`); the default statistic's
shuffled sums are built by lookups of lane codes (two positions of two raters at once) in per-batch
tables.
Batches whose raters rated different images take an exact, slower path.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from . import __version__, _atomic, paper
from ._paths import input_folders
from ._multitest import benjamini_hochberg
from ._numbers import MAX_RESAMPLES, check_count, check_seed
from ._ranks import (CODE_LANES, MIN_ITEMS_FOR_RHO, PERM_TABLE_MAX_N, centered_ranks, code_base,
                     draw_half_indices, draw_permutations, lane_code_tables, packed_permutations,
                     scratch, unpack_permutations)
from ._csvcells import table_csv
from ._registry import lookup
from .data import RATING_KEYS, AADBData, Provenance, check_ratings, factorize_ids, provenance_fields
from .errors import InputError

DEFAULT_METHOD = "batch-mean-spearman"
DEFAULT_N_PERM = 10_000
#: A pair of raters needs at least this many common images for ρ to be tested.
MIN_COMMON_IMAGES = MIN_ITEMS_FOR_RHO
#: Why a batch was not tested (docs/consistency.md: counted and reported, never dropped).
DEGENERATE_KINDS: tuple[str, ...] = ("too_few_raters", "too_few_common_images", "all_pairs_constant")
#: Why a pair of raters was excluded.
EXCLUDED_PAIR_KINDS: tuple[str, ...] = ("constant_rater", "too_few_common_images")

_CHUNK_ELEMENTS = 1 << 22  # permuted values held at once (float32/int32: ~16 MB per array)
_CHUNK_PERMS = 1 << 16  # table-drawn permutations per chunk (1 MB of 16-byte code rows)
_LOOKUP_BLOCK = 4096  # permutations per block of the lookup loop (its three buffers: 256 KB each)
_CHUNK_MAX_BATCHES = 32  # batches per chunk (each has an 80 KB lookup table per pair of raters)
_EXACT_TOL = 1e-12  # relative tolerance for "stat* ≥ stat" in float64 (absorbs rounding only)


@dataclass
class ConsistencyResult:
    """Per-batch table, per-pair table and JSON-ready summary of one consistency analysis."""

    batches: pd.DataFrame
    pairs: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)


# --- input ------------------------------------------------------------------------------------
@dataclass
class _Codes:
    batch: np.ndarray
    rater: np.ndarray
    image: np.ndarray
    score: np.ndarray
    batch_ids: np.ndarray
    rater_ids: np.ndarray
    n_missing_score: int


def _codes(ratings: pd.DataFrame, file: str | None) -> _Codes:
    score = check_ratings(ratings, columns=RATING_KEYS, missing_scores="keep", ids_as_text=False,
                          file=file)["score"].to_numpy()
    usable = ~np.isnan(score)
    # sorted codes: each batch's raters and images are laid out by id, not by row order, so the
    # same ratings in any row order (or with missing-score rows) draw the same permutations
    b, batch_ids = factorize_ids(ratings["batch_id"], sort=True)
    r, rater_ids = factorize_ids(ratings["rater_id"], sort=True)
    i, _ = factorize_ids(ratings["image_id"], sort=True)
    b, r, i = b[usable], r[usable], i[usable]
    return _Codes(batch=b, rater=r, image=i, score=score[usable], batch_ids=batch_ids, rater_ids=rater_ids,
                  n_missing_score=int((~usable).sum()))


@dataclass
class _Layout:
    """Each usable rating's place inside its batch: local rater and image indices, and per-batch counts."""

    local_rater: np.ndarray
    local_image: np.ndarray
    n_raters: np.ndarray
    n_images: np.ndarray
    n_ratings: np.ndarray
    rater_codes: list[np.ndarray]  # rater code of each local rater, per batch (only for batches with ratings)


def _local_index(b: np.ndarray, key: np.ndarray, n_batches: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Dense index of ``key`` within each batch (sorted by key), count of distinct keys per batch,
    and the sorted distinct (batch, key) pairs."""
    order = np.lexsort((key, b))
    bs, ks = b[order], key[order]
    new = np.ones(len(order), bool)
    new[1:] = (bs[1:] != bs[:-1]) | (ks[1:] != ks[:-1])
    gid = np.cumsum(new) - 1
    n_distinct = np.bincount(bs[new], minlength=n_batches)
    first = np.concatenate([[0], np.cumsum(n_distinct)[:-1]])
    local = np.empty(len(order), np.int64)
    local[order] = gid - first[bs]
    return local, n_distinct, bs[new], ks[new]


def _layout(b: np.ndarray, r: np.ndarray, i: np.ndarray, n_batches: int) -> _Layout:
    local_r, n_r, pair_b, pair_r = _local_index(b, r, n_batches)
    local_i, n_i, _, _ = _local_index(b, i, n_batches)
    starts = np.concatenate([[0], np.cumsum(n_r)])
    rater_codes = [pair_r[starts[k]:starts[k + 1]] for k in range(n_batches)]
    return _Layout(local_r, local_i, n_r, n_i, np.bincount(b, minlength=n_batches), rater_codes)


# --- complete batches (every rater rated every image): vectorised -----------------------------
def _pair_index(n_raters: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(n_raters, 1)


@dataclass
class _Ranked:
    """G complete batches of shape (R raters, N images) as centred ranks, with everything the
    permutation kernels compare against (see :func:`_ranked`)."""

    scores: np.ndarray
    c: np.ndarray           # (G, R, N) int64 centred ranks; a constant rater's vector is all zeros
    valid: np.ndarray       # (G, R) rater not constant
    D: np.ndarray           # (G, pairs) exact integer dot products
    rho: np.ndarray
    pair_ok: np.ndarray
    mean_rho: np.ndarray
    iu: np.ndarray
    ju: np.ndarray


def _ranked(scores: np.ndarray) -> _Ranked:
    G, R, N = scores.shape
    iu, ju = _pair_index(R)
    c = centered_ranks(scores)
    norm2 = (c * c).sum(-1)
    valid = norm2 > 0
    D = np.einsum("gin,gjn->gij", c, c)[:, iu, ju]
    pair_ok = valid[:, iu] & valid[:, ju]
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(pair_ok, D / np.sqrt(norm2[:, iu] * norm2[:, ju]), np.nan)
    n_ok = pair_ok.sum(1)
    with np.errstate(invalid="ignore"):
        mean_rho = np.where(n_ok > 0, np.nansum(np.nan_to_num(rho), axis=1) / np.maximum(n_ok, 1), np.nan)
    return _Ranked(scores, c, valid, D, rho, pair_ok, mean_rho, iu, ju)


def _mean_rho_statistic(rk: _Ranked) -> np.ndarray:
    return rk.mean_rho


def _kendall_w_statistic(rk: _Ranked) -> np.ndarray:
    """W = 12 S / (m²(N³−N) − m ΣT), S = Σ_i (R_i − R̄)² = ‖Σ_j c_j‖² / 4 over the m non-constant raters."""
    N = rk.scores.shape[2]
    k = rk.valid.sum(1)
    ties = _tie_term(rk.scores) * rk.valid
    ssum = rk.c.sum(1)
    S = (ssum * ssum).sum(-1) / 4.0
    denom = k**2 * (N**3 - N) - k * ties.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(k >= 2, 12.0 * S / denom, np.nan)


@dataclass
class _Draw:
    """One chunk of permutations of raters 1…R−1 (rater 0 stays fixed: ρ is invariant) for the
    batches ``sel`` of a group of N-image batches.

    N ≤ 10: ``halves``, two arrays of half-table rows (:func:`~aadb_toolkit._ranks.permutation_halves`),
    either (b, R−1, p), one draw per batch, or (1, R−1, p), one draw **shared** by the chunk's
    batches, with ``relabel`` (b, R−1, N): batch b's rater j is shuffled by ``relabel[b, j] ∘ τ``
    (position t takes item ``relabel[b, j, τ(t)]``) for each shared shuffle τ. For every batch
    these are still independent, uniform shuffles of each rater, so every test is exact; only the
    Monte-Carlo errors of the chunk's batches are no longer independent (docs/consistency.md).
    Otherwise ``index``, (b, R−1, p, N) permutations."""

    sel: np.ndarray
    n: int
    halves: tuple[np.ndarray, np.ndarray] | None = None
    index: np.ndarray | None = None
    relabel: np.ndarray | None = None

    def perm(self) -> np.ndarray:
        """All permutations of the chunk, (b, R−1, p, N)."""
        if self.halves is None:
            return self.index
        return self._relabelled(unpack_permutations(packed_permutations(*self.halves, self.n), self.n))

    def perm_at(self, b: np.ndarray, p: np.ndarray) -> np.ndarray:
        """The permutations of raters 1…R−1 for the (batch, permutation) pairs ``(b[k], p[k])``, (k, R−1, N)."""
        if self.halves is None:
            return self.index[b, :, p, :]
        i_a, i_b = self.halves
        rows = np.zeros_like(b) if self.relabel is not None else b
        shared = unpack_permutations(packed_permutations(i_a[rows, :, p], i_b[rows, :, p], self.n), self.n)
        if self.relabel is None:
            return shared
        return np.take_along_axis(self.relabel[b], shared.astype(np.intp), -1)

    def _relabelled(self, shuffles: np.ndarray) -> np.ndarray:
        if self.relabel is None:
            return shuffles
        return np.take_along_axis(self.relabel[:, :, None, :], shuffles.astype(np.intp), -1)


def _prepare_mean_rho(rk: _Ranked) -> dict[str, np.ndarray]:
    """Unit-norm rank vectors in float32 and the observed statistics, once per group."""
    R, N = rk.c.shape[1:]
    w = np.where(rk.valid, 1.0 / np.sqrt(np.where(rk.valid, (rk.c * rk.c).sum(-1), 1)), 0.0)
    W = w[:, rk.iu] * w[:, rk.ju]
    z32 = (rk.c * w[..., None]).astype(np.float32)
    zs = z32.sum(1)
    return {"W": W, "stat_exact": (W * rk.D).sum(1),  # Σ over pairs of ρ_ij (constant raters weigh 0)
            "z32": z32, "obs32": np.einsum("gn,gn->g", zs, zs),
            "window": np.float32(1e-4 * max(1.0, R * R * N / 50.0))}


def _permuted_vectors(x: np.ndarray, d: _Draw) -> np.ndarray:
    """The permuted vectors of raters 1…R−1 of every batch, (batches, R−1, perms, N), gathered by
    flat indices into ``x`` (batches, R, N)."""
    perm = d.perm()
    b, R, N = x.shape
    base = ((np.arange(b)[:, None] * R + np.arange(1, R)[None, :]) * N).astype(np.int32)
    return x.reshape(-1).take(np.add(perm, base[:, :, None, None], dtype=np.int32))


def _permuted_sum(x: np.ndarray, d: _Draw) -> np.ndarray:
    """Σ over raters of the permuted rank vectors (rater 0 unpermuted), shape (batches, perms, N)."""
    g = _permuted_vectors(x, d)
    acc = g[:, 0] + x[:, 0, None, :]
    for j in range(1, x.shape[1] - 1):
        acc += g[:, j]
    return acc


def _permuted_square_norms(z: np.ndarray, d: _Draw, work: dict | None = None) -> np.ndarray:
    """‖Σ_j z*_j‖² for every permutation of the chunk, (batches, perms), in float32.

    Half-table draws (N ≤ 10) go through lane codes (:func:`~aadb_toolkit._ranks.lane_code_tables`):
    two 16-byte row gathers give a permutation's codes, one per pair of positions; two raters'
    codes combine as ``c₁ + B²·c₂``, so one lookup in a per-batch table of complex numbers (both
    raters' values at both positions, real and imaginary) moves four values at once. Rater 0's
    fixed values are added before squaring. Other draws sum the gathered vectors."""
    if d.halves is None:
        acc = _permuted_sum(z, d)
        return np.einsum("bpn,bpn->bp", acc, acc)
    b, R, N = z.shape
    n_p = d.halves[0].shape[2]
    work = {} if work is None else work
    words = _pair_code_words(d, R - 1, work)
    groups = words.shape[1]
    if d.relabel is not None:  # a shared draw: batch k's tables hold its raters' values relabelled
        z = np.concatenate([z[:, :1], np.take_along_axis(z[:, 1:], d.relabel.astype(np.intp), -1)], axis=1)
    fixed = np.zeros((b, 2 * CODE_LANES), np.float32)
    fixed[:, :N] = z[:, 0]  # lane k holds positions 2k (real) and 2k+1 (imaginary), as floats 2k, 2k+1
    fixed = fixed.view(np.complex64)
    out = np.empty((b, n_p), np.float32)
    step = min(n_p, _LOOKUP_BLOCK)
    index = scratch(work, "index", (step, CODE_LANES), np.intp)
    acc = scratch(work, "acc", (step, CODE_LANES), np.complex64)
    vals = scratch(work, "vals", (step, CODE_LANES), np.complex64)
    ones = np.ones(2 * CODE_LANES, np.float32)
    single = _lane_values(z, groups)
    for k in range(b):
        luts = _pair_luts(single[k], work)  # built just before use, so it is still in the cache
        codes = words[k if words.shape[0] > 1 else 0]
        for p0 in range(0, n_p, step):  # blocks small enough for the buffers to stay in the L2 cache
            m = min(step, n_p - p0)
            a, v, ix = acc[:m], vals[:m], index[:m]
            for g in range(groups):
                np.copyto(ix, codes[g, p0:p0 + m].view(np.uint16), casting="unsafe")
                luts[g].take(ix, mode="clip", out=a if g == 0 else v)
                if g:
                    a += v
            a += fixed[k]
            flat = a.view(np.float32)
            np.multiply(flat, flat, out=flat)
            np.matmul(flat, ones, out=out[k, p0:p0 + m])
    return out


def _pair_code_words(d: _Draw, n_raters: int, work: dict) -> np.ndarray:
    """Lane codes of the chunk's permutations, raters taken two at a time (``c₁ + B²·c₂``), as
    (batches, groups, perms, 2) uint64 words (8 uint16 lanes each)."""
    code_a, code_b = lane_code_tables(d.n)
    i_a, i_b = d.halves
    rows = scratch(work, "rows", (i_a.size,), np.complex128)  # 16-byte rows
    other = scratch(work, "other", (i_a.size,), np.complex128)
    code_a.take(i_a.reshape(-1), mode="clip", out=rows)
    code_b.take(i_b.reshape(-1), mode="clip", out=other)
    rows = rows.view(np.uint64)
    rows += other.view(np.uint64)
    rows = rows.reshape(i_a.shape + (2,))
    first = rows[:, 0::2]
    second = rows[:, 1::2]
    B = code_base(d.n)
    second *= np.uint64(B * B)  # no lane overflows: codes < B², so c₁ + B²·c₂ < B⁴ + B² ≤ 10,100
    first[:, :second.shape[1]] += second
    if n_raters % 2:  # the last rater has no partner: its non-position lanes move past the pair codes too
        phantom = np.zeros(CODE_LANES, np.uint16)
        phantom[(d.n + 1) // 2:] = B**4
        first[:, -1] += phantom.view(np.uint64)
    return first


def _lane_values(z: np.ndarray, groups: int) -> np.ndarray:
    """Each permuted rater's values at the two positions of every lane code, (batches, 2·groups, B²)
    complex: code ``c`` holds the value of the image at position ``c mod B`` (real) and at ``c div B``
    (imaginary); raters past R − 1 (the partner of an unpaired last rater) are zeros."""
    b, R, N = z.shape
    B = code_base(N)
    zp = np.zeros((b, 2 * groups, B), np.float32)
    zp[:, :R - 1, :N] = z[:, 1:]
    code = np.arange(B * B)
    single = np.empty((b, 2 * groups, B * B), np.complex64)
    single.real = zp[..., code % B]
    single.imag = zp[..., code // B]
    return single


def _pair_luts(single: np.ndarray, work: dict) -> np.ndarray:
    """For one batch (``single``: its :func:`_lane_values`, (2·groups, B²)), the complex lookup table
    of each group of two raters (1–2, 3–4, …) for a combined lane code: entry ``c₁ + B²·c₂`` = z₁ at
    (c₁ mod B, c₁ div B) + z₂ at (c₂ mod B, c₂ div B), the first position real and the second
    imaginary; zeros past the codes (the non-position lanes). The tables live in ``work`` (reused:
    a fresh array of this size would cost page faults on every batch)."""
    groups, B2 = single.shape[0] // 2, single.shape[1]
    size = B2 * B2 + B2 + 1
    if work.get("luts") is None or work["luts"].shape[0] != groups or work["luts"].shape[1] != size:
        work["luts"] = np.zeros((groups, size), np.complex64)  # the tail past B⁴ stays zero
    luts = work["luts"]
    pair = luts[:, :B2 * B2].reshape(groups, B2, B2)  # [c₂, c₁]
    np.add(single[0::2, None, :], single[1::2, :, None], out=pair)
    return luts


def _exceed_mean_rho(rk: _Ranked, prep: dict, d: _Draw, counts: np.ndarray, pair_counts: np.ndarray) -> None:
    """Mean pairwise ρ* ≥ ρ, in float32 within a window; near-ties decided exactly in integers."""
    ss = _permuted_square_norms(prep["z32"][d.sel], d, prep.setdefault("work", {}))
    diff = ss - prep["obs32"][d.sel, None]
    counts[d.sel] += (diff > prep["window"]).sum(1)
    cand_b, cand_p = np.nonzero(np.abs(diff) <= prep["window"])
    if len(cand_b):  # near-ties: decide exactly from integer dot products in float64
        cc = rk.c[d.sel][cand_b]
        permuted = np.empty_like(cc)
        permuted[:, 0] = cc[:, 0]
        permuted[:, 1:] = np.take_along_axis(cc[:, 1:], d.perm_at(cand_b, cand_p).astype(np.intp), -1)
        Dp = np.einsum("kin,kjn->kij", permuted, permuted)[:, rk.iu, rk.ju]
        st = (prep["W"][d.sel][cand_b] * Dp).sum(1)
        ref = prep["stat_exact"][d.sel][cand_b]
        hit = st >= ref - _EXACT_TOL * (1.0 + np.abs(ref))
        counts[d.sel] += np.bincount(cand_b[hit], minlength=len(d.sel))


def _prepare_integer(rk: _Ranked) -> dict[str, np.ndarray]:
    """Ranks as int32 and the observed ‖Σ_j c_j‖², once per group."""
    cs = rk.c.sum(1)
    return {"c32": rk.c.astype(np.int32), "obs_int": (cs * cs).sum(-1)}


def _exceed_kendall_w(rk: _Ranked, prep: dict, d: _Draw, counts: np.ndarray, pair_counts: np.ndarray) -> None:
    """W* ≥ W, as ‖Σ_j c*_j‖² ≥ ‖Σ_j c_j‖² in exact integers (the denominator is fixed)."""
    acc = _permuted_sum(prep["c32"][d.sel], d)
    ss = np.einsum("bpn,bpn->bp", acc.astype(np.int64), acc.astype(np.int64))
    counts[d.sel] += (ss >= prep["obs_int"][d.sel, None]).sum(1)


def _exceed_pairwise(rk: _Ranked, prep: dict, d: _Draw, counts: np.ndarray, pair_counts: np.ndarray) -> None:
    """Every pair's ρ* ≥ ρ from the same permuted vectors (exact integer compare)."""
    R = rk.c.shape[1]
    cc = prep["c32"][d.sel]
    g = _permuted_vectors(cc, d)
    vecs = [np.broadcast_to(cc[:, 0, None, :], g[:, 0].shape)] + [g[:, j] for j in range(R - 1)]
    for p, (a, bb) in enumerate(zip(rk.iu, rk.ju)):
        dots = np.einsum("bpn,bpn->bp", vecs[a].astype(np.int64), vecs[bb].astype(np.int64))
        pair_counts[d.sel, p] += (dots >= rk.D[d.sel, p, None]).sum(1)


def _chunk_shape(n_batches: int, n_permuted: int, N: int, n_perm: int, vectors: bool = True) -> tuple[int, int]:
    """Batches and permutations per chunk: about ``_CHUNK_PERMS`` permutations (drawn at once, then
    worked through batch by batch in the processor's cache) for table draws, ``_CHUNK_ELEMENTS``
    permuted values otherwise; the permutations of a batch are split into equal blocks. A table
    draw shared by the chunk's batches (``vectors=False``: the method never holds every batch's
    permuted vectors at once) is the budget alone, so the chunk takes up to ``_CHUNK_MAX_BATCHES``."""
    per_perm = n_permuted * (1 if N <= PERM_TABLE_MAX_N else N)
    budget = _CHUNK_PERMS if N <= PERM_TABLE_MAX_N else _CHUNK_ELEMENTS
    blocks = max(1, -(-n_perm * per_perm // budget))
    pb = -(-n_perm // blocks)
    if N <= PERM_TABLE_MAX_N and not vectors:
        return max(1, min(_CHUNK_MAX_BATCHES, n_batches)), pb
    return max(1, min(_CHUNK_MAX_BATCHES, budget // (per_perm * pb))), pb


def _complete_group(scores: np.ndarray, method: "Method", n_perm: int, rng: np.random.Generator,
                    progress: Any) -> dict[str, np.ndarray]:
    """Statistics and permutation exceedance counts for G complete batches of shape (R raters, N images)."""
    G, R, N = scores.shape
    rk = _ranked(scores)
    k = rk.valid.sum(1)
    testable = np.flatnonzero(k >= 2)
    counts = np.zeros(G, np.int64)
    pair_counts = np.zeros((G, len(rk.iu)), np.int64)
    if len(testable) and n_perm > 0:
        prep = method.prepare(rk)
        bc, pb = _chunk_shape(len(testable), R - 1, N, n_perm, method.vectors)
        work: dict = {}  # the draws' buffers, reused chunk after chunk
        # the chunks' offsets are generated one at a time: a list of them grew with n_perm
        for s, p0 in ((s, p) for s in range(0, len(testable), bc) for p in range(0, n_perm, pb)):
            sel = testable[s:s + bc]
            n_b, n_p = len(sel), min(pb, n_perm - p0)
            if N <= PERM_TABLE_MAX_N and not method.vectors:  # one draw for the chunk, raters relabelled
                halves = draw_half_indices(rng, (1, R - 1, n_p), N, work)
                d = _Draw(sel, N, halves=halves, relabel=draw_permutations(rng, (n_b, R - 1), N))
            elif N <= PERM_TABLE_MAX_N:  # a draw per batch (the chunk holds a few batches' vectors anyway)
                d = _Draw(sel, N, halves=draw_half_indices(rng, (n_b, R - 1, n_p), N, work))
            else:
                d = _Draw(sel, N, index=draw_permutations(rng, (n_b, R - 1, n_p), N))
            method.exceedances(rk, prep, d, counts, pair_counts)
            if progress is not None:
                progress.update(n_b * n_p)
    return {"rho": rk.rho, "pair_ok": rk.pair_ok, "mean_rho": rk.mean_rho, "statistic": method.statistic(rk),
            "counts": counts, "pair_counts": pair_counts, "testable": k >= 2}


def _tie_term(scores: np.ndarray) -> np.ndarray:
    """Σ over tie groups of (t³ − t) for each rater's scores (last axis), as used by Kendall's W."""
    eq = (scores[..., :, None] == scores[..., None, :]).sum(-1)  # size of each item's tie group
    return ((eq**3 - eq) / np.maximum(eq, 1)).sum(-1)  # each group of size t contributes t·(t³−t)/t


# --- irregular batches (raters rated different images): exact, slower path ------------------
def _irregular_batch(S: np.ndarray, n_perm: int, rng: np.random.Generator) -> dict[str, Any]:
    """Pairwise ρ over common images and permutation counts for one batch with missing cells (NaN).

    Each rater's scores are permuted among the images that rater rated; ranks are recomputed on
    each pair's common images. A permutation with no defined pair counts as an exceedance
    (conservative); so does an undefined ρ* in the pairwise test.
    """
    R, M = S.shape
    rated = ~np.isnan(S)
    iu, ju = _pair_index(R)
    commons, n_common, rho, status = _irregular_pair_rhos(S, rated, iu, ju)
    pair_ok = status == "ok"
    enough = n_common >= MIN_COMMON_IMAGES
    out: dict[str, Any] = {"rho": rho, "status": status, "n_common": n_common, "pair_ok": pair_ok,
                           "mean_rho": float(np.mean(rho[pair_ok])) if pair_ok.any() else math.nan,
                           "count": 0, "pair_counts": np.zeros(len(iu), np.int64)}
    out["degenerate"] = _irregular_degenerate(R, enough, pair_ok)
    if out["degenerate"] is not None or n_perm <= 0:
        return out
    stat = out["mean_rho"]
    own = [np.flatnonzero(rated[a]) for a in range(R)]
    block = max(1, min(n_perm, _CHUNK_ELEMENTS // max(1, R * M * 8)))
    for p0 in range(0, n_perm, block):
        n_p = min(block, n_perm - p0)
        Sp = _permute_within_raters(S, own, n_p, rng)
        rhos = _permuted_pair_rhos(Sp, iu, ju, commons, enough)
        used = rhos[:, enough]
        n_def = (~np.isnan(used)).sum(1)
        with np.errstate(invalid="ignore"):
            stat_p = np.where(n_def > 0, np.nansum(used, 1) / np.maximum(n_def, 1), np.nan)
        out["count"] += int(((stat_p >= stat - _EXACT_TOL * (1 + abs(stat))) | np.isnan(stat_p)).sum())
        ref = np.where(pair_ok, rho, np.inf)
        out["pair_counts"] += ((rhos >= ref - _EXACT_TOL * (1 + np.abs(np.nan_to_num(rho)))) | np.isnan(rhos)).sum(0)
    return out


def _irregular_pair_rhos(S: np.ndarray, rated: np.ndarray, iu: np.ndarray,
                         ju: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Each pair's common images, their number, the pair's ρ over them and its status
    ("ok", "too_few_common_images" or "constant_rater")."""
    commons = [np.flatnonzero(rated[a] & rated[b]) for a, b in zip(iu, ju)]
    n_common = np.array([len(x) for x in commons])
    rho = np.full(len(iu), np.nan)
    status = np.where(n_common >= MIN_COMMON_IMAGES, "ok", "too_few_common_images").astype(object)
    for p, (a, b) in enumerate(zip(iu, ju)):
        if n_common[p] >= MIN_COMMON_IMAGES:
            r_, _ = _rho_rows(S[a, commons[p]][None], S[b, commons[p]][None])
            rho[p] = r_[0]
            if np.isnan(r_[0]):
                status[p] = "constant_rater"
    return commons, n_common, rho, status


def _irregular_degenerate(R: int, enough: np.ndarray, pair_ok: np.ndarray) -> str | None:
    """Why a batch with missing cells has no test statistic, or None when it has one."""
    if R < 2:
        return "too_few_raters"
    if not enough.any():
        return "too_few_common_images"
    if not pair_ok.any():
        return "all_pairs_constant"
    return None


def _permute_within_raters(S: np.ndarray, own: list[np.ndarray], n_p: int, rng: np.random.Generator) -> np.ndarray:
    """``n_p`` copies of ``S`` (n_p, R, M) with each rater's scores shuffled among the images that rater rated."""
    R, M = S.shape
    Sp = np.full((n_p, R, M), np.nan)
    for a in range(R):
        perm = draw_permutations(rng, (n_p,), len(own[a]))
        Sp[:, a, own[a]] = S[a, own[a]][perm]
    return Sp


def _permuted_pair_rhos(Sp: np.ndarray, iu: np.ndarray, ju: np.ndarray, commons: list[np.ndarray],
                        enough: np.ndarray) -> np.ndarray:
    """ρ (n_p, pairs) of every pair with enough common images in each permuted copy (NaN elsewhere)."""
    rhos = np.full((Sp.shape[0], len(iu)), np.nan)
    cache: dict[tuple[int, bytes], tuple[np.ndarray, np.ndarray]] = {}

    def ranks(a: int, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        key = (a, cols.tobytes())  # pairs sharing a common set reuse the rater's ranks
        if key not in cache:
            cr = centered_ranks(Sp[:, a, cols])
            cache[key] = (cr, (cr * cr).sum(1))
        return cache[key]

    for p, (a, b) in enumerate(zip(iu, ju)):
        if enough[p]:
            (cx, nx), (cy, ny) = ranks(a, commons[p]), ranks(b, commons[p])
            with np.errstate(invalid="ignore", divide="ignore"):
                rhos[:, p] = np.where((nx > 0) & (ny > 0), (cx * cy).sum(1) / np.sqrt(nx * ny), np.nan)
    return rhos


def _rho_rows(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise Spearman ρ of two (P, n) arrays (NaN where a row is constant), and the dot products."""
    cx, cy = centered_ranks(x), centered_ranks(y)
    nx, ny = (cx * cx).sum(1), (cy * cy).sum(1)
    d = (cx * cy).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where((nx > 0) & (ny > 0), d / np.sqrt(nx * ny), np.nan)
    return r, d


# --- driver ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Method:
    """A consistency test, declared: what one test is (``unit``: a batch or a pair of raters, and
    what Benjamini–Hochberg runs across), its batch ``statistic`` (shown in ``statistic_column``
    besides ``mean_rho`` when it is another), whether it needs a complete block of images, and the
    permutation kernel (``prepare`` once per group of same-shape batches, then ``exceedances``)."""

    name: str
    description: str
    unit: str
    statistic: Callable[[_Ranked], np.ndarray]
    prepare: Callable[[_Ranked], dict]
    exceedances: Callable[..., None]
    statistic_column: str | None = None
    complete_block: bool = False
    vectors: bool = True  # the kernel holds every batch's permuted vectors of a chunk (sizes the chunk;
    # without, the chunk's batches share one draw of shuffles, each relabelling its raters: _Draw)


#: Test methods: name → declaration. Add a method by adding a row.
METHODS: dict[str, Method] = {m.name: m for m in (
    Method("batch-mean-spearman", "mean pairwise Spearman ρ per batch, permutation test, BH across batches",
           "batch", _mean_rho_statistic, _prepare_mean_rho, _exceed_mean_rho, vectors=False),
    Method("pairwise", "Spearman ρ per pair of raters, permutation test per pair, BH across all pairs",
           "pair", _mean_rho_statistic, _prepare_integer, _exceed_pairwise),
    Method("kendall-w", "Kendall's W (tie-corrected) per batch, permutation test, BH across batches",
           "batch", _kendall_w_statistic, _prepare_integer, _exceed_kendall_w, statistic_column="kendall_w",
           complete_block=True),
)}


@dataclass
class _Arranged:
    """The usable ratings of a test (for a complete-block method: only the block) laid out per batch."""

    b: np.ndarray
    r: np.ndarray
    i: np.ndarray
    score: np.ndarray
    lay: _Layout
    complete: np.ndarray
    n_outside_block: int


def _arrange(codes: _Codes, method: Method) -> _Arranged:
    n_batches = len(codes.batch_ids)
    b, r, i, score = codes.batch, codes.rater, codes.image, codes.score
    if not method.complete_block:
        lay = _layout(b, r, i, n_batches)
        return _Arranged(b, r, i, score, lay, lay.n_ratings == lay.n_raters * lay.n_images, 0)
    # keep the images every rater of the batch rated; a batch keeps its raters even when none is left
    lay0 = _layout(b, r, i, n_batches)
    _, inverse, counts = np.unique(b.astype(np.int64) * (int(i.max()) + 1) + i, return_inverse=True,
                                   return_counts=True)
    keep = counts[inverse] == lay0.n_raters[b]
    b, r, i, score = b[keep], r[keep], i[keep], score[keep]
    lay = _layout(b, r, i, n_batches)
    lay.n_raters = np.where(lay.n_ratings > 0, lay.n_raters, lay0.n_raters)
    lay.rater_codes = [lay.rater_codes[k] if lay.n_ratings[k] else lay0.rater_codes[k] for k in range(n_batches)]
    return _Arranged(b, r, i, score, lay, lay.n_ratings == lay.n_raters * lay.n_images, int((~keep).sum()))


def _empty_results(n_batches: int) -> dict[str, np.ndarray]:
    return {
        "mean_rho": np.full(n_batches, np.nan), "statistic": np.full(n_batches, np.nan),
        "count": np.zeros(n_batches, np.int64), "status": np.full(n_batches, "tested", dtype=object),
        "n_pairs": np.zeros(n_batches, np.int64), "n_pairs_valid": np.zeros(n_batches, np.int64),
        "n_pairs_constant": np.zeros(n_batches, np.int64), "n_pairs_too_few": np.zeros(n_batches, np.int64),
    }


def _test_complete(codes: _Codes, arr: _Arranged, method: Method, n_perm: int, rng: np.random.Generator,
                   bar: Any, res: dict, pair_frames: list) -> None:
    """Test the complete batches, grouped by shape (R raters, N images), vectorised per group."""
    lay, n_batches = arr.lay, len(codes.batch_ids)
    shapes: dict[tuple[int, int], list[int]] = {}
    for k in np.flatnonzero(arr.complete):
        shapes.setdefault((int(lay.n_raters[k]), int(lay.n_images[k])), []).append(k)
    order_rows = np.argsort(arr.b, kind="stable")
    row_bounds = np.concatenate([[0], np.cumsum(np.bincount(arr.b, minlength=n_batches))])
    per_pair = method.unit == "pair"
    for (R, N), members in sorted(shapes.items()):
        members = np.asarray(members)
        n_pairs = R * (R - 1) // 2
        res["n_pairs"][members] = n_pairs
        if R < 2 or N < MIN_COMMON_IMAGES:
            res["status"][members] = "too_few_raters" if R < 2 else "too_few_common_images"
            res["n_pairs_too_few"][members] = n_pairs
            if R >= 2:
                pair_frames.append(_pair_frame(codes, lay, members, R, np.full(len(members), N),
                                               np.full((len(members), n_pairs), np.nan),
                                               np.full((len(members), n_pairs), "too_few_common_images", dtype=object)))
            continue
        pos = np.full(n_batches, -1)
        pos[members] = np.arange(len(members))
        rows = np.concatenate([order_rows[row_bounds[k]:row_bounds[k + 1]] for k in members])
        S = np.full((len(members), R, N), np.nan)
        S[pos[arr.b[rows]], lay.local_rater[rows], lay.local_image[rows]] = arr.score[rows]
        g = _complete_group(S, method, n_perm, rng, bar)
        res["mean_rho"][members] = g["mean_rho"]
        res["count"][members] = g["counts"]
        res["n_pairs_valid"][members] = g["pair_ok"].sum(1)
        res["n_pairs_constant"][members] = n_pairs - g["pair_ok"].sum(1)
        res["status"][members[~g["testable"]]] = "all_pairs_constant"
        res["statistic"][members] = np.where(g["testable"], g["statistic"], np.nan)
        pstatus = np.where(g["pair_ok"], "ok", "constant_rater").astype(object)
        pair_frames.append(_pair_frame(codes, lay, members, R, np.full(len(members), N), g["rho"], pstatus,
                                       g["pair_counts"] if per_pair else None))


def _test_irregular(codes: _Codes, arr: _Arranged, method: Method, n_perm: int, rng: np.random.Generator,
                    bar: Any, res: dict, pair_frames: list) -> None:
    """Test the batches whose raters rated different images, one at a time (exact path)."""
    lay, n_batches = arr.lay, len(codes.batch_ids)
    order_rows = np.argsort(arr.b, kind="stable")
    row_bounds = np.concatenate([[0], np.cumsum(np.bincount(arr.b, minlength=n_batches))])
    for k in np.flatnonzero(~arr.complete):
        R, M = int(lay.n_raters[k]), int(lay.n_images[k])
        rows = order_rows[row_bounds[k]:row_bounds[k + 1]]
        S = np.full((R, M), np.nan)
        S[lay.local_rater[rows], lay.local_image[rows]] = arr.score[rows]
        out = _irregular_batch(S, n_perm, rng)
        npairs = R * (R - 1) // 2
        res["n_pairs"][k] = npairs
        res["mean_rho"][k] = out["mean_rho"]
        res["count"][k] = out["count"]
        res["n_pairs_valid"][k] = int(out["pair_ok"].sum())
        res["n_pairs_constant"][k] = int((out["status"] == "constant_rater").sum())
        res["n_pairs_too_few"][k] = int((out["status"] == "too_few_common_images").sum())
        if out["degenerate"] is not None:
            res["status"][k] = out["degenerate"]
        else:
            res["statistic"][k] = out["mean_rho"]
        if npairs:
            pair_frames.append(_pair_frame(codes, lay, np.array([k]), R, None, out["rho"][None], out["status"][None],
                                           out["pair_counts"][None] if method.unit == "pair" else None,
                                           n_common=out["n_common"][None]))
        bar.update(n_perm)


def analyze_batches(ratings: pd.DataFrame, *, n_perm: int = DEFAULT_N_PERM, q: float = paper.CONSISTENCY_FDR_Q,
                    method: str = DEFAULT_METHOD, seed: int = 0, source: str | None = None,
                    show_progress: bool | None = None, provenance: Provenance | None = None) -> ConsistencyResult:
    """Test every batch (or, with ``method="pairwise"``, every pair of raters) for agreement beyond
    chance and control the FDR with Benjamini–Hochberg; degenerate batches are reported, not dropped.
    ``provenance`` (the data's) names a synthetic source synthetic in the summary
    (:func:`provenance_fields`)."""
    m = lookup(METHODS, method, what="method", n=1, field="method")
    check_count(n_perm, "n_perm", low=1, high=MAX_RESAMPLES)
    check_seed(seed)
    if not 0 < q < 1:
        raise InputError(f"q must lie strictly between 0 and 1, got {q!r}", field="q")
    codes = _codes(ratings, source)
    arr = _arrange(codes, m)
    lay, n_batches = arr.lay, len(codes.batch_ids)
    rng = np.random.default_rng(seed)
    res = _empty_results(n_batches)
    pair_frames: list[pd.DataFrame] = []
    shapes_ok = arr.complete & (lay.n_raters >= 2) & (lay.n_images >= MIN_COMMON_IMAGES)
    total = int(shapes_ok.sum()) + int((~arr.complete).sum())
    show = sys.stderr.isatty() if show_progress is None else show_progress
    with _progress_bar(show, total * n_perm) as bar:
        _test_complete(codes, arr, m, n_perm, rng, bar, res, pair_frames)
        _test_irregular(codes, arr, m, n_perm, rng, bar, res, pair_frames)
    # batches without any usable rating (all scores missing, or no complete block for Kendall's W)
    empty = lay.n_ratings == 0
    res["status"][empty] = np.where(lay.n_raters[empty] >= 2, "too_few_common_images", "too_few_raters")
    batches = _batch_table(codes, arr, res, m, empty)
    if not pair_frames:  # no batch has two raters: an empty table with the usual columns
        pair_frames.append(_pair_frame(codes, lay, np.array([], int), 2, np.zeros(0, int), np.zeros((0, 1)),
                                       np.zeros((0, 1), dtype=object),
                                       np.zeros((0, 1), int) if m.unit == "pair" else None))
    pairs = pd.concat(pair_frames, ignore_index=True)
    summary = {**_summary(ratings, codes, arr, res, m, empty, pairs, n_perm=n_perm, q=q, seed=seed, source=source),
               **provenance_fields(provenance)}
    batches, pairs = _UNIT_TESTS[m.unit](batches, pairs, res, summary, n_perm=n_perm, q=q)
    return ConsistencyResult(batches=batches, pairs=pairs, summary=summary)


class _NoBar:
    """Stands in for a progress bar that is not shown (tqdm is imported only to show one)."""

    def __enter__(self) -> "_NoBar":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def update(self, n: int) -> None:
        return None


def _progress_bar(show: bool, total: int) -> Any:
    """A tqdm bar over the permutations, or a stand-in when none is shown."""
    if not show:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="permutations", unit="perm", unit_scale=True)


def _batch_table(codes: _Codes, arr: _Arranged, res: dict, m: Method, empty: np.ndarray) -> pd.DataFrame:
    lay = arr.lay
    batches = pd.DataFrame({
        "batch_id": codes.batch_ids, "n_raters": lay.n_raters, "n_images": lay.n_images,
        "n_ratings": lay.n_ratings, "complete": arr.complete & ~empty, "status": res["status"],
        "n_pairs": res["n_pairs"], "n_pairs_valid": res["n_pairs_valid"],
        "n_pairs_constant": res["n_pairs_constant"], "n_pairs_too_few_common": res["n_pairs_too_few"],
        "mean_rho": res["mean_rho"],
    })
    if m.statistic_column:
        batches[m.statistic_column] = res["statistic"]
    return batches


def _summary(ratings: pd.DataFrame, codes: _Codes, arr: _Arranged, res: dict, m: Method, empty: np.ndarray,
             pairs: pd.DataFrame, *, n_perm: int, q: float, seed: int, source: str | None) -> dict[str, Any]:
    tested = res["status"] == "tested"
    n_batches = len(codes.batch_ids)
    summary: dict[str, Any] = {
        "method": m.name, "method_description": m.description, "n_perm": int(n_perm), "q": float(q),
        "seed": int(seed), "toolkit_version": __version__, "source": source,
        "n_ratings": int(len(ratings)), "n_ratings_missing_score": codes.n_missing_score,
        "n_batches": int(n_batches), "n_batches_complete": int((arr.complete & ~empty).sum()),
        "n_batches_irregular": int((~arr.complete & ~empty).sum()),
        "n_tested": int(tested.sum()), "n_not_tested": int((~tested).sum()),
        "degenerate": {kind: int((res["status"] == kind).sum()) for kind in DEGENERATE_KINDS},
        "n_pairs": int(res["n_pairs"].sum()), "n_pairs_valid": int(res["n_pairs_valid"].sum()),
        "excluded_pairs": {"constant_rater": int(res["n_pairs_constant"].sum()),
                           "too_few_common_images": int(res["n_pairs_too_few"].sum())},
        "mean_batch_rho": _num(np.nanmean(res["mean_rho"][tested]) if tested.any() else math.nan),
        "median_batch_rho": _num(np.nanmedian(res["mean_rho"][tested]) if tested.any() else math.nan),
        "paper_percent_significant": paper.CONSISTENCY_PERCENT_SIGNIFICANT,
    }
    if m.complete_block:
        summary["n_ratings_outside_complete_block"] = arr.n_outside_block
    return summary


def _bh(p: np.ndarray, ok: np.ndarray, q: float) -> tuple[np.ndarray, np.ndarray]:
    """Benjamini–Hochberg over the tests marked ``ok``: adjusted p-values (NaN elsewhere) and rejections."""
    padj = np.full(len(p), np.nan)
    sig = np.zeros(len(p), bool)
    if ok.any():
        rej, pa = benjamini_hochberg(p[ok], q)
        padj[ok], sig[ok] = pa, rej
    return padj, sig


def _per_batch_tests(batches: pd.DataFrame, pairs: pd.DataFrame, res: dict, summary: dict, *, n_perm: int,
                     q: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One test per tested batch; BH across batches."""
    tested = res["status"] == "tested"
    p = np.full(len(batches), np.nan)
    p[tested] = (1 + res["count"][tested]) / (1 + n_perm)
    padj, sig = _bh(p, tested, q)
    batches["statistic"] = res["statistic"]
    batches["p_value"], batches["p_adjusted"], batches["significant"] = p, padj, sig
    summary.update({
        "unit": "batch", "n_tests": int(tested.sum()), "n_significant": int(sig.sum()),
        "percent_significant": _pct(sig.sum(), len(batches)),
        "percent_significant_of_tested": _pct(sig.sum(), tested.sum()),
    })
    return batches, pairs.drop(columns="exceedances", errors="ignore")


def _per_pair_tests(batches: pd.DataFrame, pairs: pd.DataFrame, res: dict, summary: dict, *, n_perm: int,
                    q: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One test per pair of raters with a defined ρ; BH across all pairs."""
    tested = res["status"] == "tested"
    ok = (pairs["status"] == "ok").to_numpy()
    p = np.full(len(pairs), np.nan)
    p[ok] = (1 + pairs.loc[ok, "exceedances"].to_numpy()) / (1 + n_perm)
    padj, sig = _bh(p, ok, q)
    pairs["p_value"], pairs["p_adjusted"], pairs["significant"] = p, padj, sig
    per_batch = pairs.groupby("batch_id", sort=False)["significant"].sum()
    batches["n_pairs_significant"] = batches["batch_id"].map(per_batch).fillna(0).astype(int).to_numpy()
    batches["significant"] = (batches["n_pairs_significant"] > 0) & tested
    all_sig = tested & (batches["n_pairs_significant"] == batches["n_pairs_valid"]).to_numpy()
    summary.update({
        "unit": "pair", "n_tests": int(ok.sum()), "n_significant": int(sig.sum()),
        "percent_significant": _pct(sig.sum(), len(pairs)),
        "percent_significant_of_tested": _pct(sig.sum(), ok.sum()),
        "n_batches_any_pair_significant": int(batches["significant"].sum()),
        "n_batches_all_pairs_significant": int(all_sig.sum()),
    })
    return batches, pairs.drop(columns="exceedances")


#: How each unit of test turns exceedance counts into p-values and BH decisions.
_UNIT_TESTS = {"batch": _per_batch_tests, "pair": _per_pair_tests}


def _pair_frame(codes: _Codes, lay: _Layout, members: np.ndarray, R: int, n_images: np.ndarray | None,
                rho: np.ndarray, status: np.ndarray, counts: np.ndarray | None = None,
                n_common: np.ndarray | None = None) -> pd.DataFrame:
    iu, ju = _pair_index(R)
    n = len(members)
    rater_local = np.array([lay.rater_codes[k] for k in members]).reshape(n, R) if n else np.zeros((0, R), int)
    frame = pd.DataFrame({
        "batch_id": np.repeat(codes.batch_ids[members], len(iu)),
        "rater_a": codes.rater_ids[rater_local[:, iu].ravel()] if n else np.array([], object),
        "rater_b": codes.rater_ids[rater_local[:, ju].ravel()] if n else np.array([], object),
        "n_common": (np.repeat(n_images, len(iu)) if n_common is None else n_common.ravel()).astype(np.int64),
        "rho": rho.ravel().astype(float), "status": status.ravel().astype(object),
    })
    if counts is not None:
        frame["exceedances"] = counts.ravel()
    return frame


def _pct(num: float, den: float) -> float | None:
    return None if den == 0 else float(100.0 * num / den)


def _num(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


# --- outputs ---------------------------------------------------------------------------------
OUTPUT_FILES: dict[str, str] = {
    "summary": "consistency.json",
    "batches": "consistency_batches.csv",
    "pairs": "consistency_pairs.csv",
    "rho_histogram": "consistency_batch_rho.png",
    "p_histogram": "consistency_p_values.png",
}


def figures(result: ConsistencyResult) -> dict[str, bytes]:
    """PNG bytes of the histogram of batch mean ρ and of the p-value histogram (deterministic)."""
    from ._plotting import histogram_png

    tested = result.batches["status"] == "tested"
    rho = result.batches.loc[tested, "mean_rho"].to_numpy()
    unit = result.summary.get("unit", "batch")
    if unit == "pair":
        pv = result.pairs["p_value"].dropna().to_numpy()
    else:
        pv = result.batches["p_value"].dropna().to_numpy()
    return {
        "rho_histogram": histogram_png(rho, bins=np.linspace(-1, 1, 41), xlabel="mean pairwise Spearman ρ",
                                       ylabel="batches", title=f"Batch mean ρ ({len(rho)} tested batches)"),
        "p_histogram": histogram_png(pv, bins=np.linspace(0, 1, 41), xlabel="permutation p-value",
                                     ylabel=f"{unit}es" if unit == "batch" else "pairs",
                                     title=f"Permutation p-values ({len(pv)} tests)"),
    }


#: Output-marker kind of the folder :func:`run_consistency` writes (see :mod:`aadb_toolkit._atomic`).
OUTPUT_KIND = "consistency"


def write_outputs(result: ConsistencyResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``consistency.json``, the per-batch and per-pair CSV tables and the figures into
    ``out_dir``, each file atomically; returns the written paths by role."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {role: out / name for role, name in OUTPUT_FILES.items()}
    pngs = figures(result)
    _atomic.write_text(paths["batches"], table_csv(result.batches))  # ids never run as spreadsheet formulas
    _atomic.write_text(paths["pairs"], table_csv(result.pairs))
    _atomic.write_bytes(paths["rho_histogram"], pngs["rho_histogram"])
    _atomic.write_bytes(paths["p_histogram"], pngs["p_histogram"])
    _atomic.write_json(paths["summary"], {**result.summary, "files": {k: v.name for k, v in paths.items()}})
    return paths


def run_consistency(data: AADBData, out_dir: str | Path, *, n_perm: int = DEFAULT_N_PERM,
                    q: float = paper.CONSISTENCY_FDR_Q, method: str = DEFAULT_METHOD, seed: int = 0,
                    show_progress: bool | None = None) -> ConsistencyResult:
    """Run :func:`analyze_batches` on the ratings of loaded ``data`` and write its outputs to the
    folder ``out_dir``, built aside and swapped in whole (it replaces only a consistency folder the
    toolkit wrote, never one inside the data's own folders)."""
    inputs = input_folders(data)
    _atomic.check_output_folder(out_dir, OUTPUT_KIND, inputs=inputs)  # before the work, and at the swap
    result = analyze_batches(data.ratings, n_perm=n_perm, q=q, method=method, seed=seed,
                             source=data.origin, show_progress=show_progress, provenance=data.provenance)
    with _atomic.atomic_dir(out_dir, kind=OUTPUT_KIND, inputs=inputs) as stage:
        write_outputs(result, stage)
    return result

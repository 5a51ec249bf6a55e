"""The half tables of permutations, their lane codes, the draws that read them and the consistency
kernel built on them: every permutation exactly once, uniform draws, and lookups that equal a plain
gather-and-sum."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from aadb_toolkit import _ranks, consistency


def _all_rows(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The half-table rows (iA, iB) of every index x in [0, n!), written out independently of the
    draw: x = (s·h! + a)·(n−h)! + b."""
    halves = _ranks.permutation_halves(n)
    s, rest = np.divmod(np.arange(math.factorial(n)), halves.n_a * halves.n_b)
    a, b = np.divmod(rest, halves.n_b)
    return s * halves.n_a + a, s * halves.n_b + b


@pytest.mark.parametrize("n", range(1, 11))
def test_half_tables_hold_every_permutation_exactly_once(n):
    i_a, i_b = _all_rows(n)
    packed = _ranks.packed_permutations(i_a, i_b, n)
    ordered = np.sort(packed)
    assert len(ordered) == math.factorial(n) and (ordered[1:] != ordered[:-1]).all()
    perms = _ranks.unpack_permutations(packed[:5000], n)
    assert (np.sort(perms, -1) == np.arange(n)).all()
    if n <= 7:
        assert {tuple(r) for r in _ranks.unpack_permutations(packed, n).tolist()} == set(itertools.permutations(range(n)))


@pytest.mark.parametrize("n", [1, 3, 4, 7, 9, 10])
def test_lane_codes_are_the_items_at_each_pair_of_positions(n):
    i_a, i_b = _all_rows(n)
    take = slice(None) if n <= 8 else slice(None, None, 97)  # a spread-out sample of the 9! / 10! rows
    i_a, i_b = i_a[take], i_b[take]
    code_a, code_b = _ranks.lane_code_tables(n)
    lanes = (code_a.take(i_a).view(np.uint16).reshape(-1, 8).astype(int)
             + code_b.take(i_b).view(np.uint16).reshape(-1, 8))
    perms = _ranks.unpack_permutations(_ranks.packed_permutations(i_a, i_b, n), n).astype(int)
    if n % 2:
        perms = np.concatenate([perms, np.full((len(perms), 1), n)], 1)  # the padding item
    B, half = _ranks.code_base(n), (n + 1) // 2
    assert (lanes[:, :half] == perms[:, 0::2] + B * perms[:, 1::2]).all()
    assert (lanes[:, half:] == B * B).all()


@pytest.mark.parametrize("n", [3, 4, 5])
def test_draws_are_uniform_over_all_permutations(n):
    """Every one of the n! permutations appears, with frequencies a chi-square test accepts (fixed
    seed; the bound is the 0.9999 quantile, so the test cannot flake and still catches any real bias)."""
    rng = np.random.default_rng(4)
    k = math.factorial(n)
    draws = _ranks.draw_permutations(rng, (400 * k,), n)
    assert draws.shape == (400 * k, n) and draws.dtype == np.uint8
    rows, counts = np.unique(draws, axis=0, return_counts=True)
    assert {tuple(r) for r in rows.tolist()} == set(itertools.permutations(range(n)))
    chi2 = ((counts - 400) ** 2 / 400).sum()
    dof = k - 1
    assert chi2 < dof + 3.72 * math.sqrt(2 * dof) + 10  # normal approximation of the 0.9999 quantile, generous


def test_draws_are_independent_across_the_two_of_a_pair():
    """The two permutations taken from one 64-bit draw (quotient and remainder) are independent:
    their joint frequencies are uniform over all (3!)² pairs."""
    rng = np.random.default_rng(11)
    i_a, i_b = _ranks.draw_half_indices(rng, (2, 36 * 500), 3)  # first half quotients, second remainders
    code = _ranks.packed_permutations(i_a, i_b, 3)
    _, ids = np.unique(code, return_inverse=True)
    ids = ids.reshape(code.shape)
    joint = np.bincount(ids[0] * 6 + ids[1], minlength=36)
    assert len(joint) == 36 and ((joint - 500) ** 2 / 500).sum() < 35 + 3.72 * math.sqrt(70) + 10


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("n_raters,n_images", [(2, 3), (3, 7), (5, 10), (6, 9), (4, 4), (5, 5)])
def test_lane_code_lookups_equal_a_plain_gather(n_raters, n_images, shared):
    """The lookups give ‖z₀ + Σ_j z_j∘π_j‖² for the chunk's permutations, whether each batch has its
    own draw or the batches share one draw and relabel their raters."""
    rng = np.random.default_rng(n_raters * 10 + n_images)
    z = rng.normal(size=(6, n_raters, n_images)).astype(np.float32)
    if shared:
        halves = _ranks.draw_half_indices(rng, (1, n_raters - 1, 50), n_images)
        relabel = _ranks.draw_permutations(rng, (6, n_raters - 1), n_images)
        draw = consistency._Draw(np.arange(6), n_images, halves=halves, relabel=relabel)
    else:
        halves = _ranks.draw_half_indices(rng, (6, n_raters - 1, 50), n_images)
        draw = consistency._Draw(np.arange(6), n_images, halves=halves)
    perm = draw.perm().astype(np.intp)
    plain = z[:, 0, None, :] + np.take_along_axis(z[:, 1:, None, :], perm, -1).sum(1)
    want = (plain.astype(np.float64) ** 2).sum(-1)
    assert np.allclose(consistency._permuted_square_norms(z, draw), want, rtol=1e-5, atol=1e-5)
    b, p = np.array([0, 3, 5]), np.array([1, 49, 7])
    assert (draw.perm_at(b, p) == perm[b, :, p]).all()


def test_a_shared_draw_shuffles_each_batch_by_its_relabelling_after_the_shared_shuffle():
    """Batch b's rater j takes, at position t, the item ``relabel[b, j, τ(t)]``: the shared
    shuffle τ, then the batch's own relabelling (so two batches of a chunk see different shuffles)."""
    rng = np.random.default_rng(3)
    halves = _ranks.draw_half_indices(rng, (1, 2, 40), 6)
    relabel = _ranks.draw_permutations(rng, (3, 2), 6)
    draw = consistency._Draw(np.arange(3), 6, halves=halves, relabel=relabel)
    tau = consistency._Draw(np.arange(1), 6, halves=halves).perm()[0]  # (raters, perms, N)
    perm = draw.perm()
    for b in range(3):
        for j in range(2):
            assert (perm[b, j] == relabel[b, j][tau[j]]).all()
    assert (perm[0] != perm[1]).any()
    b, p = np.array([0, 2, 1, 2]), np.array([0, 39, 5, 5])
    assert (draw.perm_at(b, p) == perm[b, :, p]).all()


def test_each_batch_of_a_shared_draw_gets_uniform_independent_shuffles():
    """Within one batch, the shuffles a shared draw gives (relabelling ∘ shared) are uniform over
    all 4! permutations, for each rater, and independent between its two raters."""
    rng = np.random.default_rng(8)
    n_p = 24 * 24 * 40
    halves = _ranks.draw_half_indices(rng, (1, 2, n_p), 4)
    relabel = _ranks.draw_permutations(rng, (2, 2), 4)
    perm = consistency._Draw(np.arange(2), 4, halves=halves, relabel=relabel).perm()
    for b in range(2):
        ids = np.unique(perm[b].reshape(-1, 4), axis=0, return_inverse=True)[1].reshape(2, n_p)
        joint = np.bincount(ids[0] * 24 + ids[1], minlength=576)
        expect = n_p / 576
        dof = 575
        assert len(joint) == 576
        assert ((joint - expect) ** 2 / expect).sum() < dof + 3.72 * math.sqrt(2 * dof) + 10

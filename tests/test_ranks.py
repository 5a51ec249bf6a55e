"""The packed permutation table and the consistency kernel that reads it: every permutation once,
in the documented order, and the two-position lookups equal a plain gather-and-sum."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from aadb_toolkit import _ranks, consistency


def _insertion_order(n: int) -> list[tuple[int, ...]]:
    """Permutations of range(n) in the table's order, written out independently: those of k items
    are those of k-1 items with item k-1 inserted at position 0, 1, ..., k-1, block by block."""
    rows = [()]
    for k in range(1, n + 1):
        rows = [r[:pos] + (k - 1,) + r[pos:] for pos in range(k) for r in rows]
    return rows


@pytest.mark.parametrize("n", range(1, 8))
def test_packed_table_holds_every_permutation_once_in_insertion_order(n):
    table = _ranks.unpack_permutations(_ranks.packed_permutation_table(n), n)
    assert [tuple(r) for r in table.tolist()] == _insertion_order(n)
    assert {tuple(r) for r in table.tolist()} == set(itertools.permutations(range(n)))


def test_draws_are_uniform_rows_of_the_table():
    rng = np.random.default_rng(4)
    draws = _ranks.draw_permutations(rng, (3000,), 3)
    assert draws.shape == (3000, 3) and draws.dtype == np.uint8
    counts = np.unique(draws, axis=0, return_counts=True)[1]
    assert len(counts) == 6 and counts.min() > 400  # 500 expected each


@pytest.mark.parametrize("n_raters,n_images", [(2, 3), (3, 7), (5, 10), (6, 9), (4, 4)])
def test_two_position_lookups_equal_a_plain_gather(n_raters, n_images):
    rng = np.random.default_rng(n_raters * 10 + n_images)
    z = rng.normal(size=(6, n_raters, n_images)).astype(np.float32)
    packed = _ranks.draw_packed_permutations(rng, (6, n_raters - 1, 50), n_images)
    draw = consistency._Draw(np.arange(6), n_images, packed=packed)
    perm = _ranks.unpack_permutations(packed, n_images).astype(np.intp)
    plain = z[:, 0, None, :] + np.take_along_axis(z[:, 1:, None, :], perm, -1).sum(1)
    want = (plain.astype(np.float64) ** 2).sum(-1)
    assert np.allclose(consistency._permuted_square_norms(z, draw), want, rtol=1e-5, atol=1e-5)

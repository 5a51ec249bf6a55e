"""Rank arithmetic shared by the consistency, human-consistency and reliability analyses.

Average ranks (ties share the mean of the ranks they span) are kept as *doubled, centred*
integers ``c = 2·rank − (n + 1)``, so every rank correlation is an exact integer dot product
divided by the product of two integer norms, and permutation tests compare integers.
"""

from __future__ import annotations

import functools
import math

import numpy as np

#: Above this length, ranks come from scipy's rankdata (imported only then: ``scipy.stats`` takes
#: most of a second to import) instead of the O(n²) comparison.
_DIRECT_RANK_MAX = 48
#: Up to this many items the rank dot products are exact int64 sums (Σ c² ≈ n³/3 < 2⁶³).
_EXACT_DOT_MAX_N = 2_000_000
#: Spearman's ρ of fewer items is reported as undefined (``too_few``) unless a caller says otherwise:
#: the one home of the "at least 3 items for ρ" rule of the consistency and reliability analyses.
MIN_ITEMS_FOR_RHO = 3
#: Permutations of up to this many items are drawn from a table of all n! permutations.
PERM_TABLE_MAX_N = 10


def centered_ranks(values: np.ndarray) -> np.ndarray:
    """Doubled, centred average ranks along the last axis, as int64 (NaN-free input)."""
    x = np.asarray(values, dtype=float)
    n = x.shape[-1]
    if n <= _DIRECT_RANK_MAX:
        a = x[..., :, None]
        b = x[..., None, :]
        less = (b < a).sum(-1)
        equal = (b == a).sum(-1)
        return (2 * less + equal - n).astype(np.int64)
    from scipy import stats

    ranks = stats.rankdata(x, method="average", axis=-1)
    return np.rint(2 * ranks - (n + 1)).astype(np.int64)


def spearman(x: np.ndarray, y: np.ndarray, *, min_n: int = MIN_ITEMS_FOR_RHO) -> tuple[float, str]:
    """Spearman's ρ (average ranks for ties, as ``scipy.stats.spearmanr``) of two equal-length
    vectors with a status: ``ok``, ``too_few`` (fewer than ``min_n`` items), ``constant_x`` or
    ``constant_y`` (ρ undefined; returned as NaN). The toolkit's one Spearman implementation, and
    its one convention for "undefined": NaN, with the status saying why (the protocols pass
    ``min_n=2``: two images have a ranking)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"spearman needs two 1-d arrays of equal length, got {x.shape} and {y.shape}")
    if x.shape[0] < min_n:
        return math.nan, "too_few"
    cx, cy = centered_ranks(x), centered_ranks(y)
    if x.shape[0] > _EXACT_DOT_MAX_N:  # Σ c² ≈ n³/3 would overflow int64: float64 sums (relative error ~1e-16)
        cx, cy = cx.astype(np.float64), cy.astype(np.float64)
        nx, ny, d = float(cx @ cx), float(cy @ cy), float(cx @ cy)
        if nx == 0:
            return math.nan, "constant_x"
        if ny == 0:
            return math.nan, "constant_y"
        return max(-1.0, min(1.0, d / math.sqrt(nx) / math.sqrt(ny))), "ok"
    nx, ny = int(cx @ cx), int(cy @ cy)
    if nx == 0:
        return math.nan, "constant_x"
    if ny == 0:
        return math.nan, "constant_y"
    return float(int(cx @ cy) / math.sqrt(nx * ny)), "ok"


#: Bits per item in a packed permutation (4: items 0–15, so up to 16 items fit one uint64).
_NIBBLE = 4


@functools.lru_cache(maxsize=None)
def packed_permutation_table(n: int) -> np.ndarray:
    """All n! permutations of ``range(n)``, one per uint64: the item at position t in bits 4t…4t+3
    (10! rows are 29 MB, half the bytes of one byte per item, so more of the table stays in the
    processor's cache when rows are drawn at random). Row order: the permutations of k items are
    those of k−1 items with item k−1 inserted at position 0, then 1, …, then k−1."""
    if not 1 <= n <= PERM_TABLE_MAX_N:
        raise ValueError(f"permutation tables are built for 1 <= n <= {PERM_TABLE_MAX_N}, not {n}")
    table = np.zeros(1, np.uint64)
    for k in range(1, n + 1):
        m = table.shape[0]
        grown = np.empty(m * k, np.uint64)
        for pos in range(k):  # insert item k-1 at position pos of every permutation of k-1 items
            shift = np.uint64(_NIBBLE * pos)
            low = table & np.uint64((1 << (_NIBBLE * pos)) - 1)
            high = (table >> shift) << np.uint64(_NIBBLE * (pos + 1))
            grown[pos * m:(pos + 1) * m] = low | high | (np.uint64(k - 1) << shift)
        table = grown
    table.setflags(write=False)
    return table


def unpack_permutations(packed: np.ndarray, n: int) -> np.ndarray:
    """Packed permutations (uint64, see :func:`packed_permutation_table`) as uint8 arrays of ``n``
    items, shape ``packed.shape + (n,)``."""
    octets = np.ascontiguousarray(packed, dtype="<u8").view(np.uint8).reshape(packed.shape + (8,))
    out = np.empty(packed.shape + (16,), np.uint8)
    np.bitwise_and(octets, 15, out=out[..., 0::2])
    np.right_shift(octets, _NIBBLE, out=out[..., 1::2])
    return out[..., :n]


def draw_packed_permutations(rng: np.random.Generator, size: tuple[int, ...], n: int) -> np.ndarray:
    """Uniform rows of :func:`packed_permutation_table` (``n`` ≤ 10), shape ``size`` (uint64): one
    bounded integer per permutation, then one 8-byte read. :func:`draw_permutations` is the same
    stream, unpacked."""
    table = packed_permutation_table(n)
    idx = rng.integers(0, table.shape[0], size=size, dtype=np.int64 if table.shape[0] > 2**31 else np.int32)
    return table.take(idx)


def draw_permutations(rng: np.random.Generator, size: tuple[int, ...], n: int) -> np.ndarray:
    """Independent uniform permutations of ``range(n)``, shape ``size + (n,)`` (integer dtype).

    For n ≤ 10 a uniform row of the table of all n! permutations (exact and fast); above that,
    the argsort of independent uniform keys (ties among float64 keys have probability ~0).
    """
    if n <= PERM_TABLE_MAX_N:
        return unpack_permutations(draw_packed_permutations(rng, size, n), n)
    keys = rng.random(size + (n,))
    return np.argsort(keys, axis=-1).astype(np.int32 if n > 32767 else np.int16)

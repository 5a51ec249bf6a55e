"""Rank arithmetic shared by the consistency, human-consistency and reliability analyses.

Average ranks (ties share the mean of the ranks they span) are kept as *doubled, centred*
integers ``c = 2·rank − (n + 1)``, so every rank correlation is an exact integer dot product
divided by the product of two integer norms, and permutation tests compare integers.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

#: Above this length, ranks come from scipy's rankdata (imported only then: ``scipy.stats`` takes
#: most of a second to import) instead of the O(n²) comparison.
_DIRECT_RANK_MAX = 48
#: Up to this many items the rank dot products are exact int64 sums (Σ c² ≈ n³/3 < 2⁶³).
_EXACT_DOT_MAX_N = 2_000_000
#: Spearman's ρ of fewer items is reported as undefined (``too_few``) unless a caller says otherwise:
#: the one home of the "at least 3 items for ρ" rule of the consistency and reliability analyses.
MIN_ITEMS_FOR_RHO = 3
#: Permutations of up to this many items are drawn as rows of two tables (:func:`permutation_halves`).
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
#: Lanes (uint16) of one row of a lane-code table: 8 lanes = 16 bytes (numpy gathers 16-byte rows fast).
CODE_LANES = 8


@dataclass(frozen=True)
class PermutationHalves:
    """Every permutation of ``range(n)`` (n ≤ 10) as the sum of one row of each of two tables.

    A permutation is the set ``S`` of positions of items 0…h−1 (h = n // 2), their order on ``S``
    and the order of items h…n−1 on the other positions. Row ``iA = s·h! + a`` of table A places
    items 0…h−1 on the positions of subset ``s`` in order ``a``; row ``iB = s·(n−h)! + b`` of table B
    places items h…n−1 on the complement in order ``b``; every permutation is one pair with the
    same ``s``, so the tables have C(n, h)·h! and C(n, h)·(n−h)! rows (30,240 each for n = 10, a
    few hundred KB instead of 29 MB for all 10! permutations, so a random row is a cache hit).
    ``packed_a + packed_b`` is the permutation packed as in :func:`unpack_permutations`;
    ``code_a + code_b`` are its lane codes (see :func:`lane_code_tables`)."""

    n: int
    n_subsets: int
    n_a: int  # h!
    n_b: int  # (n − h)!
    positions_a: np.ndarray  # (n_subsets, h) positions of items 0…h−1, per subset
    positions_b: np.ndarray  # (n_subsets, n − h) the other positions
    orders_a: np.ndarray  # (h!, h) items 0…h−1 in each order
    orders_b: np.ndarray  # ((n − h)!, n − h) items h…n−1 in each order
    packed_a: np.ndarray = field(repr=False)
    packed_b: np.ndarray = field(repr=False)

    @property
    def n_permutations(self) -> int:
        return self.n_subsets * self.n_a * self.n_b


def _placed(positions: np.ndarray, orders: np.ndarray, lane_of: Callable[[np.ndarray], np.ndarray],
            value_of: Callable[[np.ndarray, np.ndarray], np.ndarray], width: int) -> np.ndarray:
    """Rows (subset, order) of ``width`` int64 lanes: each item's ``value_of(item, position)`` added
    into lane ``lane_of(position)``."""
    n_s, n_o, k = positions.shape[0], orders.shape[0], positions.shape[1]
    out = np.zeros((n_s, n_o, width), np.int64)
    s_idx = np.arange(n_s)[:, None]
    o_idx = np.arange(n_o)[None, :]
    for m in range(k):
        pos = positions[:, m][:, None]
        np.add.at(out, (s_idx, o_idx, lane_of(pos)), value_of(orders[:, m][None, :], pos))
    return out.reshape(n_s * n_o, width)


@functools.lru_cache(maxsize=None)
def permutation_halves(n: int) -> PermutationHalves:
    """The two half tables of the permutations of ``range(n)``, 1 ≤ n ≤ 10 (built once per n)."""
    if not 1 <= n <= PERM_TABLE_MAX_N:
        raise ValueError(f"permutation tables are built for 1 <= n <= {PERM_TABLE_MAX_N}, not {n}")
    h = n // 2
    subsets = list(itertools.combinations(range(n), h))
    pos_a = np.array(subsets, np.int64).reshape(len(subsets), h)
    pos_b = np.array([[t for t in range(n) if t not in row] for row in subsets], np.int64).reshape(len(subsets), n - h)
    orders = list(itertools.permutations(range(h)))
    ord_a = np.array(orders, np.int64).reshape(len(orders), h)
    ord_b = np.array(list(itertools.permutations(range(h, n))), np.int64).reshape(-1, n - h)

    def nibble(item: np.ndarray, pos: np.ndarray) -> np.ndarray:
        return item << (_NIBBLE * pos)

    def lane0(pos: np.ndarray) -> np.ndarray:
        return np.zeros_like(pos)

    packed_a = _placed(pos_a, ord_a, lane0, nibble, 1)[:, 0].astype(np.uint64)
    packed_b = _placed(pos_b, ord_b, lane0, nibble, 1)[:, 0].astype(np.uint64)
    for t in (packed_a, packed_b, pos_a, pos_b, ord_a, ord_b):
        t.setflags(write=False)
    return PermutationHalves(n, len(pos_a), len(ord_a), len(ord_b), pos_a, pos_b, ord_a, ord_b, packed_a, packed_b)


def code_base(n: int) -> int:
    """The base of a lane code: ``n`` items, plus one padding item (value 0) when ``n`` is odd."""
    return n + n % 2


@functools.lru_cache(maxsize=None)
def lane_code_tables(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The half tables of :func:`permutation_halves` as lane codes, one 16-byte row (8 uint16 lanes)
    per row: lane k of ``code_a[iA] + code_b[iB]`` is ``item(2k) + B·item(2k+1)`` (``B =
    code_base(n)``; for odd n the last lane's upper item is the padding item n), so a table of B²
    values indexed by the code holds a rater's values at two positions at once. Lanes k ≥ ⌈n/2⌉
    are not positions: ``code_a`` holds B² there and ``code_b`` 0 (one past the codes of one rater;
    B² + B⁴ past those of a pair combined as ``c₁ + B²·c₂``), so a lookup table with zeros at
    those indices makes them contribute nothing."""
    halves = permutation_halves(n)
    B, half = code_base(n), (n + 1) // 2

    def lane(pos: np.ndarray) -> np.ndarray:
        return pos // 2

    def code(item: np.ndarray, pos: np.ndarray) -> np.ndarray:
        return item * np.where(pos % 2, B, 1)

    code_a = _placed(halves.positions_a, halves.orders_a, lane, code, CODE_LANES)
    code_b = _placed(halves.positions_b, halves.orders_b, lane, code, CODE_LANES)
    if n % 2:
        code_a[:, half - 1] += n * B  # the padding item at position n
    code_a[:, half:] = B * B
    tables = (code_a.astype(np.uint16).view(np.complex128).ravel(),  # 16-byte items: one gather per row
              code_b.astype(np.uint16).view(np.complex128).ravel())
    for t in tables:
        t.setflags(write=False)
    return tables


def unpack_permutations(packed: np.ndarray, n: int) -> np.ndarray:
    """Packed permutations (uint64, item at position t in bits 4t…4t+3) as uint8 arrays of ``n``
    items, shape ``packed.shape + (n,)``."""
    octets = np.ascontiguousarray(packed, dtype="<u8").view(np.uint8).reshape(packed.shape + (8,))
    out = np.empty(packed.shape + (16,), np.uint8)
    np.bitwise_and(octets, 15, out=out[..., 0::2])
    np.right_shift(octets, _NIBBLE, out=out[..., 1::2])
    return out[..., :n]


def scratch(work: dict | None, name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """An uninitialised array of ``shape``: a view into ``work[name]``, grown when too small, so that
    a loop over chunks reuses its memory (a fresh large array costs a page fault per 4 KB on
    first write: for arrays of a few hundred KB that is as slow as the arithmetic on them)."""
    size = math.prod(shape)
    if work is None:
        return np.empty(shape, dtype)
    buf = work.get(name)
    if buf is None or buf.dtype != np.dtype(dtype) or buf.size < size:
        buf = work[name] = np.empty(size, dtype)
    return buf[:size].reshape(shape)


def draw_half_indices(rng: np.random.Generator, size: tuple[int, ...], n: int,
                      work: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Independent uniform permutations of ``range(n)`` (n ≤ 10), shape ``size``, as row indices
    ``(iA, iB)`` into the half tables of :func:`permutation_halves` (intp; with ``work``, views into
    its reused buffers, valid until the next call with the same ``work``).

    Exactly uniform: each int64 from ``rng.integers`` (unbiased, Lemire's method with rejection) is
    uniform on [0, (n!)²) and gives two independent indices ``x`` uniform on [0, n!) by quotient
    and remainder; ``x = (s·h! + a)·(n−h)! + b`` is split into ``iA = s·h! + a`` and
    ``iB = s·(n−h)! + b`` (int32 arithmetic: n! < 2³¹)."""
    halves = permutation_halves(n)
    m = math.prod(size)
    n_fact = halves.n_permutations
    pairs = rng.integers(0, n_fact * n_fact, size=(m + 1) // 2, dtype=np.int64)
    h = len(pairs)
    x = scratch(work, "x", (2 * h,), np.int32)
    wide = scratch(work, "wide", (h,), np.int64)
    np.floor_divide(pairs, n_fact, out=wide)
    x[:h] = wide
    wide *= n_fact
    np.subtract(pairs, wide, out=x[h:], casting="unsafe")  # < n! < 2³¹
    x = x[:m]
    i_a = scratch(work, "i_a32", (m,), np.int32)
    rest = scratch(work, "rest", (m,), np.int32)
    np.floor_divide(x, halves.n_b, out=i_a)
    np.multiply(i_a, halves.n_b, out=rest)
    np.subtract(x, rest, out=rest)
    np.floor_divide(i_a, halves.n_a, out=x)  # x is no longer needed: s
    x *= halves.n_b
    x += rest
    out_a, out_b = scratch(work, "i_a", size, np.intp), scratch(work, "i_b", size, np.intp)
    out_a.reshape(-1)[...] = i_a
    out_b.reshape(-1)[...] = x
    return out_a, out_b


def packed_permutations(i_a: np.ndarray, i_b: np.ndarray, n: int) -> np.ndarray:
    """The permutations with half-table rows ``(i_a, i_b)``, packed (uint64, see :func:`unpack_permutations`)."""
    halves = permutation_halves(n)
    return halves.packed_a.take(i_a) + halves.packed_b.take(i_b)


def draw_packed_permutations(rng: np.random.Generator, size: tuple[int, ...], n: int) -> np.ndarray:
    """Independent uniform permutations of ``range(n)`` (n ≤ 10), packed, shape ``size`` (uint64):
    the same stream as :func:`draw_half_indices` and :func:`draw_permutations`."""
    return packed_permutations(*draw_half_indices(rng, size, n), n)


def draw_permutations(rng: np.random.Generator, size: tuple[int, ...], n: int) -> np.ndarray:
    """Independent uniform permutations of ``range(n)``, shape ``size + (n,)`` (integer dtype).

    For n ≤ 10 two rows of the half tables of :func:`permutation_halves` (exact and fast); above that,
    the argsort of independent uniform keys (ties among float64 keys have probability ~0).
    """
    if n <= PERM_TABLE_MAX_N:
        return unpack_permutations(draw_packed_permutations(rng, size, n), n)
    keys = rng.random(size + (n,))
    return np.argsort(keys, axis=-1).astype(np.int32 if n > 32767 else np.int16)

"""Fast rank statistics: Spearman's ρ and its bootstrap, computed from ranks taken once.

A bootstrap resample is a multinomial count vector ``c`` over the items (how often each item was
drawn). With the items sorted by a variable, the average rank of item ``i`` inside the resample is
``S + (G + 1) / 2``, where ``S`` is the number of draws with a strictly smaller value and ``G`` the
number of draws tied with it (its own copies included). Twice that rank is an integer
(``start + end + 1`` of the tie group's cumulative-count interval), so ranks are exact, and the
resample's Spearman ρ is the Pearson correlation of those ranks weighted by ``c``. The sums that do
not need both variables at once have closed forms: Σ c·r = n(n+1)/2 and
Σ c·r² = Σ j² − Σ_groups (G³ − G)/12. Only the cross term Σ c·r_x·r_y is computed item by item,
one resample at a time into preallocated buffers (a resample's arrays stay in cache).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from .._numbers import MAX_RESAMPLES, check_count
from .._ranks import spearman


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's r (centred sums in float64); NaN when a variable is constant. Each variable is first
    divided by its largest magnitude (r does not change), so scores near 1e308 do not overflow and
    subnormal ones like 1e-320 do not underflow to zero."""
    x = _unit_scale(np.asarray(x, dtype=float))
    y = _unit_scale(np.asarray(y, dtype=float))
    xc = x - x.mean()
    yc = y - y.mean()
    sxx = float(xc @ xc)
    syy = float(yc @ yc)
    if sxx == 0.0 or syy == 0.0:
        return float("nan")
    r = float(xc @ yc) / np.sqrt(sxx * syy)
    return float(min(1.0, max(-1.0, r)))


def _unit_scale(v: np.ndarray) -> np.ndarray:
    peak = float(np.max(np.abs(v))) if v.size else 0.0
    return v / peak if peak > 0.0 and np.isfinite(peak) else v


@dataclass(frozen=True)
class _TieGroups:
    """One variable's sort order and tie groups; ``order`` holds base-order positions."""

    order: np.ndarray  # positions (base coordinates) sorted by this variable
    ends: np.ndarray  # index (in this variable's order) of the last item of each tie group
    group_of: np.ndarray  # tie-group index of each position in this variable's order
    has_ties: bool


def _tie_groups(values_sorted: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    n = values_sorted.size
    change = np.flatnonzero(values_sorted[1:] != values_sorted[:-1])
    ends = np.append(change, n - 1).astype(np.intp)
    group_of = np.zeros(n, dtype=np.intp)
    group_of[change + 1] = 1
    group_of = np.cumsum(group_of)
    return ends, group_of, ends.size < n


def _prepare(values: np.ndarray) -> _TieGroups:
    """Sort ``values`` (given in base order) and find its tie groups."""
    order = np.argsort(values, kind="stable").astype(np.intp)
    ends, group_of, has_ties = _tie_groups(values[order])
    return _TieGroups(order=order, ends=ends, group_of=group_of, has_ties=has_ties)


def _group_ranks(cs: np.ndarray, tg: _TieGroups) -> tuple[np.ndarray, int]:
    """Per tie group: twice the average rank (start + end + 1 of its cumulative-count interval),
    and Σ (G³ − G) over groups, from the inclusive cumulative counts ``cs`` in sorted order."""
    end = cs[tg.ends].astype(np.int64)
    start = np.empty_like(end)
    start[0] = 0
    start[1:] = end[:-1]
    g = end - start
    return start + end + 1, int((g * g * g - g).sum())


def _rho(cross2: float, cubes_x: int, cubes_y: int, n: int) -> float:
    """ρ from Σ c·(2r_x)·(2r_y) and the tie corrections, for n draws."""
    nf = float(n)
    # Σ c r = n(n+1)/2 ;  Σ c r² = n(n+1)(2n+1)/6 − Σ(G³−G)/12
    base = nf * (nf * nf - 1.0)
    var_x = base - float(cubes_x)
    var_y = base - float(cubes_y)
    if var_x <= 0 or var_y <= 0:
        return float("nan")
    cov = 3.0 * (cross2 - nf * (nf + 1.0) ** 2)
    return float(min(1.0, max(-1.0, cov / np.sqrt(var_x * var_y))))


class _Workspace:
    """Preallocated per-thread buffers for one resample at a time."""

    def __init__(self, n: int) -> None:
        self.buf = {name: np.empty(n, dtype=np.int32) for name in ("cs", "ry", "cx", "rx", "ryx")}
        self.cx8 = np.empty(n, dtype=np.uint8)  # counts below 256 (the usual case) gather 4× less memory
        self.f1, self.f2 = np.empty(n), np.empty(n)
        self.cube32 = np.empty(n, dtype=np.int32)


#: Resamples drawn from one child seed; the seeding (and so every result) does not depend on
#: how many threads run the blocks.
BLOCK: int = 25


def default_threads() -> int:
    """Threads for the bootstrap when not given: the cores this process may use, at most 2
    (numpy releases the GIL in the per-resample work, so blocks of resamples run in parallel;
    on an idle 2-core machine two threads are 1.7× faster, docs/performance.md). Set
    ``AADB_BOOTSTRAP_THREADS=1`` on a machine shared with other heavy jobs, where one thread is
    faster. Results never depend on the thread count."""
    env = os.environ.get("AADB_BOOTSTRAP_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ValueError(f"AADB_BOOTSTRAP_THREADS must be a whole number, got {env!r}") from None
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(2, cores))


def _compact(c: np.ndarray) -> np.ndarray:
    """Counts as uint8 when they all fit (almost always: a multinomial count rarely exceeds 20),
    else int32."""
    return c.astype(np.uint8) if int(c.max()) < 256 else c.astype(np.int32)


class BootstrapSpearman:
    """Spearman ρ of one reference variable ``y`` against one or more predictors, over bootstrap
    resamples of the items (the same resamples for every predictor, so differences are paired)."""

    def __init__(self, y: np.ndarray, xs: list[np.ndarray] | np.ndarray) -> None:
        y = np.asarray(y, dtype=float)
        xs_list = [np.asarray(x, dtype=float) for x in (xs if isinstance(xs, list) else [xs])]
        if y.ndim != 1 or any(x.shape != y.shape for x in xs_list):
            raise ValueError("BootstrapSpearman needs 1-d arrays of equal length")
        if y.size < 2:
            raise ValueError("BootstrapSpearman needs at least 2 items")
        if not np.isfinite(y).all() or not all(np.isfinite(x).all() for x in xs_list):
            raise ValueError("BootstrapSpearman needs finite values")
        self.n = int(y.size)
        self._base = np.argsort(y, kind="stable")  # count vectors refer to items sorted by y
        ends, group_of, has_ties = _tie_groups(y[self._base])
        self._y = _TieGroups(order=np.arange(self.n, dtype=np.intp), ends=ends, group_of=group_of,
                             has_ties=has_ties)
        self._xs = [_prepare(x[self._base]) for x in xs_list]
        # where y's tie group of each x-ordered position is (used when y has ties)
        self._ygroup_at_x = [group_of[tg.order] for tg in self._xs] if has_ties else None
        self._ws = _Workspace(self.n)

    def base_order(self) -> np.ndarray:
        """The item permutation (indices into the caller's arrays) that count vectors refer to."""
        return self._base

    def rho_from_counts(self, c: np.ndarray) -> np.ndarray:
        """ρ of every predictor for one resample given its count vector (length n, base order)."""
        c = np.asarray(c)
        if c.shape != (self.n,):
            raise ValueError(f"counts must have shape ({self.n},), got {c.shape}")
        if (c < 0).any():
            raise ValueError("counts must be non-negative")
        n_draws = int(c.sum(dtype=np.int64))
        if n_draws >= 2**30:
            raise ValueError("counts too large")
        return self._rho(c.astype(np.int32, copy=False), n_draws, self._ws)

    @staticmethod
    def _cubes(c: np.ndarray, n_draws: int, ws: _Workspace) -> int:
        """Σ (c³ − c): the tie correction of a variable without ties (each item its own group)."""
        if int(c.max()) <= 1290:  # c³ fits in int32
            cube = ws.cube32
            np.multiply(c, c, out=cube, dtype=np.int32)
            cube *= c
            return int(cube.sum(dtype=np.int64)) - n_draws
        cube64 = c.astype(np.int64)
        return int((cube64 * cube64 * cube64).sum()) - n_draws

    def _rho(self, c: np.ndarray, n_draws: int, ws: _Workspace) -> np.ndarray:
        """ρ per predictor for int32 counts ``c`` summing to ``n_draws`` (no checks)."""
        b = ws.buf
        f1, f2 = ws.f1, ws.f2
        cubes_c: int | None = None
        cs = np.cumsum(c, dtype=np.int32, out=b["cs"])
        if self._y.has_ties:
            ry_group, cubes_y = _group_ranks(cs, self._y)
            ry = None
        else:
            ry = b["ry"]
            np.multiply(cs, 2, out=ry)
            ry -= c
            ry += 1
            cubes_c = cubes_y = self._cubes(c, n_draws, ws)
        out = np.empty(len(self._xs))
        for j, tg in enumerate(self._xs):
            cx = np.take(c, tg.order, out=ws.cx8 if c.dtype == np.uint8 else b["cx"])
            csx = np.cumsum(cx, dtype=np.int32, out=b["rx"])
            if tg.has_ties:
                rx_group, cubes_x = _group_ranks(csx, tg)
                f1[...] = np.take(rx_group, tg.group_of)
            else:
                rx = csx  # in place: 2·cs − c + 1
                rx *= 2
                rx -= cx
                rx += 1
                f1[...] = rx
                if cubes_c is None:
                    cubes_c = self._cubes(c, n_draws, ws)
                cubes_x = cubes_c
            f1 *= cx
            if ry is None:
                np.take(ry_group.astype(np.float64), self._ygroup_at_x[j], out=f2)
            else:
                f2[...] = np.take(ry, tg.order, out=b["ryx"])
            cross2 = float(np.einsum("i,i->", f1, f2))
            out[j] = _rho(cross2, cubes_x, cubes_y, n_draws)
        return out

    def _block_counts(self, seed_seq: np.random.SeedSequence, k: int) -> Iterator[np.ndarray]:
        rng = np.random.default_rng(seed_seq)
        n = self.n
        for _ in range(k):
            yield np.bincount(rng.integers(0, n, size=n), minlength=n)

    def _blocks(self, n_boot: int, seed: int) -> list[tuple[int, int, np.random.SeedSequence]]:
        """The blocks of resamples; ``n_boot`` is checked here (0 to :data:`MAX_RESAMPLES`, as every
        command takes it), before it sizes any array or list."""
        check_count(n_boot, "n_boot", high=MAX_RESAMPLES)
        children = np.random.SeedSequence(seed).spawn(-(-n_boot // BLOCK))
        return [(i * BLOCK, min(BLOCK, n_boot - i * BLOCK), ss) for i, ss in enumerate(children)]

    def counts(self, n_boot: int, seed: int) -> Iterator[np.ndarray]:
        """Yield ``n_boot`` seeded multinomial count vectors (length n, base order): resamples
        ``b·BLOCK … b·BLOCK + BLOCK − 1`` come from the b-th child of ``SeedSequence(seed)``."""
        for _, k, ss in self._blocks(n_boot, seed):
            yield from self._block_counts(ss, k)

    def run(self, n_boot: int, seed: int, *, progress: bool = False, threads: int | None = None) -> np.ndarray:
        """ρ for ``n_boot`` seeded resamples: array n_boot × n_predictors (NaN where a resample is
        constant in a variable; callers count those). Blocks of resamples run on ``threads``
        threads (default :func:`default_threads`); the result does not depend on it."""
        blocks = self._blocks(n_boot, seed)
        out = np.empty((n_boot, len(self._xs)))
        threads = default_threads() if threads is None else max(1, int(threads))
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=n_boot, desc="bootstrap", unit="resample", disable=None)

        def work(block: tuple[int, int, np.random.SeedSequence], ws: _Workspace) -> None:
            start, k, ss = block
            for i, c in enumerate(self._block_counts(ss, k)):
                out[start + i] = self._rho(_compact(c), self.n, ws)
            if bar is not None:
                bar.update(k)

        try:
            if threads == 1 or len(blocks) == 1:
                for block in blocks:
                    work(block, self._ws)
            else:
                from concurrent.futures import ThreadPoolExecutor

                spaces = [self._ws] + [_Workspace(self.n) for _ in range(threads - 1)]
                queue = list(reversed(blocks))
                import threading

                lock = threading.Lock()

                def drain(ws: _Workspace) -> None:
                    while True:
                        with lock:
                            if not queue:
                                return
                            block = queue.pop()
                        work(block, ws)

                with ThreadPoolExecutor(max_workers=threads) as pool:
                    for f in [pool.submit(drain, ws) for ws in spaces]:
                        f.result()  # re-raises any worker error
        finally:
            if bar is not None:
                bar.close()
        return out


def bootstrap_spearman(y: np.ndarray, xs: list[np.ndarray] | np.ndarray, n_boot: int, seed: int, *,
                       progress: bool = False, threads: int | None = None) -> np.ndarray:
    """Bootstrap distribution of Spearman ρ(y, x) for each predictor over ``n_boot`` seeded
    resamples of the items (paired across predictors): array n_boot × n_predictors."""
    return BootstrapSpearman(y, xs).run(n_boot, seed, progress=progress, threads=threads)


def spearman_ci(y: np.ndarray, x: np.ndarray, *, n_boot: int, seed: int, level: float = 0.95,
                progress: bool = False, threads: int | None = None) -> tuple[float, float | None, float | None, int]:
    """Spearman ρ(x, y) with a percentile bootstrap CI over ``n_boot`` seeded resamples of the items;
    returns (ρ, ci_low, ci_high, n_degenerate). Degenerate resamples (ρ undefined: a variable
    constant within the resample) are counted and left out of the percentiles."""
    rho = spearman(x, y, min_n=2)[0]
    if n_boot == 0:
        return rho, None, None, 0
    boot = bootstrap_spearman(y, x, n_boot, seed, progress=progress, threads=threads)[:, 0]
    ok = np.isfinite(boot)
    if not ok.any():
        return rho, None, None, int(n_boot)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(boot[ok], [alpha, 1.0 - alpha])
    return rho, float(lo), float(hi), int((~ok).sum())

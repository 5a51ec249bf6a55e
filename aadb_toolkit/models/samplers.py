"""Pair sampling for the ranking loss (paper §4.2, Table 5), in vectorised, seeded numpy.

All samplers work on the TRAIN split's canonical tables and return a :class:`PairSet` of image
indices (positions in the ``images`` table they were given), ordered so that the first image of
each pair is the preferred one (δ = +1 in Eq. 1):

- **cross-rater**: pairs of distinct images ordered by mean score. A pair with mean difference
  d is drawn with probability ∝ d**bias among pairs with d ≥ ``min_diff`` (and d > 0), so pairs
  with a clear order are favoured; ``bias = 0`` is uniform, larger ``bias`` is a harder large-margin rule.
  ``group_size`` restricts the pairs to a fixed random partition of the images into groups of that
  size: as sparse a pair graph as same-HIT within-rater pairs, without their shared raters.
- **within-rater**: pairs of images rated by the same rater, ordered by that rater's own scores;
  pairs the rater scored equally are skipped. ``weighting="pairs"`` draws uniformly over all such
  pairs (heavy raters contribute in proportion to their number of pairs); ``"ratings"`` draws a
  rating uniformly and then a partner among the same rater's ratings (raters weigh by workload).
- **within-&-cross**: a share ``within_share`` of within-rater pairs, the rest cross-rater, shuffled.

Pairs are drawn with replacement (duplicates are possible when n_pairs approaches the number of
distinct pairs). The regression target of every image stays its mean score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import InputError

#: Pair-sampling strategies a config may name (``[pairs] strategy``).
STRATEGIES: tuple[str, ...] = ("none", "cross", "within", "within_cross")
WITHIN_WEIGHTINGS: tuple[str, ...] = ("pairs", "ratings")
#: Source codes stored in :attr:`PairSet.source`.
CROSS, WITHIN = 0, 1
_CHUNK_MIN, _CHUNK_MAX = 1 << 16, 1 << 22
#: Chunks of draws either sampler tries before it gives up on pairs it rarely accepts (never loops forever).
_MAX_CHUNKS = 10_000


@dataclass(frozen=True)
class PairSet:
    """Sampled pairs: ``first[k]`` should rank at or above ``second[k]``; ``rater`` is the rater
    index (into ``raters``) for within-rater pairs and −1 for cross-rater ones."""

    first: np.ndarray
    second: np.ndarray
    source: np.ndarray
    rater: np.ndarray
    raters: np.ndarray

    def __len__(self) -> int:
        return len(self.first)


def _empty() -> PairSet:
    e = np.zeros(0, np.int64)
    return PairSet(e, e.copy(), np.zeros(0, np.int8), e.copy(), np.zeros(0, object))


def cross_rater_pairs(scores: np.ndarray, n_pairs: int, rng: np.random.Generator, *,
                      min_diff: float = 0.0, bias: float = 1.0, group_size: int = 0) -> PairSet:
    """``n_pairs`` pairs of image indices ordered by ``scores``, P ∝ |Δscore|**bias for |Δ| ≥ min_diff.

    ``group_size`` > 0 draws both images of a pair from one of a fixed random partition of the
    images into groups of that size (the last may be smaller), so that the pairs link images as
    sparsely as same-HIT within-rater pairs do (a HIT's size), but regardless of who rated them.
    """
    scores = np.asarray(scores, dtype=float)
    n = len(scores)
    if group_size < 0 or group_size == 1:
        raise InputError(f"cross-rater group size must be 0 or at least 2, got {group_size}",
                         field="pairs.cross_group_size")
    if n_pairs == 0:
        return _empty()
    if not np.isfinite(scores).all():
        raise InputError(f"{int((~np.isfinite(scores)).sum())} of {n} image scores are not finite (NaN/inf); "
                         "cross-rater pairs need every image's mean score", field="score")
    if n < 2 or np.ptp(scores) <= 0 or np.ptp(scores) < min_diff:
        raise InputError(f"cannot draw cross-rater pairs: {n} images with score range {np.ptp(scores) if n else 0:.4g} "
                         f"(min_diff {min_diff})", field="pairs.cross_min_diff")
    d_max = float(np.ptp(scores))
    draw = (_grouped_draw(scores, group_size, min_diff, rng) if group_size
            else (lambda m: (rng.integers(0, n, m), rng.integers(0, n, m))))
    firsts, seconds, have, tries = [], [], 0, 0
    while have < n_pairs:
        m = int(np.clip(2 * (n_pairs - have), _CHUNK_MIN, _CHUNK_MAX))
        a, b = draw(m)
        d = np.abs(scores[a] - scores[b])
        keep = (d > 0) & (d >= min_diff)
        if bias > 0:
            keep &= rng.random(m) < (d / d_max) ** bias
        a, b = a[keep], b[keep]
        swap = scores[a] < scores[b]
        firsts.append(np.where(swap, b, a))
        seconds.append(np.where(swap, a, b))
        have += len(a)
        tries += 1
        if tries > _MAX_CHUNKS:
            raise InputError("cross-rater sampling accepts too few pairs; lower pairs.cross_min_diff or cross_bias",
                             field="pairs.cross_min_diff")
    first = np.concatenate(firsts)[:n_pairs]
    second = np.concatenate(seconds)[:n_pairs]
    return PairSet(first, second, np.full(n_pairs, CROSS, np.int8), np.full(n_pairs, -1, np.int64), np.zeros(0, object))


def _grouped_draw(scores: np.ndarray, group_size: int, min_diff: float, rng: np.random.Generator):
    """A function drawing ``m`` image pairs (a, b) uniformly over the ordered pairs inside the
    groups of a random partition of the images into groups of ``group_size``; as within-rater
    pairs skip raters who scored their images alike, groups without two scores ``min_diff`` apart
    are never drawn."""
    n = len(scores)
    perm = rng.permutation(n)
    starts = np.arange(0, n, group_size)
    sizes = np.minimum(group_size, n - starts)
    grouped = scores[perm]
    spread = np.maximum.reduceat(grouped, starts) - np.minimum.reduceat(grouped, starts)
    w = np.where((spread > 0) & (spread >= min_diff), sizes.astype(float) ** 2, 0.0)
    if not w.any():
        raise InputError(f"cannot draw cross-rater pairs in groups of {group_size}: no group holds two scores "
                         f"at least {min_diff:g} apart; raise pairs.cross_group_size", field="pairs.cross_group_size")
    w /= w.sum()

    def draw(m: int) -> tuple[np.ndarray, np.ndarray]:
        _, ia, ib = _two_members(starts, sizes, w, m, rng)
        return perm[ia], perm[ib]
    return draw


def _two_members(starts: np.ndarray, counts: np.ndarray, w: np.ndarray, m: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``m`` draws of a group (a rater's ratings, or a group of images) with probabilities ``w``,
    then of two of its members uniformly, with replacement: the groups drawn and the two members'
    positions in the group-sorted array (group k occupies ``starts[k]`` … ``+ counts[k]``)."""
    group = rng.choice(len(starts), size=m, p=w)
    ia = starts[group] + (rng.random(m) * counts[group]).astype(np.int64)
    ib = starts[group] + (rng.random(m) * counts[group]).astype(np.int64)
    return group, ia, ib


TIES: tuple[str, ...] = ("skip", "keep")


def within_rater_pairs(images: pd.DataFrame, ratings: pd.DataFrame, n_pairs: int, rng: np.random.Generator, *,
                       weighting: str = "pairs", same_hit: bool = False, ties: str = "skip") -> PairSet:
    """``n_pairs`` pairs of images rated by the same rater, ordered by that rater's scores.

    ``same_hit`` draws both images from one assignment (HIT) of the rater, so a per-session
    offset cancels; ``ties="keep"`` keeps pairs the rater scored equally (δ = +1, Eq. 1 literally).
    """
    if ties not in TIES:
        raise InputError(f"unknown ties {ties!r}; expected one of {TIES}", field="pairs.ties")
    if weighting not in WITHIN_WEIGHTINGS:
        raise InputError(f"unknown weighting {weighting!r}; expected one of {WITHIN_WEIGHTINGS}", field="pairs.within_weighting")
    if n_pairs == 0:
        return _empty()
    g = _group_by_rater(images, ratings, same_hit)
    w = _rater_weights(g, ties, weighting)
    first, second, rater = _draw_ordered_pairs(g, w, n_pairs, rng, ties)
    names = [str(x).split("\x1f")[0] for x in g.raters] if same_hit else list(g.raters)
    return PairSet(first, second, np.full(n_pairs, WITHIN, np.int8), rater, np.asarray(names, dtype=object))


@dataclass(frozen=True)
class _RaterGroups:
    """The training images' ratings sorted by rater: rater code, image position and score of each,
    and each rater's count and first index."""

    raters: pd.Index
    rater_of: np.ndarray
    image_of: np.ndarray
    score_of: np.ndarray
    counts: np.ndarray
    starts: np.ndarray


def _group_by_rater(images: pd.DataFrame, ratings: pd.DataFrame, same_hit: bool) -> _RaterGroups:
    """Check the ratings of the training images and group them by rater (by rater and HIT when ``same_hit``)."""
    pos = pd.Series(np.arange(len(images)), index=pd.Index(images["image_id"]))
    r = ratings[ratings["image_id"].isin(pos.index)]
    for col in ("rater_id", "score"):
        missing = int(r[col].isna().sum())
        if missing:
            raise InputError(f"{missing} ratings of training images have no {col} (NaN); within-rater pairs need "
                             "every rating's rater and score", field=col)
    if same_hit:  # a "rater" is one rater's session: pairs never cross HITs
        if "batch_id" not in r.columns:
            raise InputError("same-HIT pairs need the ratings' batch_id column", field="pairs.same_hit")
        r = r.assign(rater_id=r["rater_id"].astype(str) + "\x1f" + r["batch_id"].astype(str))
    codes, raters = pd.factorize(r["rater_id"], sort=True)
    order = np.argsort(codes, kind="stable")
    rater_of = codes[order].astype(np.int64)
    counts = np.bincount(rater_of, minlength=len(raters)).astype(np.int64)
    return _RaterGroups(raters=raters, rater_of=rater_of,
                        image_of=pos.loc[r["image_id"].to_numpy()[order]].to_numpy(np.int64),
                        score_of=r["score"].to_numpy(float)[order], counts=counts,
                        starts=np.concatenate([[0], np.cumsum(counts)[:-1]]))


def _rater_weights(g: _RaterGroups, ties: str, weighting: str) -> np.ndarray:
    """Each rater's probability of being drawn (by pairs or by ratings); zero for raters who
    cannot contribute a pair."""
    # a rater can contribute only if they scored at least two of these images differently; two
    # scores of one image (a worker who met the photo in two HITs) are no pair
    lo = np.full(len(g.raters), np.inf)
    hi = np.full(len(g.raters), -np.inf)
    np.minimum.at(lo, g.rater_of, g.score_of)
    np.maximum.at(hi, g.rater_of, g.score_of)
    distinct = np.bincount(np.unique(np.stack([g.rater_of, g.image_of]), axis=1)[0], minlength=len(g.raters))
    usable = (distinct >= 2) & ((hi > lo) | (ties == "keep"))
    if not usable.any():
        raise InputError("cannot draw within-rater pairs: no rater scored two training images differently",
                         field="pairs.strategy")
    if weighting == "pairs":
        w = np.where(usable, g.counts.astype(float) ** 2, 0.0)
    else:
        w = np.where(usable, g.counts.astype(float), 0.0)
    w /= w.sum()
    return w


def _draw_ordered_pairs(g: _RaterGroups, w: np.ndarray, n_pairs: int, rng: np.random.Generator,
                        ties: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw rater, then two of their ratings, in chunks until ``n_pairs`` pairs are kept; each pair
    ordered higher score first. Returns the first and second image positions and the rater codes."""
    firsts, seconds, who, have, tries = [], [], [], 0, 0
    while have < n_pairs:
        tries += 1
        if tries > _MAX_CHUNKS:  # usable raters always give pairs, but some only rarely
            raise InputError(f"within-rater sampling kept {have} of {n_pairs} pairs in {_MAX_CHUNKS:,} draws: the raters' "
                             "scores rarely differ on two images; lower pairs.n_pairs", field="pairs.n_pairs")
        m = int(np.clip(2 * (n_pairs - have), _CHUNK_MIN, _CHUNK_MAX))
        rr, ia, ib = _two_members(g.starts, g.counts, w, m, rng)
        sa, sb = g.score_of[ia], g.score_of[ib]
        keep = ((sa != sb) | (ties == "keep")) & (g.image_of[ia] != g.image_of[ib])
        ia, ib, sa, sb, rr = ia[keep], ib[keep], sa[keep], sb[keep], rr[keep]
        swap = sa < sb
        firsts.append(g.image_of[np.where(swap, ib, ia)])
        seconds.append(g.image_of[np.where(swap, ia, ib)])
        who.append(rr)
        have += len(ia)
    first = np.concatenate(firsts)[:n_pairs]
    second = np.concatenate(seconds)[:n_pairs]
    return first, second, np.concatenate(who)[:n_pairs].astype(np.int64)


def sample_pairs(images: pd.DataFrame, ratings: pd.DataFrame, *, strategy: str, n_pairs: int, seed: int,
                 within_share: float = 0.5, min_diff: float = 0.0, bias: float = 1.0,
                 weighting: str = "pairs", same_hit: bool = False, ties: str = "skip",
                 cross_group_size: int = 0) -> PairSet:
    """Draw ``n_pairs`` pairs from the training ``images`` (and their ``ratings``) by ``strategy``.

    ``images`` must hold ``image_id`` and ``score`` (mean rescaled to [0, 1]); ``min_diff`` is on
    that scale. Ratings of images not in ``images`` are ignored. Seeded and deterministic.
    """
    if strategy not in STRATEGIES:
        raise InputError(f"unknown pair strategy {strategy!r}; expected one of {STRATEGIES}", field="pairs.strategy")
    if n_pairs < 0:
        raise InputError(f"n_pairs must be ≥ 0, got {n_pairs}", field="pairs.n_pairs")
    rng = np.random.default_rng([seed, 0x5A17])
    scores = images["score"].to_numpy(float)
    if strategy == "none" or n_pairs == 0:
        return _empty()
    if strategy == "cross":
        return cross_rater_pairs(scores, n_pairs, rng, min_diff=min_diff, bias=bias, group_size=cross_group_size)
    if strategy == "within":
        return within_rater_pairs(images, ratings, n_pairs, rng, weighting=weighting, same_hit=same_hit, ties=ties)
    if not 0.0 <= within_share <= 1.0:
        raise InputError(f"within_share must be in [0, 1], got {within_share}", field="pairs.within_share")
    n_within = int(round(n_pairs * within_share))
    w = within_rater_pairs(images, ratings, n_within, rng, weighting=weighting, same_hit=same_hit, ties=ties)
    c = cross_rater_pairs(scores, n_pairs - n_within, rng, min_diff=min_diff, bias=bias, group_size=cross_group_size)
    perm = rng.permutation(n_pairs)
    return PairSet(
        first=np.concatenate([w.first, c.first])[perm],
        second=np.concatenate([w.second, c.second])[perm],
        source=np.concatenate([w.source, c.source])[perm],
        rater=np.concatenate([w.rater, c.rater])[perm],
        raters=w.raters,
    )

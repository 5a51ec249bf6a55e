"""Simulated AMT workers: the long-tail workload, who rates which HIT, and what they answer."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import schema
from ..errors import InputError
from ._model import Model, load_model, rng

_ID_CHARS = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))


@dataclass(frozen=True)
class AssignmentPlan:
    """Who works on which HIT: ``hit_workers[h]`` are the 5 distinct workers (indices into
    ``workers``) of HIT ``h``; ``workers`` has ``worker_id`` (a raw-style AMT WorkerId),
    ``n_hits`` and ``n_images``."""

    n_images: int
    seed: int
    workers: pd.DataFrame
    hit_workers: np.ndarray  # (n_hits, RATERS_PER_BATCH) int

    @property
    def n_hits(self) -> int:
        return int(self.hit_workers.shape[0])


def amt_ids(gen: np.random.Generator, n: int, length: int, prefix: str = "") -> list[str]:
    """``n`` distinct random upper-case alphanumeric ids of ``length`` characters (AMT style)."""
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        draw = gen.integers(0, len(_ID_CHARS), size=(n - len(out), length))
        for row in _ID_CHARS[draw]:
            s = prefix + "".join(row)
            if s not in seen:
                seen.add(s)
                out.append(s)
    return out


def n_workers_for(n_images: int, model: Model | None = None) -> int:
    """Size of the worker pool: 19 per 1,000 images (190 at full size), at least 5."""
    model = model or load_model()
    n_hits = n_images // schema.IMAGES_PER_BATCH
    pool = round(model.raters["workers_per_1000_images"] * n_images / 1000)
    return int(min(max(schema.RATERS_PER_BATCH, pool), n_hits * schema.RATERS_PER_BATCH))


def workload_counts(n_workers: int, n_hits: int, gen: np.random.Generator,
                    model: Model | None = None) -> np.ndarray:
    """HITs per worker (heaviest first): a stratified sample of the calibrated long-tail curve,
    each at most ``n_hits``, summing to exactly ``n_hits * 5``."""
    model = model or load_model()
    wl = model.workload
    total = n_hits * schema.RATERS_PER_BATCH
    u = (np.arange(n_workers) + gen.random(n_workers)) / n_workers
    counts = np.ones(n_workers, dtype=np.int64)
    one, two, o100, o200 = (wl["one_batch_from"], wl["two_batches_from"], wl["over_100_images"],
                            wl["over_200_images"])
    counts[(u >= two) & (u < one)] = 2
    m = (u >= o100) & (u < two)  # 3..10 batches, log-linear in u
    counts[m] = np.rint(np.exp(np.log(3) + np.log(10 / 3) * (two - u[m]) / (two - o100)))
    m = (u >= o200) & (u < o100)  # 11..20 batches
    counts[m] = np.rint(11 + 9 * (o100 - u[m]) / (o100 - o200))
    tail = u < o200
    cap = max(1, min(n_hits, int(np.ceil(wl["max_share_of_hits"] * n_hits))))
    counts = np.minimum(counts, cap)
    need = total - int(counts[~tail].sum())
    if tail.any():
        depth = (o200 - u[tail]) / o200  # 0 at the tail's start, 1 for the heaviest worker

        def tail_counts(k: float) -> np.ndarray:
            return np.minimum(np.rint(21 * np.exp(k * depth)), cap).astype(np.int64)

        lo, hi = 0.0, 12.0  # bisection on the tail's steepness (log HITs per unit of depth)
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if tail_counts(mid).sum() <= need else (lo, mid)
        counts[tail] = tail_counts(lo)
    return _repair_total(counts, total, cap, n_hits)


def _repair_total(counts: np.ndarray, total: int, cap: int, n_hits: int) -> np.ndarray:
    """Add to (or take from) the heaviest workers until the counts sum to ``total``; the soft
    cap gives way to the hard one (``n_hits``) only when the pool is too small."""
    counts = counts.copy()
    diff = total - int(counts.sum())
    order = np.argsort(-counts, kind="stable")
    for limit in (cap, n_hits):
        if diff <= 0:
            break
        for i in order:
            add = min(limit - counts[i], diff)
            counts[i] += add
            diff -= add
            if diff == 0:
                break
    while diff < 0:
        i = int(np.argmax(counts))
        if counts[i] <= 1:
            raise ValueError("cannot fit the workload: fewer assignments than workers")
        counts[i] -= 1
        diff += 1
    return counts


def assign_workers(counts: np.ndarray, n_hits: int, gen: np.random.Generator) -> np.ndarray:
    """Place each worker on ``counts[i]`` distinct HITs so every HIT gets exactly 5 distinct
    workers (Gale–Ryser greedy: heaviest worker first, onto the HITs with most open slots)."""
    capacity = np.full(n_hits, schema.RATERS_PER_BATCH, dtype=np.int64)
    members: list[list[int]] = [[] for _ in range(n_hits)]
    order = np.lexsort((gen.random(len(counts)), -counts))
    for w in order:
        k = int(counts[w])
        key = capacity + 0.5 * gen.random(n_hits)
        chosen = np.argpartition(-key, k - 1)[:k]
        if (capacity[chosen] <= 0).any():
            raise RuntimeError("assignment plan infeasible (this is a bug)")
        capacity[chosen] -= 1
        for h in chosen:
            members[h].append(int(w))
    out = np.array(members, dtype=np.int64)
    out.sort(axis=1)
    return out


def sample_assignment_plan(n_images: int, seed: int = 0, model: Model | None = None) -> AssignmentPlan:
    """The workload and HIT membership of a release of ``n_images`` images, without drawing any
    image: the same plan :func:`simulate` uses for that size and seed."""
    check_n_images(n_images)
    model = model or load_model()
    n_hits = n_images // schema.IMAGES_PER_BATCH
    gen = rng(seed, "workload")
    n_workers = n_workers_for(n_images, model)
    counts = workload_counts(n_workers, n_hits, gen, model)
    hit_workers = assign_workers(counts, n_hits, gen)
    ids = amt_ids(rng(seed, "ids", 0), n_workers, 13, prefix="A")
    workers = pd.DataFrame({"worker_id": ids, "n_hits": counts,
                            "n_images": counts * schema.IMAGES_PER_BATCH})
    return AssignmentPlan(n_images, seed, workers, hit_workers)


def check_n_images(n_images: int) -> None:
    """Releases hold whole HITs: ``n_images`` must be a positive multiple of 10."""
    if not isinstance(n_images, (int, np.integer)) or n_images < schema.IMAGES_PER_BATCH \
            or n_images % schema.IMAGES_PER_BATCH:
        raise InputError(f"n_images must be a positive multiple of {schema.IMAGES_PER_BATCH} "
                         f"(whole HITs), got {n_images!r}", field="n_images")


def sample_worker_traits(plan: AssignmentPlan, seed: int, random_rater_share: float,
                         content_names: tuple[str, ...], model: Model | None = None) -> pd.DataFrame:
    """Each worker's bias, scale, noise, session-offset sd, taste (for content types, and for
    attributes: its own stream, zero at the default), whether they are careless (light workers
    only) and whether they answer at random."""
    model = model or load_model()
    r = model.raters
    gen = rng(seed, "workers")
    n = len(plan.workers)
    bias = gen.normal(0.0, r["bias_sd"], n)
    scale = np.exp(gen.normal(0.0, r["scale_log_sd"], n))
    taste = gen.normal(0.0, r["taste_sd"], (n, len(content_names)))
    t = np.clip(np.log(plan.workers["n_hits"].to_numpy()) / np.log(r["heavy_at_hits"]), 0, 1)
    level = _log_linear(r["noise_light"], r["noise_heavy"], t)
    session_sd = _log_linear(r["session_light"], r["session_heavy"], t)
    noise = level * np.exp(gen.normal(0.0, r["noise_log_sd"], n))
    # careless workers (light workers only): they barely look, so their scores follow quality weakly
    light = np.flatnonzero(plan.workers["n_hits"].to_numpy() <= r["careless_max_hits"])
    careless = np.zeros(n, dtype=bool)
    careless[light[rng(seed, "workers", 1).random(len(light)) < r["careless_share"]]] = True
    scale[careless] *= r["careless_signal"]
    n_random = int(round(random_rater_share * n))
    is_random = np.zeros(n, dtype=bool)
    is_random[gen.permutation(n)[:n_random]] = True
    out = plan.workers.copy()
    out["bias"], out["scale"], out["noise"], out["session_sd"] = bias, scale, noise, session_sd
    out["taste"] = [row for row in taste]
    taste_attr = rng(seed, "workers", 2).normal(0.0, r.get("taste_attribute_sd", 0.0), (n, len(schema.ATTRIBUTES)))
    out["taste_attributes"] = [row for row in taste_attr]
    out["is_random"] = is_random
    out["is_careless"] = careless
    return out


def _log_linear(light: float, heavy: float, t: np.ndarray) -> np.ndarray:
    """From ``light`` (t = 0) to ``heavy`` (t = 1), log-linearly; linearly where one is 0 (a
    setting that switches the term off)."""
    if light > 0 and heavy > 0:
        return np.exp((1 - t) * np.log(light) + t * np.log(heavy))
    return (1 - t) * light + t * heavy


def within_hit_contrast(q: np.ndarray, beta: float, ref_sd: float) -> np.ndarray:
    """Quality as a worker perceives it inside one HIT (rows of ``q``): the differences between
    the HIT's images stretched by ``(ref_sd / sd of the HIT)^beta`` (factor kept in [1/3, 3]), as
    raters spread their scores over the images in front of them; ranks within a HIT are kept."""
    if beta == 0:
        return q
    centre = q.mean(axis=1, keepdims=True)
    spread = q.std(axis=1, keepdims=True)
    factor = np.clip((ref_sd / np.maximum(spread, 1e-9)) ** beta, 1 / 3, 3)
    return centre + (q - centre) * factor


def rate(images: pd.DataFrame, strengths: np.ndarray, hit_of_assignment: np.ndarray,
         worker_of_assignment: np.ndarray, workers: pd.DataFrame, content_index: np.ndarray,
         seed: int, model: Model | None = None, decoy: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every assignment's answers: scores (n_assign, 10) in 1..5 and attribute votes
    (n_assign, 10, 11) in -1/0/+1. Images are ordered by HIT then slot. ``decoy`` (n_images, 11):
    the invisible strengths votes mix in when ``raters.attribute_informativeness`` < 1."""
    model = model or load_model()
    r = model.raters
    gen = rng(seed, "ratings")
    k = schema.IMAGES_PER_BATCH
    img = hit_of_assignment[:, None] * k + np.arange(k)[None, :]
    w = worker_of_assignment
    q = within_hit_contrast(images["latent_quality"].to_numpy()[img], r["range_effect"], r["range_ref_sd"])
    c = content_index[img]
    taste = np.stack(workers["taste"].to_numpy())[w[:, None], c]
    bias = workers["bias"].to_numpy()[w][:, None]
    scale = workers["scale"].to_numpy()[w][:, None]
    noise = workers["noise"].to_numpy()[w][:, None]
    # a per-assignment offset (the worker's calibration on this HIT): ranks within a HIT keep it,
    # comparisons across HITs do not; its own stream, so the other draws do not move
    session_sd = workers["session_sd"].to_numpy()[w][:, None]
    session = session_sd * rng(seed, "ratings", 1).standard_normal(len(w))[:, None]
    s = strengths[img]
    if r.get("taste_attribute_sd", 0.0) > 0:  # a rater's taste for attributes (zero at the default)
        taste = taste + np.einsum("anj,aj->an", s, np.stack(workers["taste_attributes"].to_numpy())[w])
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is refused just below, not warned of
        raw = 3 + bias + session + scale * (r["gain"] * q + taste) + noise * gen.standard_normal(q.shape)
    _refuse_non_finite(raw, "scores")
    scores = np.clip(np.rint(raw), schema.SCORE_MIN, schema.SCORE_MAX).astype(np.int64)
    a = float(r.get("attribute_informativeness", 1.0))
    if a != 1.0:  # votes describe the image only in part (1 at the default)
        if decoy is None:
            raise ValueError("attribute_informativeness < 1 needs the decoy strengths")
        s = a * s + np.sqrt(max(0.0, 1.0 - a * a)) * decoy[img]
    # votes are as noisy as the rater relative to a one-batch worker (noise_light); raters without
    # rating noise at all (noise_light = 0, a setting's choice) vote with vote_noise itself
    ratio = noise / r["noise_light"] if r["noise_light"] > 0 else np.ones_like(noise)
    vote_sd = r["vote_noise"] * ratio ** r["vote_noise_power"]
    e = gen.standard_normal(s.shape) * vote_sd[:, :, None]
    th = r["vote_threshold"]
    _refuse_non_finite(s + e, "attribute votes")
    votes = ((s + e) > th).astype(np.int64) - ((s + e) < -th).astype(np.int64)
    rand = workers["is_random"].to_numpy()[w]
    n_rand = int(rand.sum())
    if n_rand:
        scores[rand] = gen.integers(schema.SCORE_MIN, schema.SCORE_MAX + 1, (n_rand, k))
        votes[rand] = gen.integers(-1, 2, (n_rand, k, votes.shape[2]))
    return scores, votes


def _refuse_non_finite(raw: np.ndarray, what: str) -> None:
    """A consistency check before answers are rounded to integers: parameters inside their domains
    can still overflow (a gain of 1e308), and NaN cast to int64 would be written into the release
    as -9223372036854775808 with nothing said."""
    bad = ~np.isfinite(raw)
    if bad.any():
        raise InputError(f"the setting's parameters give {what} that are not finite numbers ({int(bad.sum())} of "
                         f"{bad.size}, e.g. {raw[bad].flat[0]}): some parameter is too large to compute with; "
                         "choose smaller values (docs/synthetic.md, Parameter domains)", field="model")

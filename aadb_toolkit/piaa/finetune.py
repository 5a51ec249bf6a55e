"""A second reference personalizer for the ``piaa`` protocol: per episode, fine-tune the generic
run's last layer with the paper's rank loss (Eq. 1) on the k support images.

The score of a regression head is linear in the frozen fc7 features, so fine-tuning its last layer
is the same as learning a correction Δ (d weights per episode, starting at 0) on top of the
generic score: ``personal(x) = generic(x) + Δ·(x − μ)`` (μ the support features' mean). The loss
is the hinge of Eq. 1 over every ordered pair of support images the rater scored differently,
``max(0, α − δ·(s_i − s_j))``, plus an L2 pull of Δ back to the generic model (it keeps a
personalizer of 10 images close to the model trained on thousands). Every episode is fitted at
once in torch (one batched gradient descent), so the whole protocol takes seconds.

Unlike the ridge personalizer (:mod:`.personalize`), it uses only the *order* of the rater's
scores on the support images, never their level: a rater's bias and scale cannot leak in.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .. import paper
from ..errors import InputError
from .layout import (CHOICE_DRAWS, best_penalty, corrected_queries, episode_layout, mean_episode_rho,
                     on_rater_scale, train_episodes)

#: The rank loss's margin α on the [0, 1] score scale (the paper's value on AADB).
DEFAULT_MARGIN: float = paper.RANK_MARGIN["aadb"]
#: L2 pulls towards the generic model the default chooses from on the train split
#: (:func:`choose_pull`), besides ∞ (no correction: the generic ranking), each a multiple of the
#: support features' mean squared (centred) norm: scale-free. The hinge's gradient is bounded, so
#: the correction is too: it moves a score by at most about 1 / pull on the [0, 1] scale (see
#: :func:`_fit`); 4 bounds it by one rating step (1 of the 1-5 scale's 4). (The first default, a
#: fixed 0.05, let it move scores 20 times the whole scale: it fitted each rater's noise and, on
#: raters without a taste, ranked 0.10 below the generic model; a fixed 4 still cost 0.004 on
#: some seeds; docs/models.md, "Recovery suite".)
PULL_GRID: tuple[float, ...] = (1.0, 2.0, 4.0, 16.0, 64.0)
#: Gradient steps of the batched fine-tune (plain gradient descent with a fixed step, see _fit).
DEFAULT_STEPS: int = 200
#: With ``guard``, an episode's fine-tune is kept only where held-out pairs of its support images
#: are ranked better than by the generic model by more than this many standard errors (see
#: :func:`_held_out_gain_ok`); elsewhere the episode keeps the generic ranking.
KEEP_SE: float = 2.0


def fit_rank_finetune(features: np.ndarray, generic: np.ndarray, episodes: pd.DataFrame, image_index: pd.Index,
                      *, margin: float = DEFAULT_MARGIN, pull: float | None = None,
                      steps: int = DEFAULT_STEPS, scale: float = 1.0, guard: bool = False,
                      train_ratings: pd.DataFrame | None = None, chosen: dict[int, float] | None = None) -> np.ndarray:
    """Personalized scores of the query rows of ``episodes`` (in their order), as
    :func:`~aadb_toolkit.piaa.personalize.fit_residual_ridge` (``scale``: the generic score's
    slope onto the raters' scale, :func:`~aadb_toolkit.piaa.personalize.generic_scale`) but
    fitted with the rank loss. The pull bounds the correction (about 1 / pull on the [0, 1]
    scale): ``pull``, or (None) per k the choice of :func:`choose_pull` on ``train_ratings`` (the
    train split's ``rater_id, image_id, score``; their images in ``image_index``), each one so
    chosen also put in ``chosen`` (k → pull), so that the caller can record it. ``guard`` also tests each
    episode's fine-tune on held-out pairs of its support images (:data:`KEEP_SE`) and keeps it
    only where it ranks them better than the generic model; it is off by default because with
    k = 10 such a test, done right, can almost never tell a taste from noise (it kept 1% of the
    episodes on null taste and 4% on planted taste), and it refits the fine-tune k(k − 1)/2 times."""
    if margin < 0 or (pull is not None and not pull > 0) or steps < 1:
        raise InputError(f"need margin ≥ 0, pull > 0, steps ≥ 1; got {margin}, {pull}, {steps}", field="finetune")
    ep_id, supp_rows, queries = episode_layout(episodes, image_index)
    rater_scale = on_rater_scale(generic, scale)
    n_ep = int(ep_id.max()) + 1 if ep_id.size else 0
    delta = np.zeros((n_ep, features.shape[1]), np.float64)
    centre = np.zeros((n_ep, features.shape[1]), np.float64)
    for k, (eps, img, target) in supp_rows.items():
        p_k = pull if pull is not None else choose_pull(features, generic, train_ratings, image_index, k=k,
                                                        margin=margin, steps=steps, scale=scale)
        if pull is None and chosen is not None:
            chosen[k] = p_k
        if math.isinf(p_k):  # no correction: Δ stays 0
            continue
        d, mu = _fit(features[img], rater_scale[img], target, margin, p_k, steps)
        if guard:
            d[~_held_out_gain_ok(features[img], rater_scale[img], target, margin, p_k, steps)] = 0.0
        delta[eps], centre[eps] = d, mu
    return corrected_queries(features, rater_scale, delta, centre, np.zeros(n_ep), queries)


def choose_pull(features: np.ndarray, generic: np.ndarray, train_ratings: pd.DataFrame | None,
                image_index: pd.Index, *, k: int, margin: float = DEFAULT_MARGIN, steps: int = DEFAULT_STEPS,
                scale: float = 1.0, draws: int = CHOICE_DRAWS, seed: int = 0) -> float:
    """The pull for episodes of ``k`` support images, chosen on the train split
    (:func:`~.layout.train_episodes`): the pull of :data:`PULL_GRID`, or ∞, whose fine-tunes rank
    the train episodes' queries best (mean within-episode ρ against the rater's own scores; ties:
    the larger pull). Ten images cannot tell one rater's taste from noise; the train split's
    raters together can tell whether tastes exist and how far ten images may move a score."""
    table = train_episodes(train_ratings, image_index, k, draws=draws, seed=seed)
    grid = (*PULL_GRID, math.inf)  # a pull of ∞ fits nothing: the generic ranking
    rhos = [mean_episode_rho(table, fit_rank_finetune(features, generic, table, image_index, margin=margin,
                                                      pull=p, steps=steps, scale=scale)) for p in grid]
    return best_penalty(grid, rhos, what="rank fine-tune: pull", table=table)


def _fit(x: np.ndarray, generic: np.ndarray, target: np.ndarray, margin: float, pull: float,
         steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Batched fine-tune: x (E, k, d) support features, generic (E, k), target (E, k) the rater's
    scores → Δ (E, d) and the support centres (E, d). The objective is convex in Δ; gradient
    descent with step 1/L (L a bound on its curvature's hinge-free part) keeps it stable."""
    import torch

    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))
    mu = xt.mean(dim=1)
    xc = xt - mu[:, None, :]
    g = torch.from_numpy(np.ascontiguousarray(generic, dtype=np.float64))
    t = torch.from_numpy(np.ascontiguousarray(target, dtype=np.float64))
    sign = torch.sign(t[:, :, None] - t[:, None, :])  # δ of every ordered pair; 0 for ties (skipped)
    n_pairs = torch.clamp((sign > 0).sum(dim=(1, 2)), min=1).to(torch.float64)
    scale = torch.clamp((xc * xc).sum(dim=2).mean(dim=1), min=1e-12)  # mean squared centred norm
    lam = pull * scale
    delta = torch.zeros(xt.shape[0], xt.shape[2], dtype=torch.float64)
    lr = 1.0 / (2 * lam + scale)  # per episode: the pull's curvature plus the features' scale
    for _ in range(steps):
        s = g + torch.einsum("ekd,ed->ek", xc, delta)
        diff = s[:, :, None] - s[:, None, :]
        active = ((sign > 0) & (margin - sign * diff > 0)).to(torch.float64)  # hinge violated, i scored above j
        # d/dΔ of Σ max(0, α − (s_i − s_j)) over the active pairs (i preferred) = −(x_i − x_j)
        coef = active.sum(dim=2) - active.sum(dim=1)  # per image: times it is the preferred minus the other
        grad = -torch.einsum("ek,ekd->ed", coef, xc) / n_pairs[:, None] + 2 * lam[:, None] * delta
        delta = delta - lr[:, None] * grad
    return delta.numpy(), mu.numpy()


def _held_out_gain_ok(x: np.ndarray, generic: np.ndarray, target: np.ndarray, margin: float, pull: float,
                      steps: int) -> np.ndarray:
    """Per episode (E,): whether the fine-tune ranks held-out support images better than the
    generic model. Leave-pair-out: for every pair (i, j) of support images, the fine-tune is
    refitted on the other k − 2 and the pair's order checked for the refit and for the generic
    scores, where the rater scored i and j differently (ties of a model's scores count half); the
    pair's gain is the difference. Both images of a pair are held out: a refit that has seen j
    has fitted the noise of j's score, which decides the pair's order as much as i's does, and
    credits the fine-tune for that (leave-one-out passed 20% of the episodes of raters without a
    taste, a 2-standard-error test should pass ~2%). Pairs that share an image are not
    independent, so the standard error of the mean gain is the jackknife's over support images,
    not the spread of the pairs. The fine-tune is kept where the mean gain exceeds KEEP_SE of them."""
    E, k, _ = x.shape
    gains = np.full((E, k, k), np.nan)
    for i in range(k):
        for j in range(i + 1, k):
            rest = np.r_[0:i, i + 1:j, j + 1:k]
            d, mu = _fit(x[:, rest], generic[:, rest], target[:, rest], margin, pull, steps)
            pair = [i, j]
            scores = generic[:, pair] + np.einsum("ekd,ed->ek", x[:, pair] - mu[:, None, :], d)
            gains[:, i, j] = gains[:, j, i] = _pair_concordance(scores, target[:, pair]) \
                - _pair_concordance(generic[:, pair], target[:, pair])
    mean, se = _pair_mean_and_jackknife_se(gains)
    return np.isfinite(se) & (mean > KEEP_SE * se) & (mean > 0)


def _pair_concordance(scores: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per episode, for one pair (columns 0 and 1): 1 where the scores order it as the rater did,
    0 where they reverse it, ½ where the scores tie; NaN where the rater scored both alike."""
    dt, ds = np.sign(target[:, 0] - target[:, 1]), np.sign(scores[:, 0] - scores[:, 1])
    return np.where(dt == 0, np.nan, np.where(ds == dt, 1.0, np.where(ds == 0, 0.5, 0.0)))


def _pair_mean_and_jackknife_se(gains: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per episode, from the symmetric (E, k, k) pair gains (NaN: no pair): the mean gain over the
    pairs, and its delete-one-image jackknife standard error (NaN where fewer than two images
    leave a pair when deleted)."""
    valid = np.isfinite(gains)
    g = np.where(valid, gains, 0.0)
    total, count = g.sum(axis=(1, 2)) / 2, valid.sum(axis=(1, 2)) / 2
    rest_total, rest_count = total[:, None] - g.sum(axis=2), count[:, None] - valid.sum(axis=2)
    ok = rest_count > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        loo = np.where(ok, rest_total / np.maximum(rest_count, 1), np.nan)  # the mean without image m
        n = ok.sum(axis=1)
        centred = np.where(ok, loo - np.nanmean(np.where(ok, loo, np.nan), axis=1, keepdims=True), 0.0)
        se = np.where(n > 1, np.sqrt((n - 1) / np.maximum(n, 1) * (centred ** 2).sum(axis=1)), np.nan)
    return mean, se

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

import numpy as np
import pandas as pd

from .. import paper
from ..errors import InputError
from .personalize import _episode_layout, _on_rater_scale

#: The rank loss's margin α on the [0, 1] score scale (the paper's value on AADB).
DEFAULT_MARGIN: float = paper.RANK_MARGIN["aadb"]
#: L2 pull towards the generic model, as a multiple of the support features' mean squared
#: (centred) norm: scale-free, chosen a priori, never on the queries.
DEFAULT_PULL: float = 0.05
#: Gradient steps of the batched fine-tune (plain gradient descent with a fixed step, see _fit).
DEFAULT_STEPS: int = 200
#: An episode's fine-tune is kept only where its support images, each held out in turn, are
#: ranked better than by the generic model by more than this many standard errors (see
#: :func:`_held_out_gain_ok`); elsewhere the episode keeps the generic ranking.
KEEP_SE: float = 2.0


def fit_rank_finetune(features: np.ndarray, generic: np.ndarray, episodes: pd.DataFrame, image_index: pd.Index,
                      *, margin: float = DEFAULT_MARGIN, pull: float = DEFAULT_PULL,
                      steps: int = DEFAULT_STEPS, scale: float = 1.0, guard: bool = True) -> np.ndarray:
    """Personalized scores of the query rows of ``episodes`` (in their order), as
    :func:`~aadb_toolkit.piaa.personalize.fit_residual_ridge` (``scale``: the generic score's
    slope onto the raters' scale, :func:`~aadb_toolkit.piaa.personalize.generic_scale`) but
    fitted with the rank loss. With ``guard`` (the default) an episode keeps its fine-tune only
    where held-out support images say it ranks better than the generic model (:data:`KEEP_SE`);
    ten images give about 40 ordered pairs, which a hinge fits whether or not the rater has a
    taste (without the guard the fine-tune ranked 0.12 below the generic model on null taste)."""
    if margin < 0 or pull <= 0 or steps < 1:
        raise InputError(f"need margin ≥ 0, pull > 0, steps ≥ 1; got {margin}, {pull}, {steps}", field="finetune")
    ep_id, supp_rows, (q_img, q_ep) = _episode_layout(episodes, image_index)
    generic = _on_rater_scale(generic, scale)  # on the raters' scale
    n_ep = int(ep_id.max()) + 1 if ep_id.size else 0
    delta = np.zeros((n_ep, features.shape[1]), np.float64)
    centre = np.zeros((n_ep, features.shape[1]), np.float64)
    for eps, img, target in supp_rows.values():
        d, mu = _fit(features[img], generic[img], target, margin, pull, steps)
        if guard:
            d[~_held_out_gain_ok(features[img], generic[img], target, margin, pull, steps)] = 0.0
        delta[eps], centre[eps] = d, mu
    x = features[q_img].astype(np.float64)
    return generic[q_img] + np.einsum("nd,nd->n", x - centre[q_ep], delta[q_ep])


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
    generic model. Each support image i in turn is left out, the fine-tune refitted on the other
    k − 1, and i's order against every other support image the rater scored differently is
    checked, for the refitted and for the generic scores (ties of a model's scores count half).
    The gain of image i is the difference of the two concordance rates; the fine-tune is kept
    where the mean gain over the held-out images exceeds KEEP_SE standard errors."""
    E, k, _ = x.shape
    gains = np.full((E, k), np.nan)
    for i in range(k):
        rest = np.r_[0:i, i + 1:k]
        d, mu = _fit(x[:, rest], generic[:, rest], target[:, rest], margin, pull, steps)
        scores = generic + np.einsum("ekd,ed->ek", x - mu[:, None, :], d)
        gains[:, i] = _concordance(scores, target, i) - _concordance(generic, target, i)
    n = np.isfinite(gains).sum(axis=1)
    mean = np.nanmean(np.where(n[:, None] > 0, gains, 0.0), axis=1)
    se = np.nanstd(np.where(n[:, None] > 1, gains, 0.0), axis=1, ddof=1) / np.sqrt(np.maximum(n, 1))
    return (n > 1) & (mean > KEEP_SE * se) & (mean > 0)


def _concordance(scores: np.ndarray, target: np.ndarray, i: int) -> np.ndarray:
    """Per episode, the share of support images j the rater scored differently from image i whose
    order against i the scores get right (ties of the scores count half); NaN where none differ."""
    dt = np.sign(target[:, [i]] - target)
    ds = np.sign(scores[:, [i]] - scores)
    valid = dt != 0
    agree = np.where(ds == dt, 1.0, np.where(ds == 0, 0.5, 0.0))
    with np.errstate(invalid="ignore"):
        return np.where(valid.any(axis=1), (agree * valid).sum(axis=1) / valid.sum(axis=1), np.nan)

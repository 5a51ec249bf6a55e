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


def fit_rank_finetune(features: np.ndarray, generic: np.ndarray, episodes: pd.DataFrame, image_index: pd.Index,
                      *, margin: float = DEFAULT_MARGIN, pull: float = DEFAULT_PULL,
                      steps: int = DEFAULT_STEPS, scale: float = 1.0) -> np.ndarray:
    """Personalized scores of the query rows of ``episodes`` (in their order), as
    :func:`~aadb_toolkit.piaa.personalize.fit_residual_ridge` (``scale``: the generic score's
    slope onto the raters' scale, :func:`~aadb_toolkit.piaa.personalize.generic_scale`) but
    fitted with the rank loss."""
    if margin < 0 or pull <= 0 or steps < 1:
        raise InputError(f"need margin ≥ 0, pull > 0, steps ≥ 1; got {margin}, {pull}, {steps}", field="finetune")
    ep_id, supp_rows, (q_img, q_ep) = _episode_layout(episodes, image_index)
    generic = _on_rater_scale(generic, scale)  # on the raters' scale
    n_ep = int(ep_id.max()) + 1 if ep_id.size else 0
    delta = np.zeros((n_ep, features.shape[1]), np.float64)
    centre = np.zeros((n_ep, features.shape[1]), np.float64)
    for eps, img, target in supp_rows.values():
        d, mu = _fit(features[img], generic[img], target, margin, pull, steps)
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

"""A reference personalizer for the ``piaa`` protocol: per episode, ridge regression on the frozen
fc7 features of a trained generic run, with the generic score as a fixed offset, so the model
learns the rater's *residual* from the k support images (as Ren et al., ICCV 2017, learn a
per-user residual). Fitting is vectorised over episodes: episodes of the same k are solved as one
batch of k × k systems (the dual form of ridge, as the features are wider than k).

The penalty is a multiple α of the support features' mean squared *centred* norm, so it is
scale-free and blind to the large common part of ReLU features (an earlier version used the raw
norm: on fc7 that is ~300× the spread, and every correction shrank to nothing — the personalizer
then equalled the generic model). By default each episode picks α from :data:`ALPHA_GRID` by
leave-one-out error on its own k support images (closed form), where α = ∞ means "no
correction": with nothing to learn (no taste), the support images say so and the personalizer
stays at the generic model instead of fitting noise.

The targets are the rater's own scores on the [0, 1] scale of the generic run
(:func:`aadb_toolkit.schema.rescale_score`). Because the protocol scores ranks within a rater, a
rater's bias and scale never change ρ; what the residual can pick up is the rater's taste for
kinds of content, to the extent that fc7 separates them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .. import schema
from .._registry import lookup
from ..errors import InputError
from . import episodes as ep
from .finetune import fit_rank_finetune
from .layout import episode_layout, on_rater_scale

#: The default ridge penalty: None, each episode's own choice from :data:`ALPHA_GRID` (a number
#: is a fixed multiple of the support images' mean squared centred feature norm, scale-free).
DEFAULT_ALPHA: float | None = None
#: Penalties each episode chooses from by leave-one-out on its support images (never the queries),
#: against "no correction", the generic model plus the rater's mean residual (the standard-error
#: rule of :func:`_standard_error_choice`).
ALPHA_GRID: tuple[float, ...] = (0.03, 0.1, 0.3, 1.0, 3.0)
#: The reference personalizer ``aadb personalize`` uses unless told (:data:`PERSONALIZERS`).
DEFAULT_METHOD: str = "ridge"
#: Episodes per batch of the vectorised solve, bounded so a batch's support features stay small.
_MAX_BLOCK_FLOATS: int = 16_000_000
#: A correction is kept where its leave-one-out errors beat the generic model's by more than this
#: many standard errors (2: about a one-sided 2.5% test per episode; the best of five penalties is
#: chosen first, so one standard error still let rating noise through, tests/piaa).
_SE_MULT: float = 2.0


def fit_residual_ridge(features: np.ndarray, generic: np.ndarray, episodes: pd.DataFrame, image_index: pd.Index,
                       *, alpha: float | None = DEFAULT_ALPHA, scale: float = 1.0) -> np.ndarray:
    """Personalized scores of the query rows of ``episodes`` (in their order).

    ``features`` (n, d) and ``generic`` (n,) are aligned with ``image_index`` (image ids). The
    generic score is first put on the raters' scale, b·generic, with b the slope of own scores on
    generic scores on the train split (``scale``, see :func:`generic_scale`). For each
    episode: residual r = own score − b·generic on the k support images; centred ridge of r on the
    centred features with penalty α·mean‖x − x̄‖²; query score = b·generic + fitted residual. α is
    ``alpha``, or (None) each episode's leave-one-out choice from :data:`ALPHA_GRID`."""
    if alpha is not None and not alpha > 0:
        raise InputError(f"alpha must be positive, got {alpha}", field="alpha")
    ep_id, supp_rows, qry = episode_layout(episodes, image_index)
    generic = on_rater_scale(generic, scale)
    n_ep = int(ep_id.max()) + 1 if ep_id.size else 0
    weights = np.zeros((n_ep, features.shape[1]), np.float64)
    centre = np.zeros((n_ep, features.shape[1]), np.float64)
    offset = np.zeros(n_ep, np.float64)
    for k, (eps, img, target) in supp_rows.items():
        per = max(1, _MAX_BLOCK_FLOATS // max(1, k * features.shape[1]))
        for a in range(0, len(eps), per):
            sl = slice(a, a + per)
            w, mu, r0 = _solve_block(features[img[sl]], target[sl] - generic[img[sl]], alpha)
            weights[eps[sl]], centre[eps[sl]], offset[eps[sl]] = w, mu, r0
    q_img, q_ep = qry
    # (features of the distinct query images) @ (all episodes' weights): small, then gather
    uniq, inv = np.unique(q_img, return_inverse=True)
    fitted = features[uniq].astype(np.float64) @ weights.T  # (n_query_images, n_episodes)
    bias = offset - np.einsum("ed,ed->e", centre, weights)
    return generic[q_img] + fitted[inv, q_ep] + bias[q_ep]


def generic_scale(train_scores: np.ndarray, train_targets: np.ndarray) -> float:
    """Slope b of the train images' mean scores (on [0, 1]) on the generic run's scores for them:
    the generic score on the raters' scale. A generic model can predict a compressed range (one
    that has mostly fitted the mean); without b its residuals on a rater's scores carry the
    quality signal it already ranks, and a 10-image fit of that signal swamps its ranking. Only the
    train split is read (the leakage rule of the piaa protocol); b ≥ 0, and 1 if undefined."""
    x = np.asarray(train_scores, dtype=np.float64)
    y = np.asarray(train_targets, dtype=np.float64)
    if x.size < 2 or not np.var(x) > 0:
        return 1.0
    return max(0.0, float(np.cov(x, y)[0, 1] / np.var(x, ddof=1)))


def _solve_block(x: np.ndarray, r: np.ndarray, alpha: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ridge for a batch of episodes: x (E, k, d) support features, r (E, k) residuals →
    weights (E, d), feature centres (E, d), residual means (E,). Solved in torch (float64): its
    batched eigendecomposition stays fast on a busy machine, where numpy's threaded LAPACK can stall."""
    import torch

    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))
    rt = torch.from_numpy(np.ascontiguousarray(r, dtype=np.float64))
    mu = xt.mean(dim=1)
    xc = xt - mu[:, None, :]
    r0 = rt.mean(dim=1)
    rc = rt - r0[:, None]
    k = xt.shape[1]
    gram = xc @ xc.transpose(1, 2)  # (E, k, k): the dual form, as d > k
    spread = torch.clamp(gram.diagonal(dim1=1, dim2=2).sum(dim=1) / k, min=1e-12)  # mean squared centred norm
    evals, evecs = torch.linalg.eigh(gram)
    evals = torch.clamp(evals, min=0.0)
    proj = (evecs.transpose(1, 2) @ rc[..., None])[..., 0]  # rc in the eigenbasis
    grid = ALPHA_GRID if alpha is None else (alpha,)
    fits = []
    for a_mult in grid:  # leave-one-out errors of each penalty, in closed form
        inv = 1.0 / (evals + (a_mult * spread)[:, None])
        coef = (evecs @ (inv * proj)[..., None])[..., 0]  # (G + λI)⁻¹ rc
        hat_diag = 1.0 / k + (evecs ** 2 * (evals * inv)[:, None, :]).sum(dim=2)
        fitted = (gram @ coef[..., None])[..., 0]
        fits.append((coef, ((rc - fitted) / torch.clamp(1.0 - hat_diag, min=1e-9)) ** 2))
    if alpha is not None:
        return _weights(xc, fits[0][0], mu, r0)
    return _weights(xc, _standard_error_choice(rc, k, fits), mu, r0)


def _standard_error_choice(rc, k: int, fits: list):
    """Per episode, the dual coefficients of the penalty with the least leave-one-out error, kept
    only where its errors beat the generic model's (α = ∞: no correction, only the mean residual)
    by more than :data:`_SE_MULT` standard errors of the paired difference over the k support
    images (the standard-error rule, leaning to the simplest model): ten images rarely show a
    taste that is not there, and the personalizer then stays at the generic ranking instead of
    fitting noise."""
    import torch

    err = torch.stack([e.mean(dim=1) for _, e in fits])  # (n_alpha, E)
    best = err.argmin(dim=0)
    ar = torch.arange(err.shape[1])
    coef = torch.stack([c for c, _ in fits])[best, ar]
    loo_best = torch.stack([e for _, e in fits])[best, ar]
    loo_generic = (rc / (1.0 - 1.0 / k)) ** 2  # the leave-one-out error of the mean residual alone
    gain = loo_generic - loo_best
    se = gain.std(dim=1, unbiased=True) / np.sqrt(k)
    keep = gain.mean(dim=1) > _SE_MULT * se
    return torch.where(keep[:, None], coef, torch.zeros_like(coef))


def _weights(xc, coef, mu, r0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Primal ridge weights (E, d) from the dual coefficients, with the centres and mean residuals."""
    w = (xc * coef[..., None]).sum(dim=1)
    return w.numpy(), mu.numpy(), r0.numpy()


#: The reference personalizers by name (``aadb personalize --method``): the residual ridge of this
#: module and the rank fine-tune of the last layer (:mod:`.finetune`); docs/models.md compares them.
#: Each takes (features, generic scores, episodes, image index, scale=, alpha=); only the ridge
#: reads ``alpha``.
PERSONALIZERS: dict[str, Callable[..., np.ndarray]] = {
    "ridge": lambda f, g, e, i, *, scale, alpha: fit_residual_ridge(f, g, e, i, alpha=alpha, scale=scale),
    "rank-finetune": lambda f, g, e, i, *, scale, alpha: fit_rank_finetune(f, g, e, i, scale=scale),
}
METHODS: tuple[str, ...] = tuple(PERSONALIZERS)


def personalize(run: str | Path, data, episodes: pd.DataFrame, *, alpha: float | None = DEFAULT_ALPHA,
                method: str = DEFAULT_METHOD, device: str | None = None, cache_dir: str | Path | None = None,
                progress: bool | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Personalized predictions (``rater_id,k,episode,image_id,score`` for every query row) and
    the run's generic predictions (``image_id,score`` for every episode image), by the reference
    personalizer ``method`` (:data:`METHODS`; ``alpha`` is the ridge's)."""
    from ..models.predict import predict, predict_features

    fit = lookup(PERSONALIZERS, method, what="personalizer", field="method")
    ep.check_episodes(episodes, data)
    ids = sorted(episodes["image_id"].astype(str).unique())
    generic, features = predict_features(run, data, ids, device=device, cache_dir=cache_dir, progress=progress)
    index = pd.Index(ids)
    train = data.split("train")
    train_pred = predict(run, data, "train", device=device, cache_dir=cache_dir, progress=progress)
    scale = generic_scale(train_pred["score"].to_numpy(), train.set_index("image_id").loc[train_pred["image_id"], "score"])
    scores = fit(features, generic, episodes, index, scale=scale, alpha=alpha)
    q = ep.queries(episodes)[list(ep.KEY_COLUMNS)].assign(score=scores)
    return q, pd.DataFrame({"image_id": ids, "score": generic})


def loop_lstsq_baseline(features: np.ndarray, generic: np.ndarray, episodes: pd.DataFrame, image_index: pd.Index,
                        *, alpha: float = DEFAULT_ALPHA, scale: float = 1.0) -> np.ndarray:
    """The same ridge (one fixed ``alpha``) fitted episode by episode with ``numpy.linalg.lstsq``
    on the augmented primal system (a Python loop over episodes): the benchmark's baseline and
    the tests' reference."""
    rows = image_index.get_indexer(episodes["image_id"].astype(str))
    target = schema.rescale_score(episodes["score"].to_numpy(dtype=float))
    generic = on_rater_scale(generic, scale)
    out = np.empty(int((episodes["role"] == ep.ROLES[1]).sum()))
    pos = 0
    for _, part in episodes.groupby(["k", "rater_id", "episode"], sort=False):
        idx = part.index.to_numpy()
        s = idx[(part["role"] == ep.ROLES[0]).to_numpy()]
        qi = idx[(part["role"] == ep.ROLES[1]).to_numpy()]
        x = features[rows[s]].astype(np.float64)
        mu = x.mean(axis=0)
        r = target[s] - generic[rows[s]]
        lam = alpha * max(float(((x - mu) ** 2).sum(axis=1).mean()), 1e-12)
        a = np.vstack([x - mu, np.sqrt(lam) * np.eye(x.shape[1])])
        b = np.concatenate([r - r.mean(), np.zeros(x.shape[1])])
        w = np.linalg.lstsq(a, b, rcond=None)[0]
        out[pos:pos + len(qi)] = generic[rows[qi]] + (features[rows[qi]] - mu) @ w + r.mean()
        pos += len(qi)
    return out

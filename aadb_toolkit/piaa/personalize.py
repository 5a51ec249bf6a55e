"""A reference personalizer for the ``piaa`` protocol: per episode, ridge regression on the frozen
fc7 features of a trained generic run, with the generic score as a fixed offset, so the model
learns the rater's *residual* from the k support images (as Ren et al., ICCV 2017, learn a
per-user residual). Fitting is vectorised over episodes: episodes of the same k are solved as one
batch of k × k systems (the dual form of ridge, as the features are wider than k).

The penalty is a multiple α of the support features' mean squared *centred* norm, so it is
scale-free and blind to the large common part of ReLU features (an earlier version used the raw
norm: on fc7 that is ~300× the spread, and every correction shrank to nothing — the personalizer
then equalled the generic model). By default α is chosen on the **train split** (:func:`choose_alpha`):
pseudo support sets of k train images of each rater, leave-one-out error pooled over all of them,
from :data:`ALPHA_GRID` and α = ∞ ("no correction"). Ten images cannot tell one rater's taste from
rating noise, but a population of raters can tell whether tastes exist at all, and how strongly
to trust ten images; the train split may be read (the generic run was fitted on it) where the
other episodes may not (their supports overlap this episode's queries). docs/models.md
("Recovery suite") has the history: a per-episode choice with a two-standard-error guard almost
never corrected, and a fixed α is right for one kind of features only.

The targets are the rater's own scores on the [0, 1] scale of the generic run
(:func:`aadb_toolkit.schema.rescale_score`). Because the protocol scores ranks within a rater, a
rater's bias and scale never change ρ; what the residual can pick up is the rater's taste for
kinds of content, to the extent that fc7 separates them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .. import schema
from .._registry import lookup
from ..errors import InputError
from . import episodes as ep
from .finetune import fit_rank_finetune
from .layout import CHOICE_DRAWS, best_penalty, corrected_queries, episode_layout, on_rater_scale, train_episodes

#: The default ridge penalty: None, chosen on the train split (:func:`choose_alpha`); a number is a
#: fixed multiple of the support images' mean squared centred feature norm (scale-free).
DEFAULT_ALPHA: float | None = None
#: Penalties the train-split choice picks from, besides α = ∞ (no correction: the generic ranking).
ALPHA_GRID: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
#: The reference personalizer ``aadb personalize`` uses unless told (:data:`PERSONALIZERS`).
DEFAULT_METHOD: str = "ridge"
#: The least slope of the generic score onto the raters' scale (:func:`generic_scale`): positive, so
#: the generic order survives, and small enough that the correction decides every other score.
MIN_GENERIC_SCALE: float = 1e-6
#: Episodes per batch of the vectorised solve, bounded so a batch's support features stay small.
_MAX_BLOCK_FLOATS: int = 16_000_000


def fit_residual_ridge(features: np.ndarray, generic: np.ndarray, episodes: pd.DataFrame, image_index: pd.Index,
                       *, alpha: float | None = DEFAULT_ALPHA, scale: float = 1.0,
                       train_ratings: pd.DataFrame | None = None, chosen: dict[int, float] | None = None) -> np.ndarray:
    """Personalized scores of the query rows of ``episodes`` (in their order).

    ``features`` (n, d) and ``generic`` (n,) are aligned with ``image_index`` (image ids). The
    generic score is first put on the raters' scale, b·generic, with b the slope of own scores on
    generic scores on the train split (``scale``, see :func:`generic_scale`). For each
    episode: residual r = own score − b·generic on the k support images; centred ridge of r on the
    centred features with penalty α·mean‖x − x̄‖²; query score = b·generic + fitted residual. α is
    ``alpha`` (math.inf: no correction), or (None) per k the choice of :func:`choose_alpha` on
    ``train_ratings`` (the train split's ``rater_id, image_id, score``; their images in ``image_index``),
    each one so chosen also put in ``chosen`` (k → α), so that the caller can record what was used."""
    if alpha is not None:
        alpha = _check_alpha(alpha)
    ep_id, supp_rows, qry = episode_layout(episodes, image_index)
    generic = on_rater_scale(generic, scale)
    n_ep = int(ep_id.max()) + 1 if ep_id.size else 0
    weights = np.zeros((n_ep, features.shape[1]), np.float64)
    centre = np.zeros((n_ep, features.shape[1]), np.float64)
    offset = np.zeros(n_ep, np.float64)
    for k, (eps, img, target) in supp_rows.items():
        a_k = alpha if alpha is not None else choose_alpha(
            features, generic, train_ratings, image_index, k=k)
        if alpha is None and chosen is not None:
            chosen[k] = a_k
        for sl in _blocks(len(eps), k, features.shape[1]):
            w, mu, r0 = _solve_block(features[img[sl]], target[sl] - generic[img[sl]], a_k)
            weights[eps[sl]], centre[eps[sl]], offset[eps[sl]] = w, mu, r0
    return corrected_queries(features, generic, weights, centre, offset, qry)


def choose_alpha(features: np.ndarray, generic: np.ndarray, train_ratings: pd.DataFrame | None,
                 image_index: pd.Index, *, k: int, draws: int = CHOICE_DRAWS, seed: int = 0) -> float:
    """The ridge penalty for episodes of ``k`` support images, chosen on the train split
    (:func:`~.layout.train_episodes`): the α of :data:`ALPHA_GRID`, or ∞, with the least
    leave-one-out error on the support images, pooled over every train episode (ties: the larger
    α). ``generic`` is already on the raters' scale. Without taste in the population this is ∞ or
    a large α (the generic ranking); with one, the α that k images of a rater can afford."""
    table = train_episodes(train_ratings, image_index, k, draws=draws, seed=seed)
    _, supp_rows, _ = episode_layout(table, image_index)
    (m, (_, img, target)), = supp_rows.items()
    grid = (*ALPHA_GRID, math.inf)
    totals = np.zeros(len(grid))
    for sl in _blocks(len(img), m, features.shape[1]):
        spec = _Spectrum.of(features[img[sl]], target[sl] - generic[img[sl]])
        totals += [float(spec.loo_errors(a).sum()) for a in grid]
    return best_penalty(grid, -totals, what="ridge: alpha", table=table)


def generic_scale(train_scores: np.ndarray, train_targets: np.ndarray) -> float:
    """Slope b of the train images' mean scores (on [0, 1]) on the generic run's scores for them:
    the generic score on the raters' scale. A generic model can predict a compressed range (one
    that has mostly fitted the mean); without b its residuals on a rater's scores carry the
    quality signal it already ranks, and a 10-image fit of that signal swamps its ranking. Only the
    train split is read (the leakage rule of the piaa protocol); 1 if undefined. b is at least
    :data:`MIN_GENERIC_SCALE`: a slope ≤ 0 (a generic model that ranks the train split no better
    than chance) must neither flip the generic order nor erase it, so "no correction" stays the
    generic ranking."""
    x = np.asarray(train_scores, dtype=np.float64)
    y = np.asarray(train_targets, dtype=np.float64)
    if x.size < 2 or not np.var(x) > 0:
        return 1.0
    return max(MIN_GENERIC_SCALE, float(np.cov(x, y)[0, 1] / np.var(x, ddof=1)))


def _check_alpha(alpha: float) -> float:
    if not alpha > 0:
        raise InputError(f"alpha must be positive, got {alpha}", field="alpha")
    return float(alpha)


def _blocks(n_sets: int, k: int, dim: int):
    """Slices of at most :data:`_MAX_BLOCK_FLOATS` support features each."""
    per = max(1, _MAX_BLOCK_FLOATS // max(1, k * dim))
    return [slice(a, a + per) for a in range(0, n_sets, per)]


class _Spectrum:
    """A batch of support sets x (E, k, d) with residuals r (E, k), centred, in the dual form (the
    features are wider than k): the eigendecomposition of the k × k Gram matrices, from which the
    ridge of every penalty and its leave-one-out errors follow in closed form. In torch (float64):
    its batched eigendecomposition stays fast on a busy machine, where numpy's threaded LAPACK can stall."""

    def __init__(self, xc, mu, rc, r0, gram, spread, evals, evecs):
        self.xc, self.mu, self.rc, self.r0, self.gram = xc, mu, rc, r0, gram
        self.spread, self.evals, self.evecs = spread, evals, evecs
        self.proj = (evecs.transpose(1, 2) @ rc[..., None])[..., 0]  # rc in the eigenbasis

    @classmethod
    def of(cls, x: np.ndarray, r: np.ndarray) -> _Spectrum:
        import torch

        xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))
        rt = torch.from_numpy(np.ascontiguousarray(r, dtype=np.float64))
        mu, r0 = xt.mean(dim=1), rt.mean(dim=1)
        xc, rc = xt - mu[:, None, :], rt - r0[:, None]
        gram = xc @ xc.transpose(1, 2)
        spread = torch.clamp(gram.diagonal(dim1=1, dim2=2).sum(dim=1) / xt.shape[1], min=1e-12)
        evals, evecs = torch.linalg.eigh(gram)
        return cls(xc, mu, rc, r0, gram, spread, torch.clamp(evals, min=0.0), evecs)

    def coef(self, alpha: float):
        """Dual coefficients (G + α·spread·I)⁻¹ rc, zero for α = ∞."""
        inv = 1.0 / (self.evals + (alpha * self.spread)[:, None])
        return (self.evecs @ (inv * self.proj)[..., None])[..., 0]

    def loo_errors(self, alpha: float) -> np.ndarray:
        """Squared leave-one-out errors (E, k) of the ridge with penalty α (∞: the mean residual alone)."""
        import torch

        k = self.rc.shape[1]
        if math.isinf(alpha):
            return ((self.rc / (1.0 - 1.0 / k)) ** 2).numpy()
        inv = 1.0 / (self.evals + (alpha * self.spread)[:, None])
        hat_diag = 1.0 / k + (self.evecs ** 2 * (self.evals * inv)[:, None, :]).sum(dim=2)
        fitted = (self.gram @ self.coef(alpha)[..., None])[..., 0]
        return (((self.rc - fitted) / torch.clamp(1.0 - hat_diag, min=1e-9)) ** 2).numpy()


def _solve_block(x: np.ndarray, r: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ridge with penalty ``alpha`` for a batch of episodes: x (E, k, d) support features, r (E, k)
    residuals → primal weights (E, d), feature centres (E, d), residual means (E,)."""
    spec = _Spectrum.of(x, r)
    w = (spec.xc * spec.coef(alpha)[..., None]).sum(dim=1)
    return w.numpy(), spec.mu.numpy(), spec.r0.numpy()


#: The reference personalizers by name (``aadb personalize --method``): the residual ridge of this
#: module and the rank fine-tune of the last layer (:mod:`.finetune`); docs/models.md compares them.
#: Each takes (features, generic scores, episodes, image index, scale=, alpha=, train_ratings=,
#: chosen=); only the ridge reads ``alpha``; both choose their penalty on ``train_ratings`` and
#: put each choice in ``chosen`` (k → penalty).
PERSONALIZERS: dict[str, Callable[..., np.ndarray]] = {
    "ridge": lambda f, g, e, i, *, scale, alpha, train_ratings, chosen: fit_residual_ridge(
        f, g, e, i, alpha=alpha, scale=scale, train_ratings=train_ratings, chosen=chosen),
    "rank-finetune": lambda f, g, e, i, *, scale, alpha, train_ratings, chosen: fit_rank_finetune(
        f, g, e, i, scale=scale, train_ratings=train_ratings, chosen=chosen),
}
METHODS: tuple[str, ...] = tuple(PERSONALIZERS)
#: The name of the penalty each personalizer chooses on the train split (:func:`personalizer_record`).
PENALTY_NAMES: dict[str, str] = {"ridge": "alpha", "rank-finetune": "pull"}


def personalizer_record(method: str, alpha: float | None, chosen: dict[int, float]) -> dict:
    """The ``personalizer`` field of the personalized predictions' model sidecar: the method, the
    ridge's α as given (``auto`` or a number) and, where penalties were chosen on the train split,
    each one per k (``{"alpha": {"10": 30.0}}``; ``"inf"``: no correction, which JSON cannot write
    as a number). The choice was only logged before: the sidecar now says, and lets one reproduce,
    what was used."""
    record: dict = {"method": method, "alpha": "auto" if alpha is None else alpha}
    if chosen:
        record["chosen"] = {PENALTY_NAMES[method]: {str(k): "inf" if math.isinf(v) else float(v)
                                                    for k, v in sorted(chosen.items())}}
    return record


def images_to_read(data, episodes: pd.DataFrame) -> list[str]:
    """The images whose run scores and features a personalizer reads: the episode images, then
    the train images that are not among them (each group sorted): the generic score's scale and
    the penalty come from the train split."""
    ids = sorted(episodes["image_id"].astype(str).unique())
    return ids + sorted(set(data.split("train")["image_id"].astype(str)) - set(ids))


def personalize_scores(data, episodes: pd.DataFrame, generic: np.ndarray, features: np.ndarray,
                       image_index: pd.Index, *, method: str = DEFAULT_METHOD,
                       alpha: float | None = DEFAULT_ALPHA, chosen: dict[int, float] | None = None) -> np.ndarray:
    """Scores of the query rows of ``episodes`` by the reference personalizer ``method``, from the
    run's scores and features of the images of ``image_index`` (:func:`images_to_read`): the
    generic score's slope onto the raters' scale and the train ratings the penalty is chosen on
    both come from ``data``'s train split; each penalty so chosen goes in ``chosen`` (k → penalty)."""
    fit = lookup(PERSONALIZERS, method, what="personalizer", field="method")
    train = data.split("train")
    targets = train.set_index(train["image_id"].astype(str))["score"]
    scale = generic_scale(generic[image_index.get_indexer(targets.index)], targets.to_numpy())
    ratings = data.ratings[data.ratings["image_id"].astype(str).isin(targets.index)]
    return fit(features, generic, episodes, image_index, scale=scale, alpha=alpha, train_ratings=ep.own_scores(ratings),
               chosen=chosen)


def personalize(run: str | Path, data, episodes: pd.DataFrame, *, alpha: float | None = DEFAULT_ALPHA,
                method: str = DEFAULT_METHOD, device: str | None = None, cache_dir: str | Path | None = None,
                progress: bool | None = None,
                chosen: dict[int, float] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Personalized predictions (``rater_id,k,episode,image_id,score`` for every query row) and
    the run's generic predictions (``image_id,score`` for every query image: what ``aadb score
    --generic`` reads), by the reference personalizer ``method`` (:data:`METHODS`; ``alpha`` is
    the ridge's), from the run's scores and features of the episode and train images
    (:func:`personalize_scores`; ``chosen`` receives the penalties chosen on the train split)."""
    from ..models.predict import predict_features

    lookup(PERSONALIZERS, method, what="personalizer", field="method")  # a bad name before any image is read
    ep.check_episodes(episodes, data)
    ids = images_to_read(data, episodes)
    generic, features = predict_features(run, data, ids, device=device, cache_dir=cache_dir, progress=progress)
    scores = personalize_scores(data, episodes, generic, features, pd.Index(ids), method=method, alpha=alpha,
                                chosen=chosen)
    q = ep.queries(episodes)[list(ep.KEY_COLUMNS)].assign(score=scores)
    query_ids = sorted(q["image_id"].astype(str).unique())
    return q, pd.DataFrame({"image_id": query_ids, "score": generic[pd.Index(ids).get_indexer(query_ids)]})


def loop_lstsq_baseline(features: np.ndarray, generic: np.ndarray, episodes: pd.DataFrame, image_index: pd.Index,
                        *, alpha: float, scale: float = 1.0) -> np.ndarray:
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

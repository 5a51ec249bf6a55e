"""A reference personalizer for the ``piaa`` protocol: per episode, ridge regression on the frozen
fc7 features of a trained generic run, with the generic score as a fixed offset, so the model
learns the rater's *residual* from the k support images (as Ren et al., ICCV 2017, learn a
per-user residual). Fitting is vectorised over episodes: episodes of the same k are solved as one
batch of k × k systems (the dual form of ridge, as the features are wider than k).

The targets are the rater's own scores on the [0, 1] scale of the generic run
(:func:`aadb_toolkit.schema.rescale_score`). Because the protocol scores ranks within a rater, a
rater's bias and scale never change ρ; what the residual can pick up is the rater's taste for
kinds of content, to the extent that fc7 separates them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import schema
from ..errors import InputError
from . import episodes as ep

#: Ridge penalty as a multiple of the mean squared feature norm of the support images (scale-free;
#: chosen a priori, never on the queries).
DEFAULT_ALPHA: float = 1.0
#: Episodes per batch of the vectorised solve, bounded so a batch's support features stay small.
_MAX_BLOCK_FLOATS: int = 16_000_000


def fit_residual_ridge(features: np.ndarray, generic: np.ndarray, episodes: pd.DataFrame, image_index: pd.Index,
                       *, alpha: float = DEFAULT_ALPHA) -> np.ndarray:
    """Personalized scores of the query rows of ``episodes`` (in their order).

    ``features`` (n, d) and ``generic`` (n,) are aligned with ``image_index`` (image ids). For each
    episode: residual r = own score − generic on the k support images; centred ridge of r on the
    centred features with penalty ``alpha``·mean‖x‖²; query score = generic + fitted residual."""
    if alpha <= 0:
        raise InputError(f"alpha must be positive, got {alpha}", field="alpha")
    ep_id, supp_rows, qry = _episode_layout(episodes, image_index)
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


def _solve_block(x: np.ndarray, r: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ridge for a batch of episodes: x (E, k, d) support features, r (E, k) residuals →
    weights (E, d), feature centres (E, d), residual means (E,). Solved in torch (float64): its
    batched solve stays fast on a busy machine, where numpy's threaded LAPACK can stall."""
    import torch

    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))
    rt = torch.from_numpy(np.ascontiguousarray(r, dtype=np.float64))
    mu = xt.mean(dim=1)
    xc = xt - mu[:, None, :]
    r0 = rt.mean(dim=1)
    k = xt.shape[1]
    gram = xc @ xc.transpose(1, 2)  # (E, k, k): the dual form, as d > k
    lam = alpha * torch.clamp((xt * xt).sum(dim=(1, 2)) / k, min=1e-12)  # × mean squared feature norm
    system = gram + lam[:, None, None] * torch.eye(k, dtype=torch.float64)
    a = torch.linalg.solve(system, (rt - r0[:, None])[..., None])[..., 0]
    w = (xc * a[..., None]).sum(dim=1)
    return w.numpy(), mu.numpy(), r0.numpy()


def _episode_layout(episodes: pd.DataFrame, image_index: pd.Index):
    """Episode numbers, per k the (episode numbers, support image rows (E, k), own targets (E, k)),
    and for the query rows (image rows, episode numbers)."""
    key = episodes["k"].astype(str) + "\t" + episodes["rater_id"].astype(str) + "\t" + episodes["episode"].astype(str)
    ep_id, _ = pd.factorize(key)
    rows = image_index.get_indexer(episodes["image_id"].astype(str))
    if (rows < 0).any():
        missing = episodes["image_id"].iloc[int(np.argmax(rows < 0))]
        raise InputError(f"no features for episode image {missing!r}", field="image_id")
    support = (episodes["role"] == ep.ROLES[0]).to_numpy()
    target = schema.rescale_score(episodes["score"].to_numpy(dtype=float))
    supp: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for k in sorted(episodes["k"].unique()):
        sel = support & (episodes["k"] == k).to_numpy()
        order = np.argsort(ep_id[sel], kind="stable")
        e = ep_id[sel][order]
        if e.size % int(k):
            raise InputError(f"an episode at k = {k} does not have exactly {k} support rows", field="role")
        eps = e.reshape(-1, int(k))
        if (eps != eps[:, :1]).any():
            raise InputError(f"an episode at k = {k} does not have exactly {k} support rows", field="role")
        supp[int(k)] = (eps[:, 0], rows[sel][order].reshape(-1, int(k)), target[sel][order].reshape(-1, int(k)))
    return ep_id, supp, (rows[~support], ep_id[~support])


def personalize(run: str | Path, data, episodes: pd.DataFrame, *, alpha: float = DEFAULT_ALPHA,
                device: str | None = None, cache_dir: str | Path | None = None,
                progress: bool | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Personalized predictions (``rater_id,k,episode,image_id,score`` for every query row) and
    the run's generic predictions (``image_id,score`` for every episode image)."""
    from ..models.predict import predict_features

    ep.check_episodes(episodes, data)
    ids = sorted(episodes["image_id"].astype(str).unique())
    generic, features = predict_features(run, data, ids, device=device, cache_dir=cache_dir, progress=progress)
    index = pd.Index(ids)
    scores = fit_residual_ridge(features, generic, episodes, index, alpha=alpha)
    q = ep.queries(episodes)[list(ep.KEY_COLUMNS)].assign(score=scores)
    return q, pd.DataFrame({"image_id": ids, "score": generic})


def loop_lstsq_baseline(features: np.ndarray, generic: np.ndarray, episodes: pd.DataFrame, image_index: pd.Index,
                        *, alpha: float = DEFAULT_ALPHA) -> np.ndarray:
    """The same ridge fitted episode by episode with ``numpy.linalg.lstsq`` on the augmented
    primal system (a Python loop over episodes): the benchmark's baseline and the tests' reference."""
    rows = image_index.get_indexer(episodes["image_id"].astype(str))
    target = schema.rescale_score(episodes["score"].to_numpy(dtype=float))
    out = np.empty(int((episodes["role"] == ep.ROLES[1]).sum()))
    pos = 0
    for _, part in episodes.groupby(["k", "rater_id", "episode"], sort=False):
        idx = part.index.to_numpy()
        s = idx[(part["role"] == ep.ROLES[0]).to_numpy()]
        qi = idx[(part["role"] == ep.ROLES[1]).to_numpy()]
        x = features[rows[s]].astype(np.float64)
        mu = x.mean(axis=0)
        r = target[s] - generic[rows[s]]
        lam = alpha * max(float((x * x).sum(axis=1).mean()), 1e-12)
        a = np.vstack([x - mu, np.sqrt(lam) * np.eye(x.shape[1])])
        b = np.concatenate([r - r.mean(), np.zeros(x.shape[1])])
        w = np.linalg.lstsq(a, b, rcond=None)[0]
        out[pos:pos + len(qi)] = generic[rows[qi]] + (features[rows[qi]] - mu) @ w + r.mean()
        pos += len(qi)
    return out

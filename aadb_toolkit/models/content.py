"""The content branch of the content-adaptive model (paper §4.4, §5.1): seeded k-means on
unit-length fc7 features of the training images (AADB, which has no content tags), and the
fine-tuning of ContClass — its own copy of the top layers plus a softmax classifier — on the
content labels, after which it is frozen for the joint stage.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from .devices import seed_torch


def unit_rows(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit Euclidean length (zero rows stay zero)."""
    return nn.functional.normalize(x.double(), dim=1)


def kmeans(x: torch.Tensor, k: int, *, seed: int, restarts: int = 4, iters: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded k-means (k-means++ seeding, Lloyd iterations, best of ``restarts`` by inertia).

    Returns ``(centroids (k, D), labels (N,))``. An emptied cluster is re-seeded at the point
    farthest from its centroid, so every cluster keeps at least one member.
    """
    x = x.double()
    n = x.shape[0]
    if n < k:
        raise InputError(f"k-means needs at least {k} training images for {k} content groups, got {n}",
                         field="content.clusters")
    best: tuple[float, torch.Tensor, torch.Tensor] | None = None
    for r in range(restarts):
        rng = np.random.default_rng([seed, 0xC0, r])
        c = _plus_plus(x, k, rng)
        labels = torch.zeros(n, dtype=torch.long)
        for _ in range(iters):
            d2 = torch.cdist(x, c) ** 2
            new = d2.argmin(1)
            for j in range(k):
                members = new == j
                if members.any():
                    c[j] = x[members].mean(0)
                else:  # re-seed an empty cluster at the worst-served point
                    far = int(d2.min(1).values.argmax())
                    c[j], new[far] = x[far], j
            if torch.equal(new, labels):
                break
            labels = new
        inertia = float((torch.cdist(x, c) ** 2).min(1).values.sum())
        if best is None or inertia < best[0] - 1e-12:
            best = (inertia, c.clone(), labels.clone())
    assert best is not None
    return best[1], best[2]


def _plus_plus(x: torch.Tensor, k: int, rng: np.random.Generator) -> torch.Tensor:
    c = [x[int(rng.integers(x.shape[0]))]]
    for _ in range(1, k):
        d2 = (torch.cdist(x, torch.stack(c)) ** 2).min(1).values.numpy()
        p = d2 / d2.sum() if d2.sum() > 0 else np.full(len(d2), 1 / len(d2))
        c.append(x[int(rng.choice(x.shape[0], p=p))])
    return torch.stack(c).clone()


def column_labels(values: np.ndarray, k: int, column: str) -> torch.Tensor:
    """Integer content categories of an images-table column (NaN → −1, unlabelled), checked to lie in [0, k)."""
    v = np.asarray(values, dtype=float)
    ok = ~np.isnan(v)
    bad = ok & ((v != np.round(v)) | (v < 0) | (v >= k))
    if bad.any():
        raise InputError(f"{int(bad.sum())} values are not integer categories in [0, {k}) "
                         f"(first: {v[bad][0]!r}); set content.clusters to the number of categories",
                         field=column)
    if not ok.any():
        raise InputError("no training image has a content category", field=column)
    return torch.as_tensor(np.where(ok, v, -1), dtype=torch.long)


def fit_content_branch(head: nn.Module, trunk: torch.Tensor, fc7: torch.Tensor, labels: torch.Tensor | None, *,
                       seed: int, restarts: int = 4, epochs: int = 8, lr: float = 1e-3,
                       batch_size: int = 128) -> tuple[torch.Tensor, float]:
    """Fit ContClass of an :class:`~.heads.AestheticsHead` and freeze it (§4.4, §5.1).

    ``trunk`` (N, …) and ``fc7`` (N, D) are the training images' centre-crop trunk outputs and fc7
    features from the trained network. The labels are ``labels`` (content categories, −1 =
    unlabelled, skipped) or, when None, k-means clusters of the unit-normalised fc7 (§5.1).
    ContClass's copy of the top layers and its classifier are fine-tuned with the softmax loss
    (Adam, ``epochs`` passes, seeded), then frozen; the centroids for ``gating = "centroid"`` are
    the clusters' means of ContClass's unit-normalised features. Returns the labels used and the
    training accuracy of the content classifier.
    """
    k = head.n_content
    if labels is None:
        _, labels = kmeans(unit_rows(fc7.detach().cpu()), k, seed=seed, restarts=restarts)
    labels = labels.to(trunk.device)
    keep = (labels >= 0).nonzero().squeeze(1)
    params = head.content_parameters()
    devices = [trunk.device] if trunk.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        seed_torch(seed, str(trunk.device))
        with torch.no_grad():
            nn.init.normal_(head.content_classifier.weight, std=0.01)
            head.content_classifier.bias.zero_()
        for p in params:
            p.requires_grad_(True)
        head.content_top.train()
        opt = torch.optim.Adam(params, lr=lr)
        for _ in range(epochs):
            for chunk in keep[torch.randperm(len(keep), device=keep.device)].split(batch_size):
                logits = head.content_classifier(head.content_top(trunk[chunk]))
                loss = nn.functional.cross_entropy(logits, labels[chunk])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    for p in params:
        p.requires_grad_(False)
        p.grad = None
    head.content_fitted.fill_(True)
    head.train(head.training)  # puts the frozen copy in eval mode
    with torch.no_grad():
        feats = torch.cat([head.content_features(t) for t in trunk.split(1024)])
        pred = head.content_classifier(feats).argmax(1)
        accuracy = float((pred[keep] == labels[keep]).float().mean()) if len(keep) else float("nan")
        unit = nn.functional.normalize(feats, dim=1)
        for j in range(k):
            members = labels == j
            head.centroids[j] = unit[members].mean(0) if bool(members.any()) else 0.0
    return labels, accuracy

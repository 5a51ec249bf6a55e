"""Content groups for the content-adaptive model (paper §4.4, §5.1): seeded k-means on unit-length
fc7 features of the training images, a softmax content classifier fitted to the group labels, and
the fitting of both into an :class:`~.heads.AestheticsHead` before it is frozen for joint training.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import InputError


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


def fit_classifier(features: torch.Tensor, labels: torch.Tensor, k: int, *, iters: int = 200) -> nn.Linear:
    """A softmax classifier (linear on fc7) fitted to content labels (−1 = unlabelled, skipped)
    by full-batch L-BFGS with a small L2 penalty; deterministic."""
    keep = labels >= 0
    x, y = features[keep].float(), labels[keep]
    layer = nn.Linear(features.shape[1], k)
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.zero_()
    opt = torch.optim.LBFGS(layer.parameters(), lr=1.0, max_iter=iters, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = nn.functional.cross_entropy(layer(x), y) + 1e-4 * layer.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return layer


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


def fit_content(head: nn.Module, fc7: torch.Tensor, labels: torch.Tensor | None, *, seed: int,
                restarts: int = 4) -> torch.Tensor:
    """Fit a head's content groups from the training images' fc7 (N, D): k-means on unit rows when
    ``labels`` is None, else the given categories; then the classifier on those labels. Sets the
    head's centroids, classifier weights and ``content_fitted``; returns the labels used."""
    k = head.n_content
    unit = unit_rows(fc7)
    if labels is None:
        centroids, labels = kmeans(unit, k, seed=seed, restarts=restarts)
    else:
        centroids = torch.stack([unit[labels == j].mean(0) if (labels == j).any() else torch.zeros(unit.shape[1],
                                                                                                   dtype=unit.dtype)
                                 for j in range(k)])
    clf = fit_classifier(fc7, labels, k)
    with torch.no_grad():
        dev = head.centroids.device
        head.centroids.copy_(centroids.float().to(dev))
        head.content_classifier.weight.copy_(clf.weight.to(dev))
        head.content_classifier.bias.copy_(clf.bias.to(dev))
        head.content_fitted.fill_(True)
    return labels

"""Rating heads: the module that replaces AlexNet's last layer (``classifier.6``) and turns fc7
activations into named outputs. Every head returns a dict with at least ``"score"`` (the rating
used for ranking and prediction). New variants (attributes, content gating — part 2) are new
entries of :data:`HEADS`, selected by ``model.head`` in a config.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

Outputs = dict[str, torch.Tensor]


def _linear_fp32(layer: nn.Linear, fc7: torch.Tensor) -> torch.Tensor:
    """``layer(fc7)`` in float32 even under bf16 autocast: a bf16 score has ~3 significant digits,
    which turns close ratings into ties (hurting Spearman ρ) and is coarser than the margin α = 0.02."""
    with torch.autocast(device_type=fc7.device.type, enabled=False):
        return nn.functional.linear(fc7.float(), layer.weight.float(), layer.bias.float())


class RegressionHead(nn.Linear):
    """Fig. 3(a): fc7 → one linear output, the predicted rating on the [0, 1] scale (``score``)."""

    provides = frozenset({"score"})

    def __init__(self, in_features: int) -> None:
        super().__init__(in_features, 1)

    def forward(self, fc7: torch.Tensor) -> Outputs:  # type: ignore[override]
        """``{"score": (N,)}``."""
        return {"score": _linear_fp32(self, fc7).squeeze(1)}


class BinaryConfidenceHead(nn.Linear):
    """AlexNet FT Conf: a 2-way (low/high) classifier; the rating is the softmax confidence of "high"."""

    provides = frozenset({"score", "logits"})

    def __init__(self, in_features: int) -> None:
        super().__init__(in_features, 2)

    def forward(self, fc7: torch.Tensor) -> Outputs:  # type: ignore[override]
        """``{"logits": (N, 2), "score": P(high) (N,)}``."""
        logits = _linear_fp32(self, fc7)
        return {"logits": logits, "score": torch.softmax(logits, dim=1)[:, 1]}


class AestheticsHead(nn.Module):
    """Fig. 3(b)/(c): the attribute branch and the content-gated score branches on fc7.

    ``regression`` is Reg's score layer, used while no branch is active (the first stages of the
    staged recipe). With branches active, the score is ``Σ_k g_k · branch_k([base, attributes])``:
    base features ``ReLU(W fc7)``, attribute predictions from fc7 (§4.3), and K content-specific
    score branches gated by content weights ``g`` (§4.4; uniform when there is no content branch).
    The gate reads fc7 detached, through a frozen content classifier or the k-means centroids.
    """

    def __init__(self, in_features: int, *, n_attributes: int, n_content: int, feature_size: int,
                 gating: str = "classifier", temperature: float = 0.1) -> None:
        super().__init__()
        self.regression = nn.Linear(in_features, 1)
        self.attribute = nn.Linear(in_features, n_attributes) if n_attributes else None
        self.base = nn.Linear(in_features, feature_size)
        k = max(1, n_content)
        self.branch = nn.Linear(feature_size + n_attributes, k)  # K score branches, one output each
        self.n_content, self.gating, self.temperature = n_content, gating, temperature
        if n_content:
            self.content_classifier = nn.Linear(in_features, n_content)
            self.content_classifier.requires_grad_(False)  # trained on cluster labels, then frozen
            self.register_buffer("centroids", torch.zeros(n_content, in_features))
            self.register_buffer("content_fitted", torch.zeros((), dtype=torch.bool))
        self.active: frozenset[str] = frozenset({"attributes", "content"})

    def gate(self, fc7: torch.Tensor) -> torch.Tensor:
        """Content weights (N, K), each row summing to 1 (uniform without a content branch)."""
        n = fc7.shape[0]
        if not self.n_content or "content" not in self.active:
            k = self.branch.out_features
            return torch.full((n, k), 1.0 / k, device=fc7.device)
        f = fc7.detach().float()
        if self.gating == "centroid":
            d2 = torch.cdist(nn.functional.normalize(f, dim=1), self.centroids) ** 2
            return torch.softmax(-d2 / self.temperature, dim=1)
        return torch.softmax(self.content_classifier(f), dim=1)

    def forward(self, fc7: torch.Tensor) -> Outputs:
        """``score`` (N,), and ``attributes`` (N, A), ``gate`` (N, K) where configured."""
        with torch.autocast(device_type=fc7.device.type, enabled=False):
            f = fc7.float()
            out: Outputs = {}
            att = self.attribute(f) if self.attribute is not None else f.new_zeros(f.shape[0], 0)
            if self.attribute is not None:
                out["attributes"] = att
            if not self.active:
                out["score"] = self.regression(f).squeeze(1)
                return out
            feats = torch.cat([torch.relu(self.base(f)), att], dim=1)
            g = self.gate(f)
            out["gate"] = g
            out["score"] = (self.branch(feats) * g).sum(1)
            return out


#: head name → constructor taking the fc7 width. Each class declares the outputs it ``provides``.
HEADS: dict[str, Callable[[int], nn.Module]] = {
    "regression": RegressionHead,
    "binary_confidence": BinaryConfidenceHead,
}


def head_outputs(name: str) -> frozenset[str]:
    """The output names a registered head produces (used to validate loss terms against heads)."""
    return HEADS[name].provides  # type: ignore[attr-defined]


def attribute_columns(columns: tuple[str, ...]) -> tuple[str, ...]:
    """The images-table columns of an ``[attributes] columns`` value ("aadb" = the 11 of AADB)."""
    from .. import schema

    return tuple(schema.ATTRIBUTES) if tuple(columns) == ("aadb",) else tuple(columns)

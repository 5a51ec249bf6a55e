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


#: head name → constructor taking the fc7 width. Each class declares the outputs it ``provides``.
HEADS: dict[str, Callable[[int], nn.Module]] = {
    "regression": RegressionHead,
    "binary_confidence": BinaryConfidenceHead,
}


def head_outputs(name: str) -> frozenset[str]:
    """The output names a registered head produces (used to validate loss terms against heads)."""
    return HEADS[name].provides  # type: ignore[attr-defined]


def build_model(head: str, *, width: float = 1.0, dropout: float = 0.5) -> nn.Module:
    """AlexNet front end whose last layer (``classifier.6``) is the named rating head (Fig. 3a)."""
    from .alexnet_arch import AlexNet

    if head not in HEADS:
        raise KeyError(f"unknown head {head!r}; registered: {sorted(HEADS)}")
    net = AlexNet(width=width, dropout=dropout)
    net.classifier[6] = HEADS[head](net.fc7_size)
    return net

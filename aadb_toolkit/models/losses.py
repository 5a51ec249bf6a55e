"""Loss terms of the paper (§4.1–4.2): the Euclidean regression loss, the pairwise ranking loss
(Eq. 1) and their weighted sum (Eq. 2), plus the softmax loss of AlexNet FT Conf. Each term is an
entry of :data:`LOSS_TERMS`; a config's ``[loss.weights]`` table names the terms and their weights
(ω), so part 2 adds the attribute term (Eq. 3) as one more entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F


def regression_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Euclidean loss ``1/(2N) Σ ‖ŷ_i − y_i‖²`` (paper §4.1), with scores on the [0, 1] scale."""
    pred, target = pred.float().reshape(len(pred), -1), target.float().reshape(len(target), -1)
    return ((pred - target) ** 2).sum() / (2 * len(pred))


def attribute_loss(pred: torch.Tensor, target: torch.Tensor, kind: str = "euclidean") -> torch.Tensor:
    """Eq. 3's loss_att, masked where ``target`` is NaN: Euclidean ``1/(2N) Σ ‖â − a‖²`` over the N
    images with a label (targets in [-1, 1]), or binary cross-entropy on logits ({0, 1} targets),
    averaged over the labelled entries. With no label in the batch it is 0 (and gives no gradient)."""
    pred, target = pred.float(), target.float()
    valid = ~torch.isnan(target)
    safe = torch.where(valid, target, torch.zeros_like(target))
    if kind == "binary":
        per = F.binary_cross_entropy_with_logits(pred, safe, reduction="none")
        return (per * valid).sum() / valid.sum().clamp(min=1)
    n_rows = valid.any(dim=1).sum().clamp(min=1)
    return (((pred - safe) ** 2) * valid).sum() / (2 * n_rows)


def rank_delta(y_i: torch.Tensor, y_j: torch.Tensor) -> torch.Tensor:
    """δ(y_i ≥ y_j) of Eq. 1: +1 where ``y_i ≥ y_j``, −1 otherwise."""
    return torch.where(y_i >= y_j, 1.0, -1.0)


def rank_loss(pred_i: torch.Tensor, pred_j: torch.Tensor, delta: torch.Tensor, margin: float) -> torch.Tensor:
    """Pairwise ranking loss of Eq. 1: ``1/(2N) Σ max(0, α − δ_ij (ŷ_i − ŷ_j))`` over N pairs."""
    diff = pred_i.float() - pred_j.float()
    return torch.clamp(margin - delta.float() * diff, min=0).sum() / (2 * len(diff))


@dataclass
class Batch:
    """Targets of one training batch: per-image ``targets`` (mean score in [0, 1]) and ``labels``
    (binary high/low), and for Siamese batches the pairs as row indices into the batch with δ."""

    targets: torch.Tensor
    labels: torch.Tensor | None = None
    pair_first: torch.Tensor | None = None
    pair_second: torch.Tensor | None = None
    pair_delta: torch.Tensor | None = None
    #: attribute targets (N, A), NaN where an image has no label; ``attribute_kind`` picks the loss
    attributes: torch.Tensor | None = None
    attribute_kind: str = "euclidean"


@dataclass(frozen=True)
class LossTerm:
    """One term of the training objective: the outputs it needs from the head and how to compute it."""

    compute: Callable[[dict[str, torch.Tensor], Batch, "float"], torch.Tensor]
    requires: frozenset[str]
    needs_pairs: bool = False
    description: str = ""


def _regression(outputs: dict[str, torch.Tensor], batch: Batch, margin: float) -> torch.Tensor:
    return regression_loss(outputs["score"], batch.targets)


def _rank(outputs: dict[str, torch.Tensor], batch: Batch, margin: float) -> torch.Tensor:
    if batch.pair_first is None or batch.pair_second is None or batch.pair_delta is None:
        raise ValueError("the rank loss needs a batch of pairs (set [pairs] strategy)")
    s = outputs["score"]
    return rank_loss(s[batch.pair_first], s[batch.pair_second], batch.pair_delta, margin)


def _classification(outputs: dict[str, torch.Tensor], batch: Batch, margin: float) -> torch.Tensor:
    if batch.labels is None:
        raise ValueError("the classification loss needs binary labels")
    return F.cross_entropy(outputs["logits"].float(), batch.labels)


def _attribute(outputs: dict[str, torch.Tensor], batch: Batch, margin: float) -> torch.Tensor:
    if batch.attributes is None:
        raise ValueError("the attribute loss needs attribute targets")
    return attribute_loss(outputs["attributes"], batch.attributes, batch.attribute_kind)


#: term name → definition. ``[loss.weights]`` in a config maps these names to weights.
LOSS_TERMS: dict[str, LossTerm] = {
    "regression": LossTerm(_regression, frozenset({"score"}), description="Euclidean loss on [0,1] scores (§4.1)"),
    "rank": LossTerm(_rank, frozenset({"score"}), needs_pairs=True, description="pairwise ranking loss, Eq. 1"),
    "classification": LossTerm(_classification, frozenset({"logits"}),
                               description="softmax loss on high/low labels (AlexNet FT Conf)"),
    "attribute": LossTerm(_attribute, frozenset({"attributes"}),
                          description="masked attribute loss, Eq. 3 (ω_a = paper.OMEGA_ATTRIBUTE)"),
}


def total_loss(outputs: dict[str, torch.Tensor], batch: Batch, weights: dict[str, float],
               margin: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted sum of the configured terms (Eq. 2: ``loss_reg + ω_r loss_rank``) and each term's (detached) value."""
    total = torch.zeros((), device=batch.targets.device)
    parts: dict[str, torch.Tensor] = {}
    for name, w in weights.items():
        if w == 0:
            continue
        value = LOSS_TERMS[name].compute(outputs, batch, margin)
        parts[name] = value.detach()
        total = total + w * value
    return total, parts

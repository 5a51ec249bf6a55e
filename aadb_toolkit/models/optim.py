"""The optimiser and the learning-rate schedule of a run. SGD with momentum and weight decay on
every parameter (the paper, §4.5) or AdamW (decay on weight matrices only, none on biases and
norms, the usual practice for transformers); an optional layer-wise lr decay (each backbone block
below the head gets ``layer_decay`` times the lr of the block above) and head lr multiplier
(``head_lr_mult``, Caffe's ``lr_mult`` of the new layer); a step or cosine schedule
per stage after a linear warm-up. Each parameter group carries ``lr_scale``; :func:`set_lr` applies
the schedule's lr times that scale."""

from __future__ import annotations

import math

import torch
from torch import nn


def _groups(net: nn.Module, layer_decay: float, head_mult: float = 1.0) -> list[tuple[float, list[nn.Parameter]]]:
    """(lr scale, parameters) from the input up: the backbone's layer groups (or the whole
    backbone), then the head with ``head_mult`` (Caffe's ``lr_mult`` of the new layer)."""
    head = getattr(net, "head", None)
    if head is None or (layer_decay == 1.0 and head_mult == 1.0):
        return [(1.0, list(net.parameters()))]
    head_ids = {id(p) for p in head.parameters()}
    groups = net.backbone.layer_groups() if layer_decay != 1.0 else [net.backbone]
    seen: set[int] = set(head_ids)
    out = []
    for i, g in enumerate(groups):
        params = [p for p in g.parameters() if id(p) not in seen]
        seen.update(id(p) for p in params)
        out.append((layer_decay ** (len(groups) - i) if layer_decay != 1.0 else 1.0, params))
    rest = [p for p in net.parameters() if id(p) not in seen]  # anything outside the groups
    out += [(1.0, rest), (head_mult, list(head.parameters()))]
    return [(s, ps) for s, ps in out if ps]


def build_optimizer(net: nn.Module, o) -> torch.optim.Optimizer:
    """The optimiser an ``[optim]`` section describes, over all of ``net``'s parameters (frozen
    ones have no gradient and are skipped by the step)."""
    groups = _groups(net, o.layer_decay, o.head_lr_mult)
    if o.optimizer == "sgd":
        return torch.optim.SGD([{"params": ps, "lr_scale": s} for s, ps in groups], lr=o.lr, momentum=o.momentum,
                               weight_decay=o.weight_decay)
    param_groups = []
    for s, ps in groups:
        decay = [p for p in ps if p.ndim >= 2]
        no_decay = [p for p in ps if p.ndim < 2]
        param_groups += [{"params": decay, "lr_scale": s, "weight_decay": o.weight_decay},
                         {"params": no_decay, "lr_scale": s, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in param_groups if g["params"]], lr=o.lr, fused=_fusable(net) or None)


#: Devices with torch's fused AdamW kernel: one pass over each tensor instead of a dozen elementwise
#: ops, four times faster than the per-tensor loop that torch otherwise picks for CPU tensors
#: (docs/performance.md); the same update up to float rounding.
FUSED_DEVICES = frozenset({"cpu", "cuda"})


def _fusable(net: nn.Module) -> bool:
    """Whether every parameter is a float tensor on one device with the fused kernel (not ``meta``)."""
    params = list(net.parameters())
    return bool(params) and len({p.device for p in params}) == 1 and params[0].device.type in FUSED_DEVICES \
        and all(p.is_floating_point() for p in params)


def lr_at(o, start: int, steps: int, step: int) -> float:
    """The lr at global ``step`` of a stage of ``steps`` steps beginning at ``start``."""
    local = step - start
    if o.warmup_steps and local < o.warmup_steps:
        return o.lr * (local + 1) / (o.warmup_steps + 1)
    if o.schedule == "cosine":
        span = max(1, steps - o.warmup_steps)
        return o.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, (local - o.warmup_steps) / span)))
    milestones = [start + int(round(f * steps)) for f in o.anneal_at]
    return o.lr * o.anneal_factor ** sum(step >= m for m in milestones)


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    """Set every group's lr to ``lr`` times its ``lr_scale``."""
    for g in opt.param_groups:
        g["lr"] = lr * g.get("lr_scale", 1.0)

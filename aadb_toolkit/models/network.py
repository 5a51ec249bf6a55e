"""The rating network: a backbone (any registered family, :mod:`.archs`) that maps images to
features, and a head (:mod:`.heads`) that maps features to named outputs. ``forward(x) =
head(features(x))``. The config's ``model.mode`` says what trains: "finetune" (all of the backbone,
or its last ``model.train_blocks`` blocks) or "frozen" (only the head; the backbone stays in eval
mode and its features are computed once per image, :mod:`.frozen`)."""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from .archs import family
from .heads import HEADS, AestheticsHead, attribute_columns


class Network(nn.Module):
    """``backbone`` (images → features (N, D)) and ``head`` (features → outputs dict)."""

    def __init__(self, backbone: nn.Module, head: nn.Module, *, arch: str = "alexnet", mode: str = "finetune",
                 train_blocks: int | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.arch, self.mode = arch, mode
        self._apply_trainable(train_blocks)

    @property
    def feature_size(self) -> int:
        """D, the width of the features the head reads."""
        return int(self.backbone.feature_size)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's features (N, D) of normalised images (N, 3, H, W)."""
        return self.backbone(x)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """The input of the backbone's top layers (AlexNet: pool5), or the features themselves for
        a backbone without separate top layers."""
        return self.backbone.trunk(x) if hasattr(self.backbone, "trunk") else self.backbone(x)

    def top(self, t: torch.Tensor) -> torch.Tensor:
        """The backbone's top layers on trunk outputs (the identity without separate top layers)."""
        return self.backbone.top(t) if hasattr(self.backbone, "top") else t

    def top_copy(self) -> nn.Module | None:
        """An independent copy of the backbone's top layers (ContClass's own, §4.4), or None."""
        return self.backbone.top_copy() if hasattr(self.backbone, "top_copy") else None

    def head_outputs(self, f: torch.Tensor, trunk: torch.Tensor) -> dict[str, torch.Tensor]:
        """The head on features ``f`` (a head that gates on ContClass also gets the trunk output;
        in frozen mode ContClass is an MLP on the features, as in training, :class:`HeadOnFeatures`)."""
        return call_head(self.head, f, f if self.mode == "frozen" else trunk)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:  # noqa: D401
        """The head's outputs on the backbone's features."""
        t = self.trunk(x)
        return self.head_outputs(self.top(t), t)

    def train(self, mode: bool = True) -> "Network":
        """As ``nn.Module.train``, but a frozen backbone always stays in eval mode (no dropout)."""
        super().train(mode)
        if self.mode == "frozen":
            self.backbone.eval()
        return self

    def _apply_trainable(self, train_blocks: int | None) -> None:
        """Frozen: no backbone parameter trains. Last N: only the last N blocks and the final norm."""
        if self.mode == "frozen":
            self.backbone.requires_grad_(False)
        elif train_blocks is not None:
            groups = self.backbone.layer_groups()
            keep = {id(p) for g in groups[-(train_blocks + 1):] for p in g.parameters()} if train_blocks else \
                {id(p) for p in groups[-1].parameters()}
            for p in self.backbone.parameters():
                p.requires_grad_(id(p) in keep)


class HeadOnFeatures(nn.Module):
    """The head of a frozen-mode network, fed with cached features: what the trainer steps in
    frozen mode (``features`` is the identity, so inference helpers work on it unchanged)."""

    def __init__(self, net: Network) -> None:
        super().__init__()
        self.head = net.head
        self.feature_size = net.feature_size

    def features(self, f: torch.Tensor) -> torch.Tensor:
        """The cached features themselves."""
        return f

    trunk = top = features

    def forward(self, f: torch.Tensor) -> dict[str, torch.Tensor]:  # noqa: D401
        """The head's outputs (a ContClass gate reads the same features)."""
        return call_head(self.head, f, f)


def call_head(head: nn.Module, f: torch.Tensor, gate_input: torch.Tensor) -> dict[str, torch.Tensor]:
    """The head's outputs on features ``f``; a head that gates on ContClass (``uses_trunk``) also
    gets ``gate_input`` (the trunk output when the backbone trains, the features themselves in
    frozen mode). The one place both the network and the frozen-mode head make this call."""
    return head(f, trunk=gate_input) if getattr(head, "uses_trunk", False) else head(f)


def _head(cfg, backbone: nn.Module) -> nn.Module:
    """The head a config describes: Reg/FT Conf, or the attribute/content head (Fig. 3b/c) when
    the config has ``[attributes]`` or ``[content]``. ContClass gets its own copy of the backbone's
    top layers where it has them and is fine-tuned; otherwise (a transformers backbone, or frozen
    mode, where only features are cached) an MLP on the features (a documented departure)."""
    m = cfg.model
    feature_size = backbone.feature_size
    if not cfg.branches:
        return HEADS[m.head](feature_size)
    from .archs.alexnet_arch import scaled

    n_att = len(attribute_columns(cfg.attributes.columns)) if cfg.attributes is not None else 0
    c = cfg.content
    top = backbone.top_copy() if c is not None and m.mode != "frozen" and hasattr(backbone, "top_copy") else None
    width = m.width if m.arch == "alexnet" else 1.0
    return AestheticsHead(feature_size, n_attributes=n_att, n_content=c.clusters if c else 0,
                          feature_size=scaled(m.feature_size, width), gating=c.gating if c else "classifier",
                          temperature=c.temperature if c else 1.0, content_top=top,
                          content_size=feature_size if top is not None else None)


def build_network(cfg, architecture: Mapping[str, Any] | None = None) -> Network:
    """The network a :class:`~.config.ModelConfig` describes, with a fresh backbone of the family
    ``model.arch`` (``architecture``: the transformers config a run or weights folder gives)."""
    m = cfg.model
    backbone = family(m.arch).build(m, architecture)
    return Network(backbone, _head(cfg, backbone), arch=m.arch, mode=m.mode,
                   train_blocks=m.train_blocks)


def build_model(head: str, *, width: float = 1.0, dropout: float = 0.5, fc7_factor: float = 1.0) -> Network:
    """An AlexNet network with the named rating head (Fig. 3a)."""
    from .archs.alexnet_arch import backbone as alexnet

    if head not in HEADS:
        raise KeyError(f"unknown head {head!r}; registered: {sorted(HEADS)}")
    backbone = alexnet(width=width, dropout=dropout, fc7_factor=fc7_factor)
    return Network(backbone, HEADS[head](backbone.feature_size))


def upgrade_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict of a run written before backbones (AlexNet keys, head at ``classifier.6.``) in
    the network's layout (``backbone.…``, ``head.…``); a current state dict is returned as is."""
    if any(k.startswith(("backbone.", "head.")) for k in state):
        return dict(state)
    return {("head." + k.removeprefix("classifier.6.")) if k.startswith("classifier.6.") else "backbone." + k: v
            for k, v in state.items()}

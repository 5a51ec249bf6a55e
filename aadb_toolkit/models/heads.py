"""Rating heads: the module that replaces AlexNet's last layer (``classifier.6``) and turns fc7
activations into named outputs. Every head returns a dict with at least ``"score"`` (the rating
used for ranking and prediction). New variants are new entries of :data:`HEADS`, selected by
``model.head`` in a config; the attribute/content head (Fig. 3b/c) is built from ``[attributes]``
and ``[content]`` sections.

Every score head carries two buffers, ``score_shift`` and ``score_scale``: the score is
``shift + scale · raw``. They are 0 and 1 unless ``loss.standardise_targets`` trains the raw
output on standardised targets (then they hold the training targets' mean and spread, so
predictions stay on the [0, 1] scale).
"""

from __future__ import annotations

import contextlib
from typing import Callable

import torch
from torch import nn

Outputs = dict[str, torch.Tensor]


def _no_autocast(device: torch.device):
    """Autocast switched off on ``device`` (a no-op context on devices without autocast, e.g. ``meta``)."""
    if device.type in ("cuda", "cpu"):
        return torch.autocast(device_type=device.type, enabled=False)
    return contextlib.nullcontext()


def _linear_fp32(layer: nn.Linear, fc7: torch.Tensor) -> torch.Tensor:
    """``layer(fc7)`` in float32 even under bf16 autocast: a bf16 score has ~3 significant digits,
    which turns close ratings into ties (hurting Spearman ρ) and is coarser than the margin α = 0.02."""
    with _no_autocast(fc7.device):
        return nn.functional.linear(fc7.float(), layer.weight.float(), layer.bias.float())


class _ScoreScale:
    """Mixin: the ``score_shift`` / ``score_scale`` buffers (0 / 1 in run files written before them)."""

    def _init_score_scale(self) -> None:
        self.register_buffer("score_shift", torch.zeros(()))
        self.register_buffer("score_scale", torch.ones(()))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        for name, default in (("score_shift", 0.0), ("score_scale", 1.0)):
            state_dict.setdefault(prefix + name, torch.tensor(default))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)  # type: ignore[misc]

    def scaled(self, raw: torch.Tensor) -> torch.Tensor:
        return self.score_shift + self.score_scale * raw


class RegressionHead(_ScoreScale, nn.Linear):
    """Fig. 3(a): fc7 → one linear output, the predicted rating on the [0, 1] scale (``score``)."""

    provides = frozenset({"score"})

    def __init__(self, in_features: int) -> None:
        nn.Linear.__init__(self, in_features, 1)
        self._init_score_scale()

    @property
    def score_layer(self) -> nn.Linear:
        """The linear layer whose bias starts at the training-target mean (``model.score_bias``)."""
        return self

    def forward(self, fc7: torch.Tensor) -> Outputs:  # type: ignore[override]
        """``{"score": (N,)}``."""
        return {"score": self.scaled(_linear_fp32(self, fc7).squeeze(1))}


class BinaryConfidenceHead(nn.Linear):
    """AlexNet FT Conf: a 2-way (low/high) classifier; the rating is the softmax confidence of "high"."""

    provides = frozenset({"score", "logits"})

    def __init__(self, in_features: int) -> None:
        super().__init__(in_features, 2)

    def forward(self, fc7: torch.Tensor) -> Outputs:  # type: ignore[override]
        """``{"logits": (N, 2), "score": P(high) (N,)}``."""
        logits = _linear_fp32(self, fc7)
        return {"logits": logits, "score": torch.softmax(logits, dim=1)[:, 1]}


class AestheticsHead(_ScoreScale, nn.Module):
    """Fig. 3(b)/(c): the attribute branch and the content-specific score branches, as a
    correction of Reg's trained score.

    ``score = regression(fc7) + Σ_k g_k · branch_k([ReLU(base_k(fc7)), attributes])``:

    - ``regression`` is Reg's score layer, trained in the first stages and never dropped. It is
      the fc7 half of the paper's concatenation layer (Fig. 3b concatenates the base model's
      features with the attribute features before the score).
    - each content-specific branch ``k`` has its own feature layer ``base_k`` (Cont fea) and its
      own output layer over ``[Cont fea_k, Att fea]`` (§4.4). The output layers start at zero, so
      switching a branch on never changes a prediction: the branches learn a correction of a
      trained model instead of replacing it with a fresh one (a score path that cannot collapse).
    - ``g`` are the content weights (§4.4/§5.1) of ContClass: its own copy of the network's top
      layers (``content_top``, AlexNet's fc6 + fc7) and a softmax classifier, fine-tuned on the
      content labels and then frozen (:func:`.content.fit_content_branch`). ``gating =
      "classifier"``: the classifier's softmax (AVA's categories); ``"centroid"``: a softmax over
      the distances to the k-means centroids in ContClass's unit-normalised features (AADB). One
      branch with ``g = 1`` without a content branch.

    ``active`` holds the branches a stage uses; with none, the score is Reg's alone.
    """

    def __init__(self, in_features: int, *, n_attributes: int, n_content: int, feature_size: int,
                 gating: str = "classifier", temperature: float = 0.1, content_top: nn.Module | None = None,
                 content_size: int | None = None) -> None:
        super().__init__()
        self.regression = nn.Linear(in_features, 1)
        self.attribute = nn.Linear(in_features, n_attributes) if n_attributes else None
        self.k = k = max(1, n_content)
        self.feature_size, self.n_attributes = feature_size, n_attributes
        self.base = nn.Linear(in_features, k * feature_size)  # K content-specific feature layers, one matmul
        self.branch_weight = nn.Parameter(torch.zeros(k, feature_size + n_attributes))  # zero: no change at switch-on
        self.branch_bias = nn.Parameter(torch.zeros(k))
        self._init_score_scale()
        self.n_content, self.gating, self.temperature = n_content, gating, temperature
        if n_content:
            if content_top is None:  # a backbone without top layers to copy: an MLP on the frozen features
                content_size = in_features
                content_top = nn.Sequential(nn.Linear(in_features, in_features), nn.ReLU())
            self.content_top = content_top
            self.content_classifier = nn.Linear(int(content_size or in_features), n_content)
            self.register_buffer("centroids", torch.zeros(n_content, int(content_size or in_features)))
            self.register_buffer("content_fitted", torch.zeros((), dtype=torch.bool))
            for p in self.content_parameters():
                p.requires_grad_(False)  # fitted once on the content labels, then frozen (§4.4)
        self.active: frozenset[str] = frozenset({"attributes", "content"})

    @property
    def uses_trunk(self) -> bool:
        """Whether the network must pass its trunk output (the input of the top layers) to the head."""
        return bool(self.n_content)

    @property
    def score_layer(self) -> nn.Linear:
        return self.regression

    def content_parameters(self) -> list[nn.Parameter]:
        """ContClass's parameters (its copy of the top layers and its classifier)."""
        if not self.n_content:
            return []
        return [*self.content_top.parameters(), *self.content_classifier.parameters()]

    def branch_parameters(self) -> list[nn.Parameter]:
        """The score branches' own parameters (base features and output layers)."""
        return [*self.base.parameters(), self.branch_weight, self.branch_bias]

    def train(self, mode: bool = True) -> "AestheticsHead":
        super().train(mode)
        if self.n_content and bool(self.content_fitted):
            self.content_top.eval()  # frozen ContClass: deterministic gate (no dropout)
        return self

    def content_features(self, trunk: torch.Tensor) -> torch.Tensor:
        """ContClass's features (the output of its copy of the top layers) of trunk outputs."""
        with _no_autocast(trunk.device):
            return self.content_top(trunk.detach().float())

    def gate(self, trunk: torch.Tensor | None, n: int, device: torch.device) -> torch.Tensor:
        """Content weights (N, K), each row summing to 1 (one branch without a content branch)."""
        if not self.n_content or "content" not in self.active:
            return torch.full((n, self.k), 1.0 / self.k, device=device)
        if trunk is None:
            raise ValueError("the content gate needs the trunk output (call the head through the network)")
        f = self.content_features(trunk)
        if self.gating == "centroid":
            d2 = torch.cdist(nn.functional.normalize(f, dim=1), self.centroids) ** 2
            return torch.softmax(-d2 / self.temperature, dim=1)
        with _no_autocast(f.device):
            return torch.softmax(self.content_classifier(f), dim=1)

    def forward(self, fc7: torch.Tensor, trunk: torch.Tensor | None = None) -> Outputs:
        """``score`` (N,), and ``attributes`` (N, A), ``gate`` (N, K) where configured."""
        with _no_autocast(fc7.device):
            f = fc7.float()
            out: Outputs = {}
            raw = self.regression(f).squeeze(1)
            att = self.attribute(f) if self.attribute is not None else None
            if att is not None:
                out["attributes"] = att
            if self.active:
                n = f.shape[0]
                feats = torch.relu(self.base(f)).view(n, self.k, self.feature_size)
                if att is not None:
                    a = att if "attributes" in self.active else torch.zeros_like(att)
                    feats = torch.cat([feats, a[:, None, :].expand(n, self.k, self.n_attributes)], dim=2)
                per_branch = (feats * self.branch_weight).sum(2) + self.branch_bias  # (N, K)
                g = self.gate(trunk, n, f.device)
                out["gate"] = g
                raw = raw + (per_branch * g).sum(1)
            out["score"] = self.scaled(raw)
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


def copy_top(net: nn.Module, head: AestheticsHead) -> None:
    """Start ContClass's top layers from the network's current (trained) ones (§4.4: "fine-tune
    the top two layers"), when the backbone has a copyable top."""
    top = net.top_copy() if hasattr(net, "top_copy") else None
    if top is not None:
        head.content_top.load_state_dict(top.state_dict())


__all__ = ["AestheticsHead", "BinaryConfidenceHead", "HEADS", "RegressionHead", "attribute_columns", "copy_top",
           "head_outputs"]

"""AlexNet front end (Krizhevsky et al. 2012, the single-tower variant of the common ImageNet
checkpoints), written in plain torch with the standard state-dict layout: ``features.{0,3,6,8,10}``
convolutions, ``classifier.{1,4}`` (fc6, fc7) and ``classifier.6`` (the last layer, which the rating
models replace by their head). A ``width`` multiplier shrinks every layer for fast tests; only
``width=1`` has the shapes of the ImageNet checkpoints.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from ..._keyguard import refuse_key_file
from ...errors import InputError
from ._base import IMAGENET_MEAN, IMAGENET_STD, Family, InputSpec, check_sha256, load_weights_only, register

#: Output channels of the five convolutions and size of fc6/fc7 at width 1.
CONV_CHANNELS: tuple[int, ...] = (64, 192, 384, 256, 256)
FC_SIZE: int = 4096
#: Spatial size of the pooled feature map fed to fc6.
POOL_SIZE: int = 6
#: Smallest input side the convolution/pooling stack accepts (three 3×3/2 max-pools after an 11×11/4 conv).
MIN_INPUT_SIZE: int = 63
#: Shapes of the original Caffe (BVLC) AlexNet, the paper's network, under the same keys: two groups
#: in conv2/4/5 halve their input channels. Recognised only to explain why such a file cannot load.
CAFFE_SHAPES: dict[str, tuple[int, ...]] = {
    "features.0.weight": (96, 3, 11, 11), "features.3.weight": (256, 48, 5, 5),
    "features.6.weight": (384, 256, 3, 3), "features.8.weight": (384, 192, 3, 3),
    "features.10.weight": (256, 192, 3, 3),
}
#: Keys of the front end that pretrained weights initialise (fc8 = ``classifier.6`` is replaced).
TRUNK_PREFIXES: tuple[str, ...] = ("features.", "classifier.1.", "classifier.4.")


def scaled(n: int, width: float) -> int:
    """Channel count ``n`` scaled by ``width`` (at least 1)."""
    return max(1, int(round(n * width)))


def pool_matrix(h: int, w: int, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                size: int = POOL_SIZE) -> torch.Tensor:
    """The (h·w, size²) matrix of adaptive average pooling from an h×w map to size×size:
    ``pooled.flatten(-2) = map.flatten(-2) @ P``."""
    basis = torch.eye(h * w, device=device, dtype=dtype).view(h * w, 1, h, w)
    return nn.functional.adaptive_avg_pool2d(basis, size).view(h * w, size * size)


def top_layers(layers: nn.Sequential, m: torch.Tensor) -> torch.Tensor:
    """fc6 and fc7 (``layers[0:6]``: dropout, linear, ReLU, twice) on a pool5 map ``m`` (N, C, h, w),
    average-pooled to 6×6 before fc6 as in AlexNet (a flattened pooled map (N, C·36) is taken as is).

    On a map smaller than 6×6 (crops under 195 px: 1×1 at 64 px) the pooling only repeats or
    blends values, and fc6 would multiply 36 positions per channel for h·w distinct ones. Unless
    fc6's dropout acts (it draws a mask per pooled position), the pooling is then folded into fc6's
    weights, ``W · P``: the same function and the same gradients for fc6's full weights, to float
    rounding, at h·w/36 of fc6's cost (docs/performance.md, "fc6 on small maps")."""
    fc6, start = layers[1], 0
    if m.dim() == 4:
        _, c, h, w = m.shape
        dropout = layers[0]
        if h * w < POOL_SIZE * POOL_SIZE and not (dropout.training and dropout.p > 0):
            p = pool_matrix(h, w, device=fc6.weight.device, dtype=fc6.weight.dtype)
            weight = (fc6.weight.view(fc6.out_features, c, -1) @ p.T).reshape(fc6.out_features, c * h * w)
            m, start = nn.functional.linear(m.flatten(1), weight, fc6.bias), 2
        else:
            m = torch.flatten(nn.functional.adaptive_avg_pool2d(m, POOL_SIZE), 1)
    for i in range(start, 6):
        m = layers[i](m)
    return m


class TopLayers(nn.Sequential):
    """A copy of AlexNet's top layers (dropout, fc6, ReLU, dropout, fc7, ReLU) that reads the pool5
    map, as :meth:`AlexNet.top` does (:func:`top_layers`)."""

    def forward(self, m: torch.Tensor) -> torch.Tensor:
        return top_layers(self, m)


class AlexNet(nn.Module):
    """AlexNet with the standard ImageNet state-dict keys; ``classifier[6]`` is a replaceable last layer.

    ``forward`` returns the output of ``classifier[6]``; :meth:`fc7` returns the 4096-d (× width)
    activations after fc7's ReLU, which is what the rating heads consume. With ``num_classes=None``
    there is no last layer: the module is the backbone (``forward`` = fc7, :attr:`feature_size`).
    """

    def __init__(self, num_classes: int | None = 1000, *, width: float = 1.0, dropout: float = 0.5,
                 fc7_factor: float = 1.0) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = (scaled(c, width) for c in CONV_CHANNELS)
        fc = scaled(FC_SIZE, width)
        fc7 = scaled(fc, fc7_factor)  # fc7_factor × fc7's parameters, every other layer unchanged
        self.features = nn.Sequential(
            nn.Conv2d(3, c1, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(c1, c2, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(c2, c3, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c3, c4, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c4, c5, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(c5 * POOL_SIZE * POOL_SIZE, fc),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(fc, fc7),
            nn.ReLU(inplace=True),
            *([nn.Linear(fc7, num_classes)] if num_classes is not None else []),
        )
        self.fc7_size = self.feature_size = fc7

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """The input of the top layers: the pool5 map (N, C, h, w) of a batch of normalised images
        (N, 3, H, W). The top layers pool it to 6×6 (:func:`top_layers`)."""
        if x.shape[-1] < MIN_INPUT_SIZE or x.shape[-2] < MIN_INPUT_SIZE:
            raise ValueError(f"AlexNet needs inputs of at least {MIN_INPUT_SIZE}×{MIN_INPUT_SIZE}, got {tuple(x.shape[-2:])}")
        return self.features(x)

    def top(self, h: torch.Tensor) -> torch.Tensor:
        """The top layers (pool to 6×6, fc6, fc7 with their dropout and ReLU) on trunk outputs."""
        return top_layers(self.classifier, h)

    def top_copy(self) -> nn.Module:
        """An independent copy of the top layers (fc6 + fc7): ContClass's own, §4.4 (the state-dict
        keys of ``nn.Sequential(classifier[0:6])``)."""
        return copy.deepcopy(TopLayers(*[self.classifier[i] for i in range(6)]))

    def fc7(self, x: torch.Tensor) -> torch.Tensor:
        """Activations after fc7 (``classifier[5]``) for a batch of normalised images (N, 3, H, W)."""
        return self.top(self.trunk(x))

    def forward(self, x: torch.Tensor):  # noqa: D401 - standard nn.Module entry point
        """Output of the last layer ``classifier[6]`` (logits), or fc7 for the backbone (no last layer)."""
        h = self.fc7(x)
        return self.classifier[6](h) if len(self.classifier) > 6 else h

    def layer_groups(self) -> list[nn.Module]:
        """The five convolutions, fc6 and fc7, from input to output."""
        return [self.features[i] for i in (0, 3, 6, 8, 10)] + [self.classifier[1], self.classifier[4]]

    def architecture(self) -> None:
        """None: the config's ``[model]`` (width, fc7_factor) describes an AlexNet completely."""
        return None


def read_state_dict(path: str | Path, *, sha256: str | None = None) -> dict[str, torch.Tensor]:
    """Read a standard-keyed AlexNet state dict from a local file (``torch.load(weights_only=True)``).

    With ``sha256`` the file's digest must match. A ``{"state_dict": ...}`` / ``{"model": ...}``
    wrapper and a DataParallel ``module.`` prefix are unwrapped. Nothing is ever downloaded.
    """
    import hashlib

    path = Path(path)
    if not path.is_file():
        raise InputError("no such weights file", file=str(path))
    refuse_key_file(path, field="--init-weights")
    if sha256 is not None:
        with open(path, "rb") as fh:
            check_sha256(hashlib.file_digest(fh, "sha256").hexdigest(), sha256, str(path))
    obj = load_weights_only(path)
    for wrapper in ("state_dict", "model"):
        if isinstance(obj, dict) and wrapper in obj and isinstance(obj[wrapper], dict):
            obj = obj[wrapper]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InputError("not a state dict (a mapping of parameter names to tensors)", file=str(path))
    return {k.removeprefix("module."): v for k, v in obj.items()}


def load_trunk_weights(model: AlexNet, state: dict[str, torch.Tensor], *, source: str = "weights") -> list[str]:
    """Copy the front end (conv1–5, fc6, fc7) from a standard-keyed state dict into ``model``.

    The last layer (``classifier.6``, ImageNet's fc8) is not copied: the rating head replaces it.
    ``model`` is an :class:`AlexNet` or a network whose ``backbone`` is one. Returns the keys that
    were loaded; a missing key or a shape mismatch is an :class:`InputError`.
    """
    model = getattr(model, "backbone", model)
    own = model.state_dict()
    prefixes = TRUNK_PREFIXES
    if model.fc7_size != model.classifier[1].out_features:  # a widened fc7 starts from scratch
        prefixes = tuple(p for p in TRUNK_PREFIXES if p != "classifier.4.")
    wanted = [k for k in own if k.startswith(prefixes)]
    missing = [k for k in wanted if k not in state]
    if missing:
        raise InputError(f"missing AlexNet keys {missing[:4]}{'…' if len(missing) > 4 else ''}", file=source)
    for k in wanted:
        if tuple(state[k].shape) != tuple(own[k].shape):
            hint = "pretrained weights need model.width = 1"
            if tuple(state[k].shape) == CAFFE_SHAPES.get(k):
                hint = ("the file has the original Caffe AlexNet layout (96/256/384/384/256 channels, grouped "
                        "convolutions); this model is torchvision's single-tower AlexNet (64/192/384/256/256): "
                        "use torchvision-layout ImageNet weights")
            raise InputError(f"shape {tuple(state[k].shape)} does not match the model's {tuple(own[k].shape)} ({hint})",
                             file=source, field=k)
    with torch.no_grad():
        for k in wanted:
            own[k].copy_(state[k].to(own[k].dtype))
    return wanted


def backbone(*, width: float = 1.0, dropout: float = 0.5, fc7_factor: float = 1.0) -> AlexNet:
    """The AlexNet backbone (no last layer). It draws the random numbers of the 1000-way ImageNet
    layer too (and drops it), so that a head built next starts from the same random weights as in
    runs made when the head replaced that layer: their results reproduce exactly."""
    net = AlexNet(None, width=width, dropout=dropout, fc7_factor=fc7_factor)
    nn.Linear(net.feature_size, 1000)
    return net


def _build(m, architecture) -> AlexNet:
    """The AlexNet backbone of a config's ``[model]`` section."""
    return backbone(width=m.width, dropout=m.dropout, fc7_factor=m.fc7_factor)


def _load_weights(backbone: AlexNet, source: str, sha256: str | None) -> str:
    """Copy a standard-keyed state dict file's front end into ``backbone``; returns the file's sha256."""
    import hashlib

    load_trunk_weights(backbone, read_state_dict(source, sha256=sha256), source=str(source))
    with open(source, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _read_architecture(source: str) -> None:
    if Path(source).is_dir():
        raise InputError("AlexNet's --init-weights is a state-dict file, not a folder (a folder in the "
                         "save_pretrained layout is for the transformers families: set model.arch)", file=str(source))
    return None


FAMILY = register(Family(
    name="alexnet", description="AlexNet (the paper's network), plain torch, torchvision's state-dict layout",
    input=InputSpec(size=227, warp=256, mean=IMAGENET_MEAN, std=IMAGENET_STD, min_size=MIN_INPUT_SIZE),
    build=_build, read_architecture=_read_architecture, load_weights=_load_weights, weights_kind="file",
    where="torchvision's ImageNet AlexNet state dict (alexnet-owt-7be5be79.pth), downloaded by you; see docs/models.md",
    default_pretraining="ImageNet-1k"))

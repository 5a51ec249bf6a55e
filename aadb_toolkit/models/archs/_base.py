"""The backbone interface and its registry. A backbone family (one file per family in this folder)
declares a :class:`Family`: how to build its feature extractor (from a stored architecture, so a
trained run reloads without the original weights), how to read its pretrained weights, its input
spec and where a user gets the weights. A feature extractor is an ``nn.Module`` whose ``forward``
maps normalised images (N, 3, H, W) to features (N, D); it has ``feature_size`` (D),
``layer_groups()`` (its blocks from input to output, for fine-tuning the last N and for layer-wise
lr decay) and ``architecture()`` (a JSON-able description to rebuild it, or None when the config
alone describes it). Heads, losses, samplers and stages only ever see the features.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from ..._registry import lookup
from ...errors import InputError

#: torchvision's ImageNet normalisation (AlexNet, DINOv2, ResNet checkpoints).
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class InputSpec:
    """What a family's pretrained weights expect: the crop side ``size``, the ``warp`` side it is
    cut from (``resize`` = "warp": the whole image resized to warp², aspect ratio not kept, as the
    paper does), and the per-channel ``mean``/``std`` of the normalisation."""

    size: int
    warp: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize: str = "warp"
    #: smallest crop side the network accepts
    min_size: int = 32


@dataclass(frozen=True)
class WeightsInfo:
    """Identity of the pretrained weights a run started from (goes into run.json and results)."""

    family: str
    weights_id: str | None
    source: str | None
    sha256: str | None
    pretraining_data: str | None
    architecture: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"family": self.family, "weights_id": self.weights_id, "source": self.source,
                "weights_sha256": self.sha256, "pretraining_data": self.pretraining_data,
                "architecture": dict(self.architecture) if self.architecture is not None else None}


@dataclass(frozen=True)
class Family:
    """One backbone family.

    ``build(model_section, architecture)`` returns a fresh feature extractor (``architecture`` is
    what :meth:`read_architecture` or a run file gives; None for families the config alone
    describes). ``read_architecture(source)`` reads it from the weights' location (None: not
    needed). ``load_weights(backbone, source, sha256)`` copies pretrained weights in and checks the
    digest. ``weights_kind`` says what ``--init-weights`` is: "file" or "folder" (save_pretrained).
    """

    name: str
    description: str
    input: InputSpec
    build: Callable[[Any, Mapping[str, Any] | None], Any]
    read_architecture: Callable[[str], Mapping[str, Any] | None]
    load_weights: Callable[[Any, str, str | None], str]
    weights_kind: str
    #: where a user gets the weights (shown by `aadb baselines` and docs/models.md)
    where: str
    #: weights id → pretraining data, where known
    pretraining: Mapping[str, str] = field(default_factory=dict)
    default_pretraining: str | None = None

    def pretraining_data(self, weights_id: str | None) -> str | None:
        """The pretraining data of a weights id, or the family's default where known."""
        return self.pretraining.get(weights_id or "", self.default_pretraining)


#: family name → declaration; filled by the family modules (``archs/<family>_arch.py``).
BACKBONES: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Add a family to :data:`BACKBONES` (one call at the bottom of each family's file)."""
    if family.name in BACKBONES:
        raise ValueError(f"backbone family {family.name!r} registered twice")
    BACKBONES[family.name] = family
    return family


def family(name: str) -> Family:
    """The registered family ``name``; an unknown name is an InputError with the closest names."""
    return lookup(BACKBONES, name, what="backbone family", field="model.arch")


#: Hex digits of a file's digest an error shows when it differs from the expected one: enough to
#: tell files apart, never the whole digest, which would let anyone test guesses of a file's content
#: (the rater key's, if a key file was given by mistake) faster than the key fingerprint allows.
DIGEST_SHOWN = 12


def check_sha256(digest: str, expected: str | None, source: str) -> None:
    """Raise an InputError when ``expected`` (hex, optionally ``sha256:``-prefixed) differs from ``digest``."""
    if expected is not None and digest.lower() != expected.lower().removeprefix("sha256:"):
        raise InputError(f"sha256 mismatch: the weights' digest begins {digest[:DIGEST_SHOWN]}…, expected "
                         f"{expected}", file=source, field="--init-sha256")


#: Said of a weights file torch cannot read, instead of torch's own message, which quotes the file's
#: text and advises unpickling it.
UNREADABLE_WEIGHTS = ("damaged, not a torch file, or one that only unpickling could read, which the toolkit "
                      "never does")


def weights_error(exc: BaseException) -> str:
    """What an error says of a failed weights load: for an unpickling failure only its type and
    :data:`UNREADABLE_WEIGHTS` (torch's text quotes the file), otherwise the exception's first line."""
    import pickle

    if isinstance(exc, pickle.UnpicklingError):
        return f"{type(exc).__name__}: {UNREADABLE_WEIGHTS}"
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def load_weights_only(path: str | Path, *, mmap: bool = False) -> Any:
    """``torch.load(path, weights_only=True)`` onto the CPU. A missing file, or one torch cannot
    read, is an InputError in one short line: torch's own message names the file's first bytes and
    advises unpickling it, which the toolkit never does."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except FileNotFoundError as exc:
        raise InputError("no such file", file=str(path)) from exc
    except Exception as exc:  # torch raises many types (UnpicklingError, RuntimeError, EOFError)
        raise InputError(f"cannot read as a weights-only torch file ({type(exc).__name__}): {UNREADABLE_WEIGHTS}",
                         file=str(path)) from exc

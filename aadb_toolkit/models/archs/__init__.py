"""Backbones, one file per family (``<family>_arch.py``), each registering a
:class:`~._base.Family` in :data:`BACKBONES` (see docs/models.md, "Adding a backbone"):
AlexNet (plain torch, the paper's network) and, through Hugging Face ``transformers``, DINOv2, the
CLIP vision tower, ViT and ResNet."""

from ._base import BACKBONES, IMAGENET_MEAN, IMAGENET_STD, Family, InputSpec, WeightsInfo, family, register
from . import alexnet_arch, clip_arch, dinov2_arch, resnet_arch, vit_arch  # noqa: F401  (they register)

__all__ = ["BACKBONES", "IMAGENET_MEAN", "IMAGENET_STD", "Family", "InputSpec", "WeightsInfo", "family", "register"]

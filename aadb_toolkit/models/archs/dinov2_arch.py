"""DINOv2 (Oquab et al. 2023) through transformers' ``Dinov2Model``: the features are the
layer-normed CLS token (``pooler_output``), as Charm's AADB model uses. Position embeddings are
interpolated to any input size."""

from __future__ import annotations

from ._base import IMAGENET_MEAN, IMAGENET_STD, InputSpec
from ._hf import HFSpec, blocks, hf_family

HF_SPEC = HFSpec(
    model_types=("dinov2",), config_class="Dinov2Config", model_class="Dinov2Model",
    pool=lambda out: out.pooler_output,
    groups=lambda m: (m.embeddings, blocks(m), m.layernorm),
    feature_size=lambda c: c.hidden_size)

FAMILY = hf_family(
    name="dinov2", description="DINOv2 ViT (CLS token), transformers Dinov2Model", spec=HF_SPEC,
    input=InputSpec(size=224, warp=256, mean=IMAGENET_MEAN, std=IMAGENET_STD, min_size=14),
    where="https://huggingface.co/facebook/dinov2-small (or -base): "
          "`huggingface-cli download facebook/dinov2-small --local-dir DIR`",
    pretraining={"facebook/dinov2-small": "LVD-142M", "facebook/dinov2-base": "LVD-142M",
                 "facebook/dinov2-large": "LVD-142M"}, default_pretraining="LVD-142M")

"""ResNet (He et al. 2016) through transformers' ``ResNetModel``: the features are the globally
average-pooled last stage (2048-d for ResNet-50). Weights of ``ResNetForImageClassification`` (e.g.
microsoft/resnet-50) load too (the ``resnet.`` prefix is stripped, the classifier ignored)."""

from __future__ import annotations

from torch import nn

from ._base import IMAGENET_MEAN, IMAGENET_STD, InputSpec
from ._hf import HFSpec, hf_family

HF_SPEC = HFSpec(
    model_types=("resnet",), config_class="ResNetConfig", model_class="ResNetModel",
    pool=lambda out: out.pooler_output.flatten(1),
    groups=lambda m: (m.embedder, list(m.encoder.stages), nn.ModuleList()),
    feature_size=lambda c: c.hidden_sizes[-1])

FAMILY = hf_family(
    name="resnet", description="ResNet (global average pool), transformers ResNetModel", spec=HF_SPEC,
    input=InputSpec(size=224, warp=256, mean=IMAGENET_MEAN, std=IMAGENET_STD, min_size=32),
    where="https://huggingface.co/microsoft/resnet-50: `huggingface-cli download microsoft/resnet-50 --local-dir DIR`",
    pretraining={"microsoft/resnet-50": "ImageNet-1k"}, default_pretraining=None)

"""ViT (Dosovitskiy et al. 2021) through transformers' ``ViTModel`` without its pooler: the
features are the layer-normed CLS token. Weights of ``ViTForImageClassification`` load too (the
``vit.`` prefix is stripped and the classifier ignored)."""

from __future__ import annotations

from ._hf import HFSpec, blocks, hf_family
from ._base import InputSpec

HF_SPEC = HFSpec(
    model_types=("vit",), config_class="ViTConfig", model_class="ViTModel",
    pool=lambda out: out.last_hidden_state[:, 0],
    groups=lambda m: (m.embeddings, blocks(m), m.layernorm),
    feature_size=lambda c: c.hidden_size, interpolate=True, model_kwargs={"add_pooling_layer": False})

FAMILY = hf_family(
    name="vit", description="ViT (CLS token), transformers ViTModel", spec=HF_SPEC,
    input=InputSpec(size=224, warp=256, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), min_size=16),
    where="https://huggingface.co/google/vit-base-patch16-224: "
          "`huggingface-cli download google/vit-base-patch16-224 --local-dir DIR`",
    pretraining={"google/vit-base-patch16-224": "ImageNet-21k, fine-tuned on ImageNet-1k",
                 "google/vit-base-patch16-224-in21k": "ImageNet-21k"})

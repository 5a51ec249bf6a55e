"""The vision tower of CLIP (Radford et al. 2021) through transformers' ``CLIPVisionModel``: the
features are the post-layer-norm CLS token (``pooler_output``, before CLIP's projection). A folder
of the whole CLIP model (``model_type`` "clip") is accepted: its ``vision_config`` and the
``vision_model.*`` weights are used, the text tower is ignored."""

from __future__ import annotations

from torch import nn

from ._base import InputSpec
from ._hf import HFSpec, blocks, hf_family

#: OpenAI CLIP's normalisation (preprocessor_config.json of the openai/clip-vit-* checkpoints).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

def _groups(v: nn.Module) -> tuple[nn.Module, list[nn.Module], nn.Module]:
    return nn.ModuleList([v.embeddings, v.pre_layrnorm]), blocks(v), v.post_layernorm


HF_SPEC = HFSpec(
    model_types=("clip", "clip_vision_model"), config_class="CLIPVisionConfig", model_class="CLIPVisionModel",
    pool=lambda out: out.pooler_output,
    groups=lambda m: _groups(getattr(m, "vision_model", m)),  # transformers 4.x wraps the tower in vision_model
    feature_size=lambda c: c.hidden_size, interpolate=True, sub_config="vision_config")

FAMILY = hf_family(
    name="clip_vision", description="CLIP vision tower (CLS token), transformers CLIPVisionModel", spec=HF_SPEC,
    input=InputSpec(size=224, warp=256, mean=CLIP_MEAN, std=CLIP_STD, min_size=14),
    where="https://huggingface.co/openai/clip-vit-base-patch16 (or clip-vit-large-patch14): "
          "`huggingface-cli download openai/clip-vit-base-patch16 --local-dir DIR`",
    pretraining={"openai/clip-vit-base-patch16": "WIT-400M (OpenAI CLIP web image-text pairs)",
                 "openai/clip-vit-large-patch14": "WIT-400M (OpenAI CLIP web image-text pairs)"})

"""Inference on cached pixels: the model's scores and its fc7 features for every image, from the
centre crop in eval mode (the paper's test-time view), in batches on any device."""

from __future__ import annotations

import numpy as np
import torch

from . import pipeline


def _centre_crop_outputs(model: torch.nn.Module, sampler: pipeline.CropSampler, device: str, forward,
                         batch_size: int, amp: bool) -> list[torch.Tensor]:
    """``forward(model, x)`` on the centre crops of every cached image, in eval mode and batches,
    as float32 CPU tensors (the model's train/eval mode is restored afterwards)."""
    was_training = model.training
    model.eval()
    n = sampler.pixels.shape[0]
    chunks = []
    with torch.no_grad():
        for start in range(0, n, batch_size):
            idx = np.arange(start, min(n, start + batch_size))
            x = sampler.crops(idx, *sampler.centre(len(idx))).to(device, non_blocking=True)
            with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=amp):
                chunks.append(forward(model, x).float().cpu())
    model.train(was_training)
    return chunks



def score_images(model: torch.nn.Module, sampler: pipeline.CropSampler, device: str, *, batch_size: int = 256,
                 amp: bool = False) -> np.ndarray:
    """The model's ``score`` for every cached image (centre crop, eval mode), as float64."""
    chunks = _centre_crop_outputs(model, sampler, device, lambda m, x: m(x)["score"], batch_size, amp)
    return torch.cat(chunks).numpy().astype(np.float64) if chunks else np.empty(0, np.float64)



def attribute_predictions(model: torch.nn.Module, sampler: pipeline.CropSampler, device: str, *,
                          batch_size: int = 256, amp: bool = False) -> np.ndarray:
    """The attribute branch's predictions (N, A) for every cached image (centre crop, eval mode),
    as float64: the head's ``attributes`` output (models with an ``[attributes]`` config)."""
    chunks = _centre_crop_outputs(model, sampler, device, lambda m, x: m(x)["attributes"], batch_size, amp)
    return torch.cat(chunks).numpy().astype(np.float64) if chunks else np.zeros((0, 0), np.float64)


def fc7_features(model: torch.nn.Module, sampler: pipeline.CropSampler, device: str, *, batch_size: int = 256,
                 amp: bool = False) -> np.ndarray:
    """fc7 activations (N, D) of every cached image (centre crop, eval mode), as float32."""
    chunks = _centre_crop_outputs(model, sampler, device, lambda m, x: m.fc7(x), batch_size, amp)
    return torch.cat(chunks).numpy() if chunks else np.zeros((0, model.fc7_size), np.float32)



def scores_and_fc7(model: torch.nn.Module, sampler: pipeline.CropSampler, device: str, *, batch_size: int = 256,
                   amp: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """:func:`score_images` and :func:`fc7_features` from one pass: the head is applied to the fc7
    it reads, as ``model.forward`` does. Returns ``(scores (N,) float64, features (N, D) float32)``."""
    def both(m, x):
        h = m.fc7(x)
        return torch.cat([m.classifier[6](h)["score"].float()[:, None], h.float()], dim=1)

    chunks = _centre_crop_outputs(model, sampler, device, both, batch_size, amp)
    if not chunks:
        return np.empty(0, np.float64), np.zeros((0, model.fc7_size), np.float32)
    out = torch.cat(chunks)
    return out[:, 0].numpy().astype(np.float64), out[:, 1:].contiguous().numpy()


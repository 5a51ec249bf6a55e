"""Inference on cached pixels (or cached features, in frozen mode): the model's scores and its
backbone features for every image, from the centre crop in eval mode (the paper's test-time view),
in batches on any device."""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from . import pipeline


def _centre_crop_outputs(model: torch.nn.Module, sampler: pipeline.CropSampler, device: str, forward,
                         batch_size: int, amp: bool, progress: bool | None = False,
                         desc: str = "inference") -> list[torch.Tensor]:
    """``forward(model, x)`` on the centre crops of every cached image, in eval mode and batches,
    as float32 CPU tensors (the model's train/eval mode is restored afterwards)."""
    was_training = model.training
    model.eval()
    n = sampler.pixels.shape[0]
    chunks = []
    with torch.no_grad():
        for start in tqdm(range(0, n, batch_size), desc=desc, leave=False,
                          disable=None if progress is None else not progress):
            idx = np.arange(start, min(n, start + batch_size))
            x = sampler.crops(idx, *sampler.centre(len(idx)), device=device)
            with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=amp):
                chunks.append(forward(model, x).float().cpu())
    model.train(was_training)
    return chunks


def score_images(model: torch.nn.Module, sampler: pipeline.CropSampler, device: str, *, batch_size: int = 256,
                 amp: bool = False) -> np.ndarray:
    """The model's ``score`` for every cached image (centre crop, eval mode), as float64."""
    chunks = _centre_crop_outputs(model, sampler, device, lambda m, x: m(x)["score"], batch_size, amp)
    return torch.cat(chunks).numpy().astype(np.float64) if chunks else np.empty(0, np.float64)


def feature_rows(model: torch.nn.Module, sampler: pipeline.CropSampler, device: str, *, batch_size: int = 256,
                 amp: bool = False, progress: bool | None = False, desc: str = "features") -> np.ndarray:
    """The backbone's features (N, D) of every cached image (centre crop, eval mode), as float32
    (AlexNet: fc7 after its ReLU)."""
    chunks = _centre_crop_outputs(model, sampler, device, lambda m, x: m.features(x), batch_size, amp,
                                  progress, desc)
    return torch.cat(chunks).numpy() if chunks else np.zeros((0, model.feature_size), np.float32)

def attribute_predictions(model: torch.nn.Module, sampler: pipeline.CropSampler, device: str, *,
                          batch_size: int = 256, amp: bool = False) -> np.ndarray:
    """The attribute branch's predictions (N, A) for every cached image (centre crop, eval mode),
    as float64: the head's ``attributes`` output (models with an ``[attributes]`` config)."""
    chunks = _centre_crop_outputs(model, sampler, device, lambda m, x: m(x)["attributes"], batch_size, amp)
    return torch.cat(chunks).numpy().astype(np.float64) if chunks else np.zeros((0, 0), np.float64)


def trunk_and_features(model: torch.nn.Module, sampler: pipeline.CropSampler, device: str, *,
                       batch_size: int = 256, amp: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The trunk output (the input of the top layers; the features themselves for backbones without
    a separate top) and the features of every cached image (centre crop, eval mode), as float32
    tensors on ``device`` (what ContClass is fine-tuned and clustered on)."""
    was_training = model.training
    model.eval()
    n = sampler.pixels.shape[0]
    trunks, feats = [], []
    with torch.no_grad():
        for start in range(0, n, batch_size):
            idx = torch.arange(start, min(n, start + batch_size))
            x = sampler.crops(idx, *sampler.centre(len(idx)), device=device)
            with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=amp):
                t = model.trunk(x)
                trunks.append(t.float())
                feats.append(model.top(t).float())
    model.train(was_training)
    return torch.cat(trunks), torch.cat(feats)


def scores_and_features(model: torch.nn.Module, sampler: pipeline.CropSampler, device: str, *,
                        batch_size: int = 256, amp: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """:func:`score_images` and :func:`feature_rows` from one pass: the head is applied to the
    features it reads, as ``model.forward`` does. Returns ``(scores (N,) float64, features (N, D) float32)``."""
    def both(m, x):
        t = m.trunk(x)
        h = m.top(t)
        return torch.cat([m.head_outputs(h, t)["score"].float()[:, None], h.float()], dim=1)

    chunks = _centre_crop_outputs(model, sampler, device, both, batch_size, amp)
    if not chunks:
        return np.empty(0, np.float64), np.zeros((0, model.feature_size), np.float32)
    out = torch.cat(chunks)
    return out[:, 0].numpy().astype(np.float64), out[:, 1:].contiguous().numpy()

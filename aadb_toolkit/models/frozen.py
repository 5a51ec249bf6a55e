"""Frozen-features mode: the backbone's features of every image are computed once (centre crop,
eval mode) and cached on disk, then only the head trains on them — the LAION predictor's recipe,
minutes on a CPU even for ViT-L. The cache file is keyed like the decode cache (the images'
ids, bytes and warp size, :func:`.pipeline.cache_key`) plus the crop, the normalisation and a
digest of the backbone's weights, so a different image, input or backbone never reuses it.
:class:`FeatureSampler` gives the trainer the same interface as :class:`.pipeline.CropSampler`
(one feature row per image: no random crops or flips in this mode)."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
import numpy as np
import torch

from .._atomic import atomic_path
from . import pipeline
from .inference import feature_rows

log = logging.getLogger(__name__)

#: Bumped whenever the cached features change for the same inputs and weights.
FEATURE_VERSION = 1


class FeatureSampler:
    """Cached features (N, D) behind :class:`.pipeline.CropSampler`'s interface: ``crops`` returns
    the rows of the images asked for; offsets and flips are ignored (always zero)."""

    def __init__(self, features: torch.Tensor) -> None:
        self.pixels = features  # the name the trainer and inference read the cache's size and device from

    @property
    def device(self) -> torch.device:
        """Where the cached features live."""
        return self.pixels.device

    def random_offsets(self, rng: np.random.Generator, n: int, hflip: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Zero offsets, no flips (one embedding per image)."""
        return np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, bool)

    def random_offsets_t(self, n: int, hflip: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Zero offsets, no flips, as tensors on the features' device."""
        z = torch.zeros(n, dtype=torch.long, device=self.device)
        return z, z, torch.zeros(n, dtype=torch.bool, device=self.device)

    def centre(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Zero offsets, no flips."""
        return self.random_offsets(np.random.default_rng(0), n, False)

    def crops(self, idx, oy, ox, flip, *, device: str | torch.device | None = None) -> torch.Tensor:
        """The feature rows of images ``idx`` (on ``device``, default the features' own)."""
        rows = self.pixels[torch.as_tensor(idx, dtype=torch.long, device=self.device)]
        return rows.to(device, non_blocking=True) if device is not None else rows


def feature_key(pixel_key: str, weights_digest: str, sampler: pipeline.CropSampler) -> str:
    """The cache key of one image set's features under one backbone and input spec."""
    spec = f"{FEATURE_VERSION}\n{pixel_key}\n{weights_digest}\n{sampler.crop}\n"
    mean, std = sampler._mean_std
    spec += ",".join(f"{v:.8g}" for v in (*mean, *std))
    return hashlib.sha256(spec.encode()).hexdigest()[:20]


def cached_features(net: torch.nn.Module, sampler: pipeline.CropSampler, device: str, *, key: str,
                    cache_dir: Path | None, batch_size: int, amp: bool, write: bool = True,
                    progress: bool | None = None, desc: str = "features") -> FeatureSampler:
    """The network's features of every image of ``sampler``, read from ``cache_dir`` when cached
    there under ``key``, else computed (and saved, when ``write``). Returned on ``sampler``'s device."""
    file = Path(cache_dir) / f"features-{key}.npy" if cache_dir is not None else None
    arr = None
    if file is not None and file.is_file():
        arr = np.load(file, allow_pickle=False)
        if arr.shape != (sampler.pixels.shape[0], net.feature_size) or arr.dtype != np.float32:
            log.warning("ignoring feature cache %s with unexpected shape %s", file, arr.shape)
            arr = None
    if arr is None:
        arr = feature_rows(net, sampler, device, batch_size=batch_size, amp=amp, progress=progress, desc=desc)
        if file is not None and write:
            with atomic_path(file) as tmp:
                with open(tmp, "wb") as fh:
                    np.save(fh, arr, allow_pickle=False)
    return FeatureSampler(torch.from_numpy(arr).to(sampler.pixels.device))


def digest_weights(module: torch.nn.Module) -> str:
    """A short digest of a module's weights (state_sha256), naming its feature cache."""
    from .runs import state_sha256

    return state_sha256(module.state_dict())[:20]

"""Input pipeline (paper §4.5): decode → warp to ``warp_size``² (aspect ratio not kept) → random
``crop_size``² crop for training, centre crop at test. Decoded, warped images are cached once as a
uint8 tensor (N, W, W, 3) — on the training device when it is a GPU — and crops are taken from it
with one gather per batch, so epochs never re-decode and a GPU is not input-bound.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm.auto import tqdm

from .._atomic import atomic_path
from ..errors import InputError, excerpt
from ..sources import AADBData
from .config import machine_memory

log = logging.getLogger(__name__)


#: Bumped whenever decoding changes the cached pixels (2: DCT-scaled JPEG decode).
DECODER_VERSION = 2


def decode_warp(data: AADBData, image_id: str, warp_size: int) -> np.ndarray:
    """Decode one image (RGB, EXIF-upright) and warp it to ``warp_size``² as a uint8 (H, W, 3) array.

    JPEGs are decoded DCT-scaled (``Image.draft``) to the smallest 1/2, 1/4 or 1/8 size that is
    still at least ``warp_size`` on both sides, before the EXIF rotation and the resize: most of the
    cost at photo size was the full-size transpose and resize, not the decode.
    """
    try:
        with Image.open(io.BytesIO(data.image_bytes(image_id))) as im:
            im.draft("RGB", (warp_size, warp_size))
            up = ImageOps.exif_transpose(im).convert("RGB")
    except Image.DecompressionBombError as exc:  # Pillow's pixel cap, checked before decoding
        raise InputError(f"refusing to decode image: {excerpt(exc, 120)} (a decompression bomb?)",
                         file=str(image_id)) from exc
    except (OSError, ValueError, UnidentifiedImageError, KeyError) as exc:
        raise InputError(f"cannot decode image: {exc}", file=str(image_id)) from exc
    return np.asarray(up.resize((warp_size, warp_size), Image.BILINEAR), dtype=np.uint8)


def bytes_fingerprint(data: AADBData, image_ids: Sequence[str]) -> str:
    """sha256 over the images' ids and encoded bytes: changes whenever any image's content does."""
    h = hashlib.sha256()
    for i in image_ids:
        try:
            raw = data.image_bytes(i)
        except (OSError, KeyError) as exc:
            raise InputError(f"cannot read image: {exc}", file=str(i)) from exc
        h.update(f"{i}\t{hashlib.sha256(raw).hexdigest()}\n".encode())
    return h.hexdigest()


def cache_key(data: AADBData, image_ids: Sequence[str], warp_size: int, content: str | None = None) -> str:
    """A short hash naming the cache of these images at this size: it covers the ids, the decoder
    version and the image bytes' fingerprint (``content``; computed here when not given)."""
    content = content if content is not None else bytes_fingerprint(data, image_ids)
    h = hashlib.sha256(f"{DECODER_VERSION}\n{warp_size}\n{content}\n".encode())
    for i in image_ids:
        h.update(f"{i}\n".encode())
    return h.hexdigest()[:20]


def decode_all(data: AADBData, image_ids: Sequence[str], warp_size: int, *, workers: int = 4,
               progress: bool | None = None, desc: str = "decode", out: np.ndarray | None = None) -> np.ndarray:
    """Decode and warp every image (threads; PIL releases the GIL) into one uint8 (N, W, W, 3) array:
    ``out`` when given (e.g. a memory-mapped file, so an AVA-scale cache never sits in RAM), else a
    new one, refused when it would take more than half of this machine's memory."""
    shape = (len(image_ids), warp_size, warp_size, 3)
    if out is None:
        need = len(image_ids) * warp_size * warp_size * 3
        memory = machine_memory()
        if need > memory // 2:
            raise InputError(f"the pixel cache of {len(image_ids):,} images at warp_size {warp_size} needs "
                             f"{need / 2**30:,.1f} GiB, more than half of this machine's memory "
                             f"({memory / 2**30:,.1f} GiB); lower data.warp_size", field="data.warp_size")
        out = np.empty(shape, np.uint8)
    elif out.shape != shape or out.dtype != np.uint8:
        raise ValueError(f"out must be a uint8 array of shape {shape}")

    def one(k: int) -> None:
        out[k] = decode_warp(data, image_ids[k], warp_size)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(tqdm(pool.map(one, range(len(image_ids))), total=len(image_ids), desc=desc, disable=None if progress is None else not progress,
                  leave=False))
    return out


def cache_file(cache_dir: Path, data: AADBData, image_ids: Sequence[str], warp_size: int,
               content: str | None = None) -> Path:
    """Where the cache of these images at this size lives in ``cache_dir`` (named by :func:`cache_key`)."""
    return Path(cache_dir) / f"images-{warp_size}-{cache_key(data, image_ids, warp_size, content)}.npy"


def load_or_build_cache(data: AADBData, image_ids: Sequence[str], warp_size: int, *,
                        cache_dir: Path | None = None, workers: int = 4, progress: bool | None = None,
                        write: bool = True, desc: str = "decode", content: str | None = None) -> np.ndarray:
    """The warped uint8 images, read from ``cache_dir`` when cached there, else decoded (and saved
    when ``write``). The cache file is named by :func:`cache_key`, so changed image bytes miss it.

    A cache file is returned memory-mapped (read-only): pages are read from disk as they are used
    and shared between processes, so an AVA-scale cache (~45 GB at 256²) needs neither that much
    RAM nor a copy per data-parallel rank. A new cache is decoded straight into the (temporary,
    then renamed) file for the same reason."""
    file = None
    shape = (len(image_ids), warp_size, warp_size, 3)
    if cache_dir is not None:
        file = cache_file(cache_dir, data, image_ids, warp_size, content)
        if file.is_file():
            arr = np.load(file, allow_pickle=False, mmap_mode="r")
            if arr.shape == shape and arr.dtype == np.uint8:
                _mark_used(file)
                return arr
            log.warning("ignoring cache %s with unexpected shape %s", file, arr.shape)
    if file is None or not write:
        return decode_all(data, image_ids, warp_size, workers=workers, progress=progress, desc=desc)
    file.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(file) as tmp:
        mm = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        decode_all(data, image_ids, warp_size, workers=workers, progress=progress, desc=desc, out=mm)
        mm.flush()
        del mm
    _mark_used(file)
    return np.load(file, allow_pickle=False, mmap_mode="r")


def pixels_to(arr: np.ndarray, device: str | torch.device, *, chunk_bytes: int = 1 << 28) -> torch.Tensor:
    """A uint8 image cache as a tensor on ``device``: on the CPU the (memory-mapped) array itself,
    without a copy; elsewhere uploaded in chunks, so the host never holds a second full copy."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not writable.*")
        host = torch.from_numpy(arr) if arr.flags.writeable else torch.from_numpy(np.asarray(arr))
    if torch.device(device).type == "cpu":
        return host
    out = torch.empty(tuple(arr.shape), dtype=torch.uint8, device=device)
    per = max(1, chunk_bytes // max(1, int(np.prod(arr.shape[1:]))))
    for start in range(0, arr.shape[0], per):
        out[start:start + per].copy_(host[start:start + per])
    return out


def _as_index(a, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """An index/offset/flip argument as a tensor on ``device``: a tensor is moved (never through
    numpy, so a device tensor is not copied to the host when the cache lives on its device)."""
    if isinstance(a, torch.Tensor):
        return a.to(device=device, dtype=dtype)
    return torch.as_tensor(np.asarray(a), dtype=dtype, device=device)


def _mark_used(file: Path) -> None:
    """Set the cache file's times to now on the clock of ``time.time()`` (file systems stamp with a
    coarser clock, which may lag behind it), so :func:`prune_cache` sees it as used."""
    now = time.time_ns()
    os.utime(file, ns=(now, now))


#: The names of the pixel caches :func:`load_or_build_cache` writes (and :func:`prune_cache` removes).
CACHE_GLOB = "images-*.npy"


def prune_cache(cache_dir: Path, *, used_since: float) -> list[Path]:
    """Remove the pixel caches in ``cache_dir`` not used (read or written) since ``used_since`` (a
    ``time.time()``): called once a run or a reproduction has loaded everything it needs, so a
    cache holds only the entries of the current data and sizes instead of growing with every
    change of the images or of ``warp_size``. Returns the removed files."""
    removed = []
    for f in sorted(Path(cache_dir).glob(CACHE_GLOB)):
        try:
            if f.is_symlink() or not f.is_file() or f.stat().st_mtime >= used_since:
                continue
            f.unlink()
        except FileNotFoundError:
            continue
        removed.append(f)
    if removed:
        log.info("removed %d unused cache file(s) from %s", len(removed), cache_dir)
    return removed


class CropSampler:
    """Turns cached uint8 images into normalised float crops.

    ``crops(idx, oy, ox, flip)`` gathers the (crop × crop) windows at the given offsets in one
    indexing op on the cache's device (flip mirrors horizontally) and normalises them on ``device``
    (default: the cache's). Arguments may be tensors on any device or arrays; the training loop
    passes device tensors from :meth:`random_offsets_t`, so a step never converts through numpy.
    """

    def __init__(self, pixels: torch.Tensor, crop_size: int, mean: Sequence[float], std: Sequence[float]) -> None:
        if pixels.dtype != torch.uint8 or pixels.ndim != 4 or pixels.shape[-1] != 3:
            raise ValueError("pixels must be a uint8 (N, W, W, 3) tensor")
        self.pixels = pixels
        self.warp = int(pixels.shape[1])
        self.crop = int(crop_size)
        self._mean_std = (tuple(float(m) for m in mean), tuple(float(s) for s in std))
        self._norm: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
        self.arange = torch.arange(self.crop, device=pixels.device)

    @property
    def device(self) -> torch.device:
        """The device the cached pixels live on."""
        return self.pixels.device

    def _stats(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if device not in self._norm:
            mean, std = self._mean_std
            self._norm[device] = (torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1) * 255,
                                  torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1) * 255)
        return self._norm[device]

    def random_offsets(self, rng: np.random.Generator, n: int, hflip: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Uniform crop offsets (and flips when ``hflip``) for ``n`` images from a seeded generator."""
        span = self.warp - self.crop + 1
        oy = rng.integers(0, span, n)
        ox = rng.integers(0, span, n)
        flip = rng.random(n) < 0.5 if hflip else np.zeros(n, bool)
        return oy, ox, flip

    def random_offsets_t(self, n: int, hflip: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`random_offsets` drawn in torch on the cache's device from torch's (seeded) default
        generator: no host round trip in the training step."""
        span = self.warp - self.crop + 1
        dev = self.device
        oy = torch.randint(0, span, (n,), device=dev)
        ox = torch.randint(0, span, (n,), device=dev)
        flip = torch.rand(n, device=dev) < 0.5 if hflip else torch.zeros(n, dtype=torch.bool, device=dev)
        return oy, ox, flip

    def centre(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Centre-crop offsets for ``n`` images (test time)."""
        o = (self.warp - self.crop) // 2
        return np.full(n, o), np.full(n, o), np.zeros(n, bool)

    def crops_uint8(self, idx, oy, ox, flip) -> torch.Tensor:
        """The raw uint8 crops (B, crop, crop, 3) of images ``idx``, on the cache's device.

        The cache is viewed as every crop window, (N, span, span, crop, crop, 3) with no copy, so one
        index per crop copies whole windows; the flipped crops then have their columns mirrored.
        2–5× faster on the CPU than indexing each pixel (benchmarks/bench_crops.py)."""
        dev = self.device
        idx_t, oy_t, ox_t = (_as_index(a, torch.long, dev) for a in (idx, oy, ox))
        fl = _as_index(flip, torch.bool, dev)
        span, (sn, sy, sx, sc) = self.warp - self.crop + 1, self.pixels.stride()
        windows = self.pixels.as_strided((self.pixels.shape[0], span, span, self.crop, self.crop, 3),
                                         (sn, sy, sx, sy, sx, sc))
        x = windows[idx_t, oy_t, ox_t]
        cols = torch.where(fl[:, None], self.crop - 1 - self.arange, self.arange)
        return torch.gather(x, 2, cols[:, None, :, None].expand(x.shape))

    def crops(self, idx, oy, ox, flip, *, device: str | torch.device | None = None) -> torch.Tensor:
        """Normalised float32 crops (B, 3, crop, crop) of images ``idx`` at the given offsets, on
        ``device`` (default: the cache's). A host cache sends the uint8 crops (4× smaller than
        float), pinned and asynchronously, and normalises on the target device."""
        x = self.crops_uint8(idx, oy, ox, flip)
        dev = torch.device(device) if device is not None else self.device
        if x.device != dev:
            if x.device.type == "cpu" and dev.type == "cuda":
                x = x.pin_memory()
            x = x.to(dev, non_blocking=True)
        mean, std = self._stats(dev)
        out = torch.empty(x.shape[0], 3, self.crop, self.crop, device=dev)
        return out.copy_(x.permute(0, 3, 1, 2)).sub_(mean).div_(std)  # in place: one float buffer

"""A PyTorch entry point for researchers with their own model: :class:`AADBTorchDataset` serves one
split of a curated or published AADB (or anything :func:`aadb_toolkit.sources.load` reads) as a
``torch.utils.data.Dataset`` of images, scores, attributes and the image's individual ratings, and
:class:`PaperTransform` is the paper's input pipeline (§4.5: warp to 256², random 227² crop for
training, centre crop at test), computed exactly as the reference models compute it
(:mod:`aadb_toolkit.models.pipeline`). See docs/torch.md.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch
from PIL import Image

from . import paper, schema, sources
from .models.config import IMAGENET_MEAN, IMAGENET_STD
from .models.pipeline import CropSampler


class PaperTransform:
    """PIL image → normalised float tensor (3, crop, crop): warp to ``warp_size``² (bilinear, aspect
    ratio not kept), then a uniformly random crop (``train=True``, optionally mirrored with
    ``hflip``) or the centre crop, normalised with ImageNet's mean and std. Random crops draw from
    torch's generator, so DataLoader workers and ``torch.manual_seed`` control them."""

    def __init__(self, train: bool, *, warp_size: int = paper.WARP_SIZE, crop_size: int = paper.CROP_SIZE,
                 hflip: bool = False, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD):
        if crop_size > warp_size:
            raise ValueError(f"crop_size {crop_size} is larger than warp_size {warp_size}")
        self.train, self.warp_size, self.crop_size, self.hflip = train, warp_size, crop_size, hflip
        self.mean, self.std = tuple(mean), tuple(std)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        warped = np.asarray(image.convert("RGB").resize((self.warp_size, self.warp_size), Image.BILINEAR),
                            dtype=np.uint8)
        sampler = CropSampler(torch.from_numpy(warped.copy())[None], self.crop_size, self.mean, self.std)
        if self.train:
            span = self.warp_size - self.crop_size + 1
            oy, ox = torch.randint(span, (2,)).tolist()
            flip = bool(self.hflip and torch.rand(()) < 0.5)
            offsets = (np.array([oy]), np.array([ox]), np.array([flip]))
        else:
            offsets = sampler.centre(1)
        return sampler.crops(np.zeros(1, dtype=np.int64), *offsets)[0]

    def __repr__(self) -> str:
        mode = "random" if self.train else "centre"
        return f"PaperTransform(warp {self.warp_size}, {mode} crop {self.crop_size}{', hflip' if self.hflip else ''})"


def paper_transforms(*, warp_size: int = paper.WARP_SIZE, crop_size: int = paper.CROP_SIZE,
                     hflip: bool = False) -> dict[str, PaperTransform]:
    """The paper's transform for each split: random crops for ``train``, centre crops otherwise."""
    return {s: PaperTransform(s == "train", warp_size=warp_size, crop_size=crop_size, hflip=hflip)
            for s in schema.SPLITS}


class AADBTorchDataset(torch.utils.data.Dataset):
    """One split of AADB as a map-style Dataset. Item ``i`` is a dict:

    - ``image_id`` (str); ``image``: the upright RGB ``PIL.Image``, or ``transform(image)``;
    - ``score``: mean score rescaled to [0, 1] (float32 tensor), ``score_mean``: on the 1–5 scale;
    - ``attributes``: the 11 mean votes in [-1, 1] (float32, order of ``ATTRIBUTES``; NaN = no vote);
    - ``ratings``: this image's individual ratings, ``rater_id`` (list of str), ``score`` (int64
      tensor, 1–5) and ``attributes`` (float32 (n, 11), NaN where a vote was left blank).

    Ratings differ in number per image: batch with :func:`collate` (or ``ratings=False``).
    """

    ATTRIBUTES: tuple[str, ...] = schema.ATTRIBUTES

    def __init__(self, data: sources.AADBData | str | os.PathLike[str], split: str, *,
                 transform: Callable[[Image.Image], Any] | None = None, ratings: bool = True):
        self.data = data if isinstance(data, sources.AADBData) else sources.load(data)
        self.split = split
        self.images = self.data.split(split)  # raises on an unknown split name
        self.transform = transform
        self._attributes = self.images[list(schema.ATTRIBUTES)].to_numpy(dtype=np.float32)
        self._ratings = _ratings_by_image(self.data.ratings, self.images["image_id"]) if ratings else None
        if len(self.images):  # fail here, with the loader's clear error (a moved release, say), not in a worker
            self.data.image_bytes(self.images["image_id"].iloc[0])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for the {len(self)} images of split {self.split!r}")
        row = self.images.iloc[index]
        image = self.data.open_image(row["image_id"])
        item = {
            "image_id": str(row["image_id"]),
            "image": self.transform(image) if self.transform is not None else image,
            "score": torch.tensor(float(row["score"]), dtype=torch.float32),
            "score_mean": torch.tensor(float(row["score_mean"]), dtype=torch.float32),
            "attributes": torch.from_numpy(self._attributes[index].copy()),
        }
        if self._ratings is not None:
            item["ratings"] = self._ratings[item["image_id"]]
        return item

    def __repr__(self) -> str:
        return f"AADBTorchDataset({self.data.origin!r}, split={self.split!r}, {len(self)} images)"


def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch items: tensors stacked (images too, when a transform made them tensors), ``image_id``
    and the variable-length ``ratings`` kept as lists."""
    out: dict[str, Any] = {}
    for key in batch[0]:
        values = [item[key] for item in batch]
        out[key] = torch.stack(values) if isinstance(values[0], torch.Tensor) else values
    return out


def _ratings_by_image(ratings: pd.DataFrame, image_ids: pd.Series) -> dict[str, dict[str, Any]]:
    wanted = ratings[ratings["image_id"].isin(set(image_ids))]
    votes = wanted[list(schema.ATTRIBUTES)].astype("Float32").to_numpy(dtype=np.float32, na_value=np.nan)
    scores = wanted["score"].to_numpy(dtype=np.int64)
    raters = wanted["rater_id"].astype(str).to_numpy()
    groups = pd.Series(np.arange(len(wanted))).groupby(wanted["image_id"].astype(str).to_numpy()).indices
    empty = np.zeros(0, dtype=np.int64)
    by_image = {}
    for image_id in image_ids.astype(str):
        idx = groups.get(image_id, empty)
        by_image[image_id] = {"rater_id": raters[idx].tolist(), "score": torch.from_numpy(scores[idx]),
                              "attributes": torch.from_numpy(votes[idx])}
    return by_image

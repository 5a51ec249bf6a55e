"""One loader for every data source the downstream tools accept: a curated folder (the output of
``aadb curate``), a published Hugging Face dataset folder (the output of ``aadb publish``), or a
Hub repo id. Each gives the same canonical tables (SPEC §3) and access to the image bytes."""

from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from . import schema
from .errors import SourceError

_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass
class AADBData:
    """The canonical ``images`` and ``ratings`` tables of one data source, and its image bytes."""

    images: pd.DataFrame
    ratings: pd.DataFrame
    origin: str
    read_image_bytes: Callable[[str], bytes] = field(repr=False)

    def split(self, name: str) -> pd.DataFrame:
        """The ``images`` rows of one split (``train``, ``validation`` or ``test``)."""
        if name not in schema.SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {schema.SPLITS}")
        return self.images[self.images["split"] == name].reset_index(drop=True)

    def image_bytes(self, image_id: str) -> bytes:
        """The encoded bytes of one image, as released."""
        return self.read_image_bytes(image_id)

    def open_image(self, image_id: str):
        """Decode one image as an upright RGB ``PIL.Image`` (EXIF orientation applied)."""
        from PIL import Image, ImageOps

        with Image.open(io.BytesIO(self.image_bytes(image_id))) as im:
            im = ImageOps.exif_transpose(im)
            return im.convert("RGB")

    def fingerprint(self, split: str = "test") -> str:
        """A hash of one split's ground truth (image ids and mean scores): results computed on
        data with different fingerprints are not comparable."""
        return fingerprint_images(self.split(split))


def fingerprint_images(images: pd.DataFrame) -> str:
    """sha256 over the sorted (image_id, score_mean) pairs, scores printed to 1e-9."""
    rows = sorted(zip(images["image_id"].astype(str), np.asarray(images["score_mean"], dtype=float)))
    h = hashlib.sha256()
    for image_id, score in rows:
        h.update(f"{image_id}\t{score:.9f}\n".encode())
    return "sha256:" + h.hexdigest()


def load(source: str | Path) -> AADBData:
    """Load a curated folder, a published dataset folder, an AVA folder (recognised by its
    ``AVA.txt``), or a Hub repo id (``ORG/NAME``)."""
    path = Path(source)
    if path.is_dir():
        if (path / schema.CURATED_MANIFEST).is_file():
            return load_curated(path)
        from . import ava

        if (path / ava.AVA_TXT).is_file():
            return ava.load_ava_source(path)
        from . import hub

        if hub.is_published_folder(path):
            return hub.load_published(path)
        raise SourceError(
            f"{path}: not a curated folder (no {schema.CURATED_MANIFEST}), a published dataset "
            "folder (no README.md with dataset configs) nor an AVA folder (no AVA.txt)"
        )
    if path.exists():
        raise SourceError(f"{path}: is a file; expected a curated folder, a published folder or a Hub repo id")
    if _REPO_ID.match(str(source)):
        from . import hub

        return hub.load_from_hub(str(source))
    raise SourceError(f"{source}: no such folder, and not a Hub repo id of the form ORG/NAME")


def load_curated(path: str | Path) -> AADBData:
    """Load a folder written by :func:`aadb_toolkit.curate.curate`."""
    path = Path(path)
    manifest_file = path / schema.CURATED_MANIFEST
    try:
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SourceError(f"{manifest_file}: cannot read curated manifest: {exc}") from exc
    if manifest.get("format") != schema.CURATED_FORMAT:
        raise SourceError(f"{manifest_file}: format is {manifest.get('format')!r}, expected {schema.CURATED_FORMAT!r}")
    images = pd.read_parquet(path / schema.CURATED_IMAGES)
    ratings = pd.read_parquet(path / schema.CURATED_RATINGS)
    release_root = Path(manifest["release_root"])
    if not release_root.is_absolute():
        release_root = (path / release_root).resolve()
    paths = dict(zip(images["image_id"], images["path"]))

    def read(image_id: str) -> bytes:
        try:
            rel = paths[image_id]
        except KeyError:
            raise KeyError(f"unknown image_id {image_id!r} in {path}") from None
        return (release_root / rel).read_bytes()

    return AADBData(images=images, ratings=ratings, origin=str(path), read_image_bytes=read)

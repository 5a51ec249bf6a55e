"""One loader for every data source the downstream tools accept: a curated folder (the output of
``aadb curate``), a published Hugging Face dataset folder (the output of ``aadb publish``), or a
Hub repo id. Each gives the same canonical tables (docs/curation.md, "Output: the curated folder") and access to the image bytes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from . import schema
from ._paths import inside, plainly_relative
from .data import AADBData, Provenance, fingerprint_images
from .errors import SourceError, excerpt

__all__ = ["AADBData", "Provenance", "SourceError", "fingerprint_images", "load", "load_curated"]



def load(source: str | Path, *, images: bool = True) -> AADBData:
    """Load a curated folder, a published dataset folder, an AVA folder (recognised by its
    ``AVA.txt``), or a Hub repo id (``ORG/NAME``): the one place (with the CLI and demo that
    call it) where a path or Hub id becomes data. ``images=False`` is for callers that read no
    image (scoring): an AVA folder's photos are then not checked up front (nor needed)."""
    path = Path(source)
    if path.is_dir():
        if (path / schema.CURATED_MANIFEST).is_file():
            return load_curated(path)
        from . import ava

        if (path / ava.AVA_TXT).is_file():
            return ava.load_ava_source(path, check_files=images)
        from . import hub

        if hub.is_published_folder(path):
            return hub.load_published(path)
        raise SourceError(
            f"{path}: not a curated folder (no {schema.CURATED_MANIFEST}), a published dataset "
            "folder (no README.md with dataset configs) nor an AVA folder (no AVA.txt)"
        )
    if path.exists():
        raise SourceError(f"{path}: is a file; expected a curated folder, a published folder or a Hub repo id")
    from .hub.layout import is_repo_id

    if is_repo_id(str(source)):
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
    climbing = [(i, p) for i, p in paths.items() if not plainly_relative(str(p))]
    if climbing:
        i, p = climbing[0]
        raise SourceError(f"{path / schema.CURATED_IMAGES}: image {excerpt(i)!r} has path {excerpt(p)!r}, which "
                          f"leads outside the release folder ({len(climbing)} such row(s)); the toolkit reads "
                          "nothing outside the release")

    def read(image_id: str) -> bytes:
        try:
            rel = paths[image_id]
        except KeyError:
            raise KeyError(f"unknown image_id {image_id!r} in {path}") from None
        file = release_root / rel
        if not inside(release_root, file):
            raise SourceError(f"{path / schema.CURATED_IMAGES}: image {excerpt(image_id)!r}: {excerpt(rel)!r} is a "
                              "symbolic link leading outside the release folder; the toolkit reads nothing outside it")
        return file.read_bytes()

    provenance = Provenance(origin=str(path), kind="curated", synthetic=_curated_is_synthetic(manifest, release_root),
                            test_list=manifest.get("test_list"))
    return AADBData(images=images, ratings=ratings, origin=str(path), read_image_bytes=read, provenance=provenance)


def _curated_is_synthetic(manifest: dict, release_root: Path) -> bool:
    """A curated folder is synthetic when its manifest says so, or when its release has the
    planted-truth folder ``aadb simulate`` writes beside every simulated release."""
    return bool(manifest.get("synthetic")) or schema.simulated_truth_dir(release_root).is_dir()

"""Point a curated folder at its release after the release was moved or copied (``aadb curate
relocate``): every image under the new place must have the sha256 recorded at curation, and only
then is the manifest's ``release_root`` rewritten, atomically. The tables are not touched, so every
result computed on the folder stays valid (docs/curation.md, "Moving the release")."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from .. import _atomic, schema
from .._jsonfile import read_json_object
from .._keyguard import key_inside
from .._paths import inside, plainly_relative
from ..data import sha256_fingerprint
from ..errors import InputError, excerpt
from ..sources import curated_is_synthetic
from ._pipeline import CURATED_KIND

log = logging.getLogger(__name__)
#: Bytes read at a time while hashing an image (large photos are not read whole).
_CHUNK = 1 << 20


@dataclass
class RelocationResult:
    """What :func:`relocate` checked and changed."""

    curated: Path
    old_root: str
    new_root: Path
    n_images: int

    def summary(self) -> str:
        return (f"{self.curated}: release moved from {self.old_root} to {self.new_root}; all {self.n_images} "
                "images match their curated sha256")


def relocate(curated: str | Path, release: str | Path, *, progress: bool | None = None) -> RelocationResult:
    """Check that every image of the curated folder ``curated`` lies under ``release`` with the
    sha256 recorded at curation, then rewrite the manifest's ``release_root`` to ``release``
    (atomically; the old root is kept as ``relocated_from``). Any missing or different image
    refuses the move with an :class:`~aadb_toolkit.errors.InputError` and changes nothing."""
    curated = Path(curated).expanduser()
    release = Path(release).expanduser().resolve()
    manifest_file = curated / schema.CURATED_MANIFEST
    manifest = _read_manifest(curated, manifest_file)
    if not release.is_dir():
        raise InputError("release folder not found", file=str(release), field="--release")
    if key_inside(release):
        raise InputError("holds the rater key file; the toolkit reads no image from a folder holding the key — "
                         "keep the key outside the release", file=str(release), field="--release")
    images = _hashed_images(curated)
    problems = _check_images(images, release, progress)
    if problems:
        image_id, rel, why = problems[0]
        raise InputError(f"{len(problems)} of {len(images)} image(s) do not match the curated folder, first "
                         f"{excerpt(image_id)!r} ({excerpt(rel)}): {why}; the curated folder was not changed",
                         file=str(release), field="--release")
    old_root = str(manifest.get("release_root"))
    if curated_is_synthetic(manifest, old_root):
        manifest["synthetic"] = True  # the simulator's marker lay in the old release: keep what it said
    manifest["relocated_from"] = old_root
    manifest["release_root"] = str(release)
    _atomic.write_json(manifest_file, manifest)
    log.info("curated folder %s now reads its images from %s", curated, release)
    return RelocationResult(curated=curated, old_root=old_root, new_root=release, n_images=len(images))


def _read_manifest(curated: Path, manifest_file: Path) -> dict:
    """The manifest of a curated folder the toolkit wrote (its output marker says so)."""
    marker = _atomic.read_marker(curated)
    if not curated.is_dir() or marker is None or marker["kind"] != CURATED_KIND:
        raise InputError("not a curated folder written by aadb curate (no curated output marker)", file=str(curated),
                         field="--data")
    manifest = read_json_object(manifest_file, "the curated manifest")
    if manifest.get("format") != schema.CURATED_FORMAT:
        raise InputError(f"not a curated manifest (format {schema.CURATED_FORMAT!r} expected)", file=str(manifest_file))
    return manifest


def _hashed_images(curated: Path) -> pd.DataFrame:
    """``image_id``, ``path`` and ``sha256`` of every image; a folder curated before hashes were
    recorded cannot be checked, so it cannot be relocated."""
    table = curated / schema.CURATED_IMAGES
    try:
        images = pd.read_parquet(table)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the images table: {exc}", file=str(table)) from None
    if schema.IMAGE_SHA256 not in images.columns:
        raise InputError("records no image hashes (curated by an older toolkit), so the moved release cannot be "
                         "checked against it; curate the release again from its new place", file=str(table),
                         field="sha256")
    return images[["image_id", "path", schema.IMAGE_SHA256]]


def _check_images(images: pd.DataFrame, release: Path, progress: bool | None) -> list[tuple[str, str, str]]:
    """(image_id, path, reason) of each image that is missing under ``release`` or differs."""
    problems = []
    rows = zip(images["image_id"].astype(str), images["path"].astype(str), images[schema.IMAGE_SHA256].astype(str))
    for image_id, rel, want in tqdm(rows, total=len(images), desc="checking image hashes", unit="img",
                                    disable=None if progress is None else not progress):
        file = release / rel
        if not plainly_relative(rel) or not inside(release, file):
            problems.append((image_id, rel, "its path leads outside the release"))
            continue
        try:
            got = _file_sha256(file)
        except FileNotFoundError:
            problems.append((image_id, rel, "no such file under the new release"))
            continue
        except OSError as exc:
            problems.append((image_id, rel, f"cannot be read ({exc.strerror or exc})"))
            continue
        if got != want:
            problems.append((image_id, rel, "its bytes differ from the curated image (sha256 mismatch)"))
    return problems


def _file_sha256(file: Path) -> str:
    with open(file, "rb") as f:
        return sha256_fingerprint(iter(lambda: f.read(_CHUNK), b""))

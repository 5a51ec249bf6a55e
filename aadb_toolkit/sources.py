"""One loader for every data source the downstream tools accept: a curated folder (the output of
``aadb curate``), a published Hugging Face dataset folder (the output of ``aadb publish``), or a
Hub repo id. Each gives the same canonical tables (docs/curation.md, "Output: the curated folder") and access to the image bytes."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd

from . import schema
from ._paths import inside, plainly_relative
from ._registry import close_matches
from .data import AADBData, Provenance, fingerprint_images
from .errors import SourceError, excerpt

__all__ = ["AADBData", "Provenance", "SourceError", "fingerprint_images", "load", "load_curated"]



#: The explicit form of a Hub repo id, for an id whose ORG is also the name of a local folder.
HUB_PREFIX = "hf://"


def load(source: str | Path) -> AADBData:
    """Load a curated folder, a published dataset folder, an AVA folder (recognised by its
    ``AVA.txt``), or a Hub repo id: the one place (with the CLI and demo that call it) where a path
    or Hub id becomes data.

    Which strings go to the Hub (a folder that exists is always read as a folder):
    ``hf://ORG/NAME`` always; a plain ``ORG/NAME`` only when it could be a Hub repo id (exactly two
    parts, each of the Hub's characters: ``hub.layout.is_repo_id``) *and* no local folder ``ORG``
    exists, since ``pub/aabd`` beside a folder ``pub`` is a mistyped path, not a repo. Anything else
    that does not exist is "no such folder", with the closest existing path when there is one."""
    text = str(source)
    if text.startswith(HUB_PREFIX):
        return _load_hub(text[len(HUB_PREFIX):], text)
    path = Path(source)
    if path.is_dir():
        return _load_folder(path)
    if path.exists():
        raise SourceError(f"{path}: is a file; expected a curated folder, a published folder or a Hub repo id")
    if could_be_hub_id(text):
        return _load_hub(text, text)
    raise SourceError(_no_such_folder(text))


def _no_such_folder(text: str) -> str:
    """"no such folder", the closest existing path, and why the string was not tried on the Hub."""
    hint = _close_path(Path(text))
    message = f"{text}: no such folder" + (f"; did you mean {hint!r}?" if hint else "")
    if _is_repo_id_form(text):
        return message + (f" (read as a path, not a Hub repo id, because a folder {text.split('/')[0]!r} "
                          f"exists here; write {HUB_PREFIX}{text} for the Hub)")
    return message + "; a Hub repo id has the form ORG/NAME"


def could_be_hub_id(text: str) -> bool:
    """True for ``ORG/NAME`` in the Hub's characters where no local folder ``ORG`` exists."""
    return _is_repo_id_form(text) and not Path(text.split("/")[0]).is_dir()


def _is_repo_id_form(text: str) -> bool:
    from .hub.layout import is_repo_id

    return is_repo_id(text)


def _load_folder(path: Path) -> AADBData:
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


def _load_hub(repo_id: str, source: str) -> AADBData:
    """Load ``repo_id`` from the Hub; when that fails and a local path close to ``source`` exists,
    the error says so (a mistyped folder name often looks like ``ORG/NAME``)."""
    from . import hub

    if not _is_repo_id_form(repo_id):
        raise SourceError(f"{source}: not a Hub repo id of the form ORG/NAME")
    try:
        return hub.load_from_hub(repo_id)
    except SourceError as exc:
        hint = None if source.startswith(HUB_PREFIX) else _close_path(Path(source))
        if hint is None:
            raise
        raise SourceError(f"{exc}; nor is there a local folder {source!r}: did you mean {hint!r}?") from exc


def _close_path(path: Path) -> str | None:
    """``path`` with its first missing part replaced by the closest name in the folder above it,
    when that path exists (``pub/aabd`` → ``pub/aadb``); None when nothing is close."""
    parts = path.parts
    for i, part in enumerate(parts):
        head = Path(*parts[:i]) if i else Path(".")
        if (head / part).exists():
            continue
        try:
            names = sorted(e.name for e in os.scandir(head) if not e.name.startswith("."))
        except OSError:
            return None
        close = [c for c in close_matches(part, names, n=3) if head.joinpath(c, *parts[i + 1:]).exists()]
        return str(head.joinpath(close[0], *parts[i + 1:])) if close else None
    return None


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
    # the canonical columns only, as every source gives them; the per-image sha256 the folder also
    # records is read where it is checked (curate.relocate)
    images = pd.read_parquet(path / schema.CURATED_IMAGES)
    images = images[[c for c in images.columns if c in schema.IMAGE_COLUMNS]]
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
        try:
            return file.read_bytes()
        except FileNotFoundError:
            raise SourceError(_missing_image_message(path, release_root, image_id, rel)) from None
        except OSError as exc:
            raise SourceError(f"{path}: image {excerpt(image_id)!r}: cannot read {excerpt(rel)!r} in the release "
                              f"{release_root}: {exc.strerror or exc}") from None

    provenance = Provenance(origin=str(path), kind="curated", synthetic=_curated_is_synthetic(manifest, release_root),
                            test_list=manifest.get("test_list"))
    return AADBData(images=images, ratings=ratings, origin=str(path), read_image_bytes=read, provenance=provenance)


def _missing_image_message(path: Path, release_root: Path, image_id: str, rel: str) -> str:
    """Why an image of a curated folder cannot be read, and how to point the folder at a moved release."""
    fix = (f"if the release was moved, point the folder at its new place with `aadb curate relocate --data {path} "
           "--release NEW_PLACE`, which checks every image against the sha256 recorded at curation "
           "(docs/curation.md, \"Moving the release\")")
    if not release_root.is_dir():
        return (f"{path}: the release this curated folder was made from is no longer at {release_root} (moved or "
                f"deleted); {fix}")
    return f"{path}: image {excerpt(image_id)!r} ({excerpt(rel)}) is missing from the release {release_root}; {fix}"


def _curated_is_synthetic(manifest: dict, release_root: Path) -> bool:
    """A curated folder is synthetic when its manifest says so, or when its release has the
    planted-truth folder ``aadb simulate`` writes beside every simulated release."""
    return bool(manifest.get("synthetic")) or schema.simulated_truth_dir(release_root).is_dir()

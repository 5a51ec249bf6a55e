"""Containment of input paths: the toolkit reads nothing outside the folder it was given, whether
a path leads out through ``..``, an absolute path or a symbolic link."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from . import schema
from ._jsonfile import read_json_object


def inside(root: str | os.PathLike[str], path: str | os.PathLike[str]) -> bool:
    """True when ``path``, with every symbolic link resolved, lies inside ``root`` (also resolved)."""
    return Path(os.path.realpath(path)).is_relative_to(Path(os.path.realpath(root)))


def plainly_relative(rel: str) -> bool:
    """True for a relative path that does not climb out with ``..`` (checked without the disk)."""
    text = str(rel)
    if text and ".." not in text and ":" not in text and not text.startswith(("/", "\\")):
        return True  # the common case, decided without building a path (a curated folder has thousands)
    p = PurePosixPath(text.replace("\\", "/"))
    return bool(str(rel)) and not p.is_absolute() and ".." not in p.parts and not os.path.isabs(str(rel))


def input_folders(source: object) -> tuple[Path, ...]:
    """The folders a data source reads from, which no output may overwrite or lie in: a curated
    folder and the release its images are read from; a published folder; nothing for a Hub id or
    data made in memory. ``source`` is a path or loaded data (its ``provenance`` says which). A
    folder without a curated manifest is read alone; a manifest that cannot be read is the shared
    reader's :class:`~aadb_toolkit.errors.InputError` (as loading the folder would say)."""
    provenance = getattr(source, "provenance", None)
    if provenance is not None:
        source = source.origin if provenance.kind in ("curated", "published") else None
    if not isinstance(source, (str, os.PathLike)) or not Path(source).is_dir():
        return ()
    path = Path(source)
    manifest = path / schema.CURATED_MANIFEST
    release = read_json_object(manifest, "curated manifest").get("release_root") if os.path.isfile(manifest) else None
    if isinstance(release, str) and release:
        root = Path(release) if Path(release).is_absolute() else path / release
        return (path, root) if root.is_dir() and root.resolve() != Path("/") else (path,)
    return (path,)

"""Containment of input paths: the toolkit reads nothing outside the folder it was given, whether
a path leads out through ``..``, an absolute path or a symbolic link."""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath

from . import schema


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
    data made in memory. ``source`` is a path or loaded data (its ``provenance`` says which)."""
    provenance = getattr(source, "provenance", None)
    if provenance is not None:
        source = source.origin if provenance.kind in ("curated", "published") else None
    if not isinstance(source, (str, os.PathLike)) or not Path(source).is_dir():
        return ()
    path = Path(source)
    try:
        release = json.loads((path / schema.CURATED_MANIFEST).read_text(encoding="utf-8")).get("release_root")
    except (OSError, ValueError, AttributeError):
        release = None
    if isinstance(release, str) and release:
        root = Path(release) if Path(release).is_absolute() else path / release
        return (path, root) if root.is_dir() and root.resolve() != Path("/") else (path,)
    return (path,)

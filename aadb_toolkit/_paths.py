"""Containment of input paths: the toolkit reads nothing outside the folder it was given, whether
a path leads out through ``..``, an absolute path or a symbolic link."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath


def inside(root: str | os.PathLike[str], path: str | os.PathLike[str]) -> bool:
    """True when ``path``, with every symbolic link resolved, lies inside ``root`` (also resolved)."""
    return Path(os.path.realpath(path)).is_relative_to(Path(os.path.realpath(root)))


def plainly_relative(rel: str) -> bool:
    """True for a relative path that does not climb out with ``..`` (checked without the disk)."""
    p = PurePosixPath(str(rel).replace("\\", "/"))
    return bool(str(rel)) and not p.is_absolute() and ".." not in p.parts and not os.path.isabs(str(rel))

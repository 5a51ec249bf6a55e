"""``_paths.plainly_relative``: the fast path for ordinary relative paths agrees with the full check."""

from __future__ import annotations

import os
from pathlib import PurePosixPath

import pytest

from aadb_toolkit._paths import plainly_relative


def _reference(rel: str) -> bool:
    p = PurePosixPath(rel.replace("\\", "/"))
    return bool(rel) and not p.is_absolute() and ".." not in p.parts and not os.path.isabs(rel)


@pytest.mark.parametrize("rel", ["images/a.jpg", "a.jpg", "x/y/z.png", "a..b/c.jpg", "..", "../a.jpg",
                                 "a/../../b", "/etc/passwd", "\\\\server\\share\\a.jpg", "a\\..\\..\\b",
                                 "C:/x.jpg", "C:\\x.jpg", "", "./a.jpg", "a/./b.jpg", "~/a.jpg"])
def test_plainly_relative_agrees_with_the_full_check(rel):
    assert plainly_relative(rel) == _reference(rel)

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


def _curated_with_manifest(root, content: bytes):
    """A folder that claims to be curated (a manifest.json holding ``content``)."""
    folder = root / "curated"
    folder.mkdir()
    (folder / "manifest.json").write_bytes(content)
    return folder


@pytest.mark.parametrize("content, why", [(b"[" * 100_000, "nested too deeply"), (b"\xff", "not UTF-8"),
                                          (b"[]", "expected a JSON object")], ids=["deep", "not_utf8", "array"])
def test_input_folders_refuses_a_curated_manifest_it_cannot_read(tmp_path, content, why):
    """A manifest nested deeper than the JSON reader follows was its RecursionError (``aadb score
    --data`` exited 70): every way the manifest can be bad is the shared reader's InputError,
    naming the file, as the loader names it."""
    from aadb_toolkit._paths import input_folders
    from aadb_toolkit.errors import InputError

    folder = _curated_with_manifest(tmp_path, content)
    with pytest.raises(InputError, match=why) as exc:
        input_folders(folder)
    assert str(folder / "manifest.json") in str(exc.value)


def test_input_folders_of_a_folder_without_a_manifest_is_the_folder_alone(tmp_path):
    from aadb_toolkit._paths import input_folders

    assert input_folders(tmp_path) == (tmp_path,)


def test_score_with_a_deeply_nested_curated_manifest_is_a_one_line_error(tmp_path, capsys):
    """Review: ``aadb score --data <curated folder whose manifest.json is deeply nested>`` was an
    internal error (rc 70)."""
    from aadb_toolkit.cli import main

    folder = _curated_with_manifest(tmp_path, b"[" * 100_000)
    (tmp_path / "s.csv").write_text("image_id,score\na,1\n")
    code = main(["score", "--submission", str(tmp_path / "s.csv"), "--protocol", "aadb", "--data", str(folder),
                 "--out", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("aadb score: error: ") and "nested too deeply" in err, err
    assert not (tmp_path / "r.json").exists()

import os
import stat

import pytest

from aadb_toolkit import _atomic


def test_write_json_is_atomic_and_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "out.json"
    _atomic.write_json(target, {"a": 1})
    assert target.read_text() == '{\n  "a": 1\n}\n'
    with pytest.raises(ValueError):
        _atomic.write_json(target, {"a": float("nan")})  # NaN is not JSON
    assert target.read_text() == '{\n  "a": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_written_files_get_the_umask_mode_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        _atomic.write_text(tmp_path / "x.txt", "x")
        with _atomic.atomic_dir(tmp_path / "d") as stage:
            (stage / "f").write_text("f")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755


def test_atomic_dir_leaves_previous_folder_untouched_on_failure(tmp_path):
    target = tmp_path / "out"
    with _atomic.atomic_dir(target) as stage:
        (stage / "v").write_text("1")
    with pytest.raises(RuntimeError):
        with _atomic.atomic_dir(target) as stage:
            (stage / "v").write_text("2")
            raise RuntimeError("boom")
    assert (target / "v").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with pytest.raises(FileExistsError):
        with _atomic.atomic_dir(target, overwrite=False):
            pass


def test_exchange_paths_swaps_two_folders_atomically(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "f").write_text("A")
    (b / "f").write_text("B")
    if not _atomic.exchange_paths(a, b):
        pytest.skip("renameat2(RENAME_EXCHANGE) not available here")
    assert (a / "f").read_text() == "B" and (b / "f").read_text() == "A"
    with pytest.raises(OSError):
        _atomic.exchange_paths(a, tmp_path / "missing")


def test_atomic_dir_replaces_existing_folder_leaving_nothing_beside_it(tmp_path):
    target = tmp_path / "out"
    for version in ("1", "2"):
        with _atomic.atomic_dir(target) as stage:
            (stage / "v").write_text(version)
    assert (target / "v").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]

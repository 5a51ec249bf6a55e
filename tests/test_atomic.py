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


DEEP = b"[" * 100_000  # a 100 KB file nested deeper than the JSON reader follows (its RecursionError)


@pytest.mark.parametrize("content", [DEEP, b"\xff", b"{not json", b"[]"], ids=["deep", "not_utf8", "not_json", "array"])
def test_small_json_object_is_none_for_any_file_it_cannot_read(tmp_path, content):
    """Review: a deeply nested file was a RecursionError, not None (``aadb score --out deep.json``
    exited 70); every way the shared reader refuses a file is "not a JSON object" here."""
    f = tmp_path / "deep.json"
    f.write_bytes(content)
    assert _atomic.small_json_object(f, 1 << 20) is None
    assert _atomic.small_json_object(tmp_path / "missing.json", 1 << 20) is None
    f.write_text('{"a": 1}')
    assert _atomic.small_json_object(f, 1 << 20) == {"a": 1}


@pytest.mark.parametrize("content", [DEEP, b"\xff", b"{not json", b"[]"], ids=["deep", "not_utf8", "not_json", "array"])
def test_read_marker_is_none_for_any_marker_it_cannot_read(tmp_path, content):
    """Review: a deeply nested output marker was a RecursionError, not None."""
    (tmp_path / _atomic.MARKER_FILE).write_bytes(content)
    assert _atomic.read_marker(tmp_path) is None
    _atomic.write_marker(tmp_path, "consistency")
    assert _atomic.read_marker(tmp_path)["kind"] == "consistency"


def test_outputs_over_a_deeply_nested_file_are_refused_in_one_line(tiny_curated, tmp_path, capsys):
    """Review: ``aadb score --out deep.json`` (an existing, deeply nested file) and ``aadb
    consistency --out`` a folder whose marker is deeply nested ended in an internal error (rc 70)."""
    from aadb_toolkit.cli import main

    deep = tmp_path / "deep.json"
    deep.write_bytes(DEEP)
    (tmp_path / "s.csv").write_text("image_id,score\na,1\n")
    code = main(["score", "--submission", str(tmp_path / "s.csv"), "--protocol", "aadb", "--data", str(tiny_curated),
                 "--out", str(deep)])
    err = capsys.readouterr().err
    assert code == 1 and "exists and is not a result document written by the toolkit" in err, err
    assert deep.read_bytes() == DEEP
    folder = tmp_path / "cons"
    folder.mkdir()
    (folder / _atomic.MARKER_FILE).write_bytes(DEEP)
    code = main(["consistency", "--data", str(tiny_curated), "--out", str(folder), "--n-perm", "10"])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("aadb consistency: error: ") and "not a consistency folder" in err, err
    assert (folder / _atomic.MARKER_FILE).read_bytes() == DEEP

"""The real label folder carries two test lists: ``imgListTestNewRegression_*`` (the paper's test
set, the default) and the older ``imgListTestRegression_*``. Curation takes either; the manifest
records which one defined ``test``."""

import json

import pytest

from aadb_toolkit.cli import main
from aadb_toolkit.curate import curate
from aadb_toolkit.errors import InputError
from curate_release_writer import build_release, image_name


def _with_older_list(n_batches=6, moved_batch=0):
    """A release whose TestNew list is batches 2 and 5 and whose older Test list also holds batch
    ``moved_batch``, which no other list names (as the images TestNew dropped)."""
    rel = build_release(n_batches)
    moved = {image_name(moved_batch, i)[0] for i in range(1, 11)}
    for name in [n for n in rel.labels if "Train" in n]:
        lines = rel.labels[name].splitlines()
        rel.labels[name] = "\n".join(ln for ln in lines if ln.split()[0] not in moved) + "\n"
        extra = [ln for ln in lines if ln.split()[0] in moved]
        new = name.replace("Train", "TestNew")
        rel.labels[new.replace("TestNew", "Test")] = rel.labels[new] + "\n".join(extra) + "\n"
    return rel


def _test_ids(out):
    import pandas as pd

    images = pd.read_parquet(out / "images.parquet")
    return set(images.loc[images["split"] == "test", "image_id"])


def test_testnew_is_the_default_and_the_manifest_says_so(tmp_path, key):
    release = _with_older_list().write(tmp_path / "release")
    result = curate(release, tmp_path / "new", key=key, progress=False)
    manifest = json.loads((tmp_path / "new" / "manifest.json").read_text())
    assert manifest["test_list"] == "TestNew"
    ignored = [e for e in result.report["entries"] if e["reason"] == "other_test_list"]
    assert len(ignored) == 12 and all("imgListTestRegression_" in e["file"] for e in ignored)
    assert _test_ids(tmp_path / "new") == {image_name(b, i)[0] for b in (2, 5) for i in range(1, 11)}


def test_the_older_list_can_define_test_instead(tmp_path, key):
    release = _with_older_list().write(tmp_path / "release")
    curate(release, tmp_path / "old", key=key, progress=False, test_list="Test")
    manifest = json.loads((tmp_path / "old" / "manifest.json").read_text())
    assert manifest["test_list"] == "Test"
    moved = {image_name(0, i)[0] for i in range(1, 11)}
    assert moved <= _test_ids(tmp_path / "old")
    curate(release, tmp_path / "new", key=key, progress=False)
    assert not moved & _test_ids(tmp_path / "new")


def test_cli_test_list_option(tmp_path, monkeypatch, capsys):
    release = _with_older_list().write(tmp_path / "release")
    monkeypatch.setenv("AADB_RATER_KEY_FILE", str(tmp_path / "k.key"))
    assert main(["curate", "--release", str(release), "--out", str(tmp_path / "c"), "--test-list", "Test",
                 "--no-progress"]) == 0
    assert json.loads((tmp_path / "c" / "manifest.json").read_text())["test_list"] == "Test"
    assert "split (official, test list Test)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["curate", "--release", str(release), "--out", str(tmp_path / "d"), "--test-list", "TestOld"])


def test_asking_for_a_list_the_release_lacks_is_a_clear_error(tmp_path, key):
    rel = build_release(6)
    rel.labels = {n.replace("TestNew", "Test"): t for n, t in rel.labels.items()}  # only the older list
    release = rel.write(tmp_path / "release")
    with pytest.raises(InputError, match=r"imgListTestNewRegression_score\.txt.*--test-list Test"):
        curate(release, tmp_path / "out", key=key, progress=False)
    assert not (tmp_path / "out").exists()
    curate(release, tmp_path / "out", key=key, progress=False, test_list="Test")
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["test_list"] == "Test"


def test_no_label_files_means_no_test_list(tmp_path, key):
    release = build_release(6, labels=False).write(tmp_path / "release")
    curate(release, tmp_path / "out", key=key, progress=False)
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["test_list"] is None


def test_the_two_lists_give_data_that_is_never_ranked_together(tmp_path, key):
    from aadb_toolkit import sources

    release = _with_older_list().write(tmp_path / "release")
    curate(release, tmp_path / "new", key=key, progress=False)
    curate(release, tmp_path / "old", key=key, progress=False, test_list="Test")
    new, old = sources.load(tmp_path / "new"), sources.load(tmp_path / "old")
    assert new.fingerprint("test") != old.fingerprint("test")

"""A moved release (issue 21, item 6): the curated folder says where its release was and how to fix
it (no raw FileNotFoundError), and ``aadb curate relocate`` points it at the new place only when
every image matches the sha256 recorded at curation."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from aadb_toolkit import schema, sources
from aadb_toolkit._atomic import MARKER_FILE
from aadb_toolkit.cli import main
from aadb_toolkit.curate import curate, relocate
from aadb_toolkit.data import sha256_fingerprint
from aadb_toolkit.errors import InputError, SourceError

simulate_mod = pytest.importorskip("aadb_toolkit.simulate")


@pytest.fixture(scope="module")
def curated_once(tmp_path_factory):
    """One simulated release (20 images, with its planted truth beside it) and its curated folder."""
    root = tmp_path_factory.mktemp("relocate")
    res = simulate_mod.simulate(root / "release", n_images=20, seed=2, image_size=(16, 16))
    curate(res.release_dir, root / "cur", key=b"test-key-0123456789abcdef-not-secret", workers=1, progress=False)
    return root


@pytest.fixture
def moved(curated_once, tmp_path):
    """A copy of the curated folder and its release, after which the release was moved (``mv``)
    elsewhere: (curated, old release place, new release place)."""
    shutil.copytree(curated_once, tmp_path, dirs_exist_ok=True)
    curated, old = tmp_path / "cur", tmp_path / "release"
    manifest = json.loads((curated / schema.CURATED_MANIFEST).read_text())
    manifest["release_root"] = str(old)  # as if curated from this copy
    (curated / schema.CURATED_MANIFEST).write_text(json.dumps(manifest))
    new = tmp_path / "elsewhere" / "release"
    new.parent.mkdir()
    shutil.move(old, new)
    return curated, old, new


def test_curation_records_each_image_sha256(moved):
    curated, _, new = moved
    images = pd.read_parquet(curated / schema.CURATED_IMAGES)
    assert list(images.columns) == list(schema.CURATED_IMAGE_COLUMNS)
    assert list(sources.load(curated).images.columns) == list(schema.IMAGE_COLUMNS)  # the canonical table
    row = images.iloc[0]
    assert row["sha256"] == sha256_fingerprint((new / row["path"]).read_bytes())


def test_a_moved_release_is_a_clear_error_naming_the_old_root(moved):
    curated, old, _ = moved
    data = sources.load(curated)  # the tables load: analyses that need no image still run
    with pytest.raises(SourceError) as err:
        data.image_bytes(data.images["image_id"].iloc[0])
    assert str(old) in str(err.value) and "aadb curate relocate" in str(err.value)
    torch_data = pytest.importorskip("aadb_toolkit.torch_data")
    with pytest.raises(SourceError, match="no longer at"):
        torch_data.AADBTorchDataset(curated, "train")


def test_relocate_checks_the_hashes_and_rewrites_the_manifest(moved, capsys):
    curated, old, new = moved
    assert main(["curate", "relocate", "--data", str(curated), "--release", str(new), "--no-progress"]) == 0
    assert "20 images match" in capsys.readouterr().out
    manifest = json.loads((curated / schema.CURATED_MANIFEST).read_text())
    assert manifest["release_root"] == str(new.resolve()) and manifest["relocated_from"] == str(old)
    assert manifest["synthetic"] is True  # the planted truth stayed at the old place; the manifest keeps the mark
    data = sources.load(curated)
    assert data.provenance.synthetic
    first = pd.read_parquet(curated / schema.CURATED_IMAGES).iloc[0]
    assert sha256_fingerprint(data.image_bytes(first["image_id"])) == first["sha256"]


def test_a_tampered_or_missing_image_refuses_and_changes_nothing(moved):
    curated, _, new = moved
    before = (curated / schema.CURATED_MANIFEST).read_bytes()
    images = pd.read_parquet(curated / schema.CURATED_IMAGES)
    victim = new / images["path"].iloc[3]
    victim.write_bytes(victim.read_bytes() + b"\0")
    with pytest.raises(InputError, match="1 of 20 image.*sha256 mismatch.*not changed"):
        relocate(curated, new, progress=False)
    (new / images["path"].iloc[5]).unlink()
    assert main(["curate", "relocate", "--data", str(curated), "--release", str(new), "--no-progress"]) == 1
    assert (curated / schema.CURATED_MANIFEST).read_bytes() == before


def test_relocate_refuses_a_folder_without_hashes_or_not_curated(moved, tiny_curated, tmp_path):
    curated, _, new = moved
    with pytest.raises(InputError, match="not a curated folder"):
        relocate(tmp_path / "elsewhere", new)
    old_style = tmp_path / "old_style"
    shutil.copytree(curated, old_style)
    table = pd.read_parquet(curated / schema.CURATED_IMAGES).drop(columns="sha256")
    table.to_parquet(old_style / schema.CURATED_IMAGES, index=False)
    with pytest.raises(InputError, match="records no image hashes"):
        relocate(old_style, new)


def test_a_real_release_with_a_sibling_truth_folder_stays_real_when_moved(tmp_path):
    """Review 2026-12-04: relocate marked the curated folder synthetic when a folder `X.truth` lay
    beside the old release, though curation (the simulator's marker inside the release, the one
    rule) had said real; the mark then stuck to the manifest for good."""
    from curate_release_writer import build_release

    old = build_release(3).write(tmp_path / "release")
    curated = tmp_path / "cur"
    curate(old, curated, key=b"test-key-0123456789abcdef-not-secret", workers=1, progress=False)
    schema.simulated_truth_dir(old).mkdir()  # someone's folder beside the release, not a planted truth
    new = tmp_path / "elsewhere" / "release"
    new.parent.mkdir()
    shutil.move(old, new)
    relocate(curated, new, progress=False)
    manifest = json.loads((curated / schema.CURATED_MANIFEST).read_text())
    assert manifest["release_root"] == str(new.resolve()) and "synthetic" not in manifest
    assert not sources.load(curated).provenance.synthetic


def test_a_simulated_release_keeps_its_mark_when_copied(curated_once, tmp_path):
    """The other side of the one rule: a curated folder whose manifest predates the mark keeps
    being synthetic after relocate when the old release carries the simulator's marker."""
    shutil.copytree(curated_once, tmp_path, dirs_exist_ok=True)
    curated, old = tmp_path / "cur", tmp_path / "release"
    manifest = json.loads((curated / schema.CURATED_MANIFEST).read_text())
    manifest.pop("synthetic", None)
    manifest["release_root"] = str(old)
    (curated / schema.CURATED_MANIFEST).write_text(json.dumps(manifest))
    new = tmp_path / "copy"
    shutil.copytree(old, new)
    (new / MARKER_FILE).unlink()  # only the release's files were copied, not the marker
    relocate(curated, new, progress=False)
    assert json.loads((curated / schema.CURATED_MANIFEST).read_text())["synthetic"] is True


@pytest.mark.parametrize("content, why", [(b"[" * 100_000, "nested too deeply"), (b"\xff", "not UTF-8"),
                                          (b"[]", "expected a JSON object")], ids=["deep", "not_utf8", "array"])
def test_relocate_refuses_a_manifest_that_is_no_json_object(tiny_curated, tmp_path, capsys, content, why):
    shutil.copytree(tiny_curated.parent, tmp_path, dirs_exist_ok=True)
    curated, new = tmp_path / tiny_curated.name, tmp_path / "release"
    manifest = curated / schema.CURATED_MANIFEST
    manifest.write_bytes(content)
    with pytest.raises(InputError, match="cannot read the curated manifest") as exc:
        relocate(curated, new)
    assert exc.value.file == str(manifest) and why in str(exc.value)
    assert main(["curate", "relocate", "--data", str(curated), "--release", str(new)]) == 1
    assert why in capsys.readouterr().err and manifest.read_bytes() == content

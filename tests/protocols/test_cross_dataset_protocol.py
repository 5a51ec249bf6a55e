"""The ``cross-dataset`` protocol: a 2×2 of train set × test set from a manifest of four files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aadb_toolkit import sources
from aadb_toolkit.protocols.ava_protocol import ground_truth as ava_ground_truth
from aadb_toolkit.simulate import write_synthetic_ava
from aadb_toolkit.errors import InputError
from aadb_toolkit.protocols import score_submission
from aadb_toolkit.protocols.aadb_protocol import ground_truth
from aadb_toolkit.protocols.cross_dataset_protocol import read_manifest
from aadb_toolkit.submissions import SubmissionError, write_predictions


@pytest.fixture(scope="module")
def ava_root(tmp_path_factory):
    return write_synthetic_ava(tmp_path_factory.mktemp("ava") / "AVA_dataset", 800, seed=2, images=False)


def _files(tmp_path, tiny_curated, ava_root):
    aadb_truth = ground_truth(sources.load(tiny_curated))
    ava_truth = ava_ground_truth(sources.load(ava_root, images=False), "test")
    rng = np.random.default_rng(0)
    preds = {
        "aadb->aadb": aadb_truth,  # ρ = 1
        "aadb->ava": -ava_truth,  # ρ = −1
        "ava->aadb": aadb_truth + rng.normal(0, 0.5, aadb_truth.size),
        "ava->ava": ava_truth,  # ρ = 1
    }
    names = {}
    for cell, s in preds.items():
        name = cell.replace("->", "_on_") + ".csv"
        write_predictions(s, tmp_path / name)
        names[cell] = name
    return preds, names, aadb_truth


def test_two_by_two_from_toml_manifest(tmp_path, tiny_curated, ava_root):
    preds, names, aadb_truth = _files(tmp_path, tiny_curated, ava_root)
    manifest = tmp_path / "cross.toml"
    manifest.write_text("[predictions]\n" + "".join(f'"{c}" = "{f}"\n' for c, f in names.items()))
    r = score_submission("cross-dataset", manifest, tiny_curated, ava_data=ava_root, n_boot=50, seed=0)
    from scipy import stats

    mid = stats.spearmanr(preds["ava->aadb"], aadb_truth).statistic
    assert r.metrics["rho[aadb->aadb]"].value == pytest.approx(1.0)
    assert r.metrics["rho[aadb->ava]"].value == pytest.approx(-1.0)
    assert r.metrics["rho[ava->ava]"].value == pytest.approx(1.0)
    assert r.metrics["rho[ava->aadb]"].value == pytest.approx(mid, abs=1e-12)
    assert r.main_metric == "mean_transfer_rho" and r.main_value == pytest.approx((mid - 1.0) / 2)
    assert r.metrics["rho[ava->aadb]"].ci_low < mid < r.metrics["rho[ava->aadb]"].ci_high
    # the same four files named in a JSON manifest give the same submission hash
    mj = tmp_path / "cross.json"
    mj.write_text(json.dumps({"predictions": names}))
    assert score_submission("cross-dataset", mj, tiny_curated, ava_data=ava_root, n_boot=0).submission_sha256 \
        == r.submission_sha256


def test_manifest_errors(tmp_path):
    m = tmp_path / "m.toml"
    m.write_text('[predictions]\n"aadb->aadb" = "a.csv"\n"aadb->avaa" = "b.csv"\n')
    with pytest.raises(InputError) as exc:
        read_manifest(m)
    assert "did you mean 'aadb->ava'" in str(exc.value) and "missing cell(s): aadb->ava, ava->aadb, ava->ava" in str(exc.value)
    m.write_text("predictions = 3\n")
    with pytest.raises(InputError, match=r"\[predictions\] table"):
        read_manifest(m)
    m.write_text("[predictions\n")
    with pytest.raises(InputError, match="cannot read cross-dataset manifest"):
        read_manifest(m)


def test_bad_files_are_all_reported_with_their_cell(tmp_path, tiny_curated, ava_root):
    _, names, _ = _files(tmp_path, tiny_curated, ava_root)
    (tmp_path / names["ava->ava"]).write_text("image_id,score\n1,2\n")
    (tmp_path / names["aadb->aadb"]).write_text("id,score\n")
    manifest = tmp_path / "cross.toml"
    manifest.write_text("[predictions]\n" + "".join(f'"{c}" = "{f}"\n' for c, f in names.items()))
    with pytest.raises(SubmissionError) as exc:
        score_submission("cross-dataset", manifest, tiny_curated, ava_data=ava_root, n_boot=0)
    text = str(exc.value)
    assert "[ava->ava]" in text and "[aadb->aadb]" in text and "[aadb->ava]" not in text


@pytest.mark.parametrize("content, why", [(b"[" * 100_000, "nested too deeply"), (b"\xff\xff", "not UTF-8"),
                                          (b"[]", "expected a JSON object")], ids=["deep", "not_utf8", "array"])
def test_a_json_manifest_that_is_no_json_object_is_a_clear_error(tmp_path, content, why):
    m = tmp_path / "m.json"
    m.write_bytes(content)
    with pytest.raises(InputError, match="cannot read cross-dataset manifest") as exc:
        read_manifest(m)
    assert exc.value.file == str(m) and why in str(exc.value)


def test_a_deeply_nested_toml_manifest_is_a_clear_error(tmp_path):
    m = tmp_path / "m.toml"
    m.write_text('[predictions]\n"aadb->aadb" = ' + "[" * 100_000)
    with pytest.raises(InputError, match="cannot read cross-dataset manifest: nested too deeply") as exc:
        read_manifest(m)
    assert exc.value.file == str(m)

"""A curated synthetic release records the generator's setting (name, overrides, digest) in its
manifest, and data loaded from it carries the setting in its provenance, so that every result
says which planted setting its data came from (docs/synthetic.md, "Settings")."""

from __future__ import annotations

import json

import pytest

from aadb_toolkit import sources
from aadb_toolkit.curate import curate
from aadb_toolkit.errors import InputError
from aadb_toolkit.simulate import SETTING_FILE, simulate

KEY = b"setting-provenance-test-key"


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("setting")
    res = simulate(tmp / "r", n_images=60, seed=5, image_size=(32, 24), model="planted_taste",
                   overrides={"raters.taste_sd": 0.5})
    curate(res.release_dir, tmp / "c", key=KEY, progress=False)
    return tmp, res


def test_manifest_records_the_setting(planted):
    tmp, res = planted
    manifest = json.loads((tmp / "c" / "manifest.json").read_text())
    truth = json.loads((res.truth_dir / SETTING_FILE).read_text())
    assert manifest["synthetic"] is True
    assert manifest["synthetic_setting"] == {"setting": "planted_taste", "overrides": {"raters.taste_sd": 0.5},
                                             "options": {"quirks": False, "random_rater_share": 0.0,
                                                         "image_size": [32, 24]},
                                             "sha256": truth["sha256"]}


def test_a_setting_record_without_options_still_reads_and_bad_options_are_refused():
    """Truth files before the generation options were recorded (format 1) carry none."""
    from aadb_toolkit.data import setting_record

    old = {"setting": "default", "overrides": {}, "sha256": "sha256:" + "ab" * 32}
    assert setting_record(old) == old
    with pytest.raises(ValueError, match="options"):
        setting_record({**old, "options": {"quirks": {"nested": 1}}})


def test_loaded_data_carries_the_setting_in_its_provenance(planted):
    tmp, _ = planted
    prov = sources.load(tmp / "c").provenance
    assert prov.synthetic and prov.setting["setting"] == "planted_taste"
    assert prov.to_dict()["setting"] == prov.setting


def test_default_setting_is_recorded_too(tmp_path):
    res = simulate(tmp_path / "r", n_images=20, seed=1, image_size=(32, 24))
    curate(res.release_dir, tmp_path / "c", key=KEY, progress=False)
    assert sources.load(tmp_path / "c").provenance.setting["setting"] == "default"


def test_real_data_has_no_setting(tiny_curated):
    prov = sources.load(tiny_curated).provenance
    assert prov.setting is None and "setting" not in prov.to_dict()


def test_a_damaged_setting_file_is_a_clear_error(tmp_path):
    res = simulate(tmp_path / "r", n_images=20, seed=1, image_size=(32, 24))
    (res.truth_dir / SETTING_FILE).write_text('{"setting": 7}')
    with pytest.raises(InputError, match=SETTING_FILE):
        curate(res.release_dir, tmp_path / "c", key=KEY, progress=False)
    assert not (tmp_path / "c").exists()


def test_a_score_records_the_setting_and_reads_it_back(planted):
    from aadb_toolkit.protocols import aadb_protocol
    from aadb_toolkit.protocols.results import Result

    tmp, _ = planted
    data = sources.load(tmp / "c")
    test = data.split("test")
    result = aadb_protocol.evaluate(data, test[["image_id", "score"]], n_boot=0)
    doc = result.to_dict()
    assert doc["data"]["synthetic_setting"]["setting"] == "planted_taste"
    assert Result.from_dict(doc).synthetic_setting == doc["data"]["synthetic_setting"]
    doc["data"]["synthetic_setting"] = {"setting": "x", "sha256": "nope"}
    with pytest.raises(InputError, match="malformed result document: .*synthetic_sett"):
        Result.from_dict(doc)


def test_a_release_the_simulator_did_not_write_reads_no_sibling_truth(tmp_path):
    """Review 2026-12-04: any release with a sibling `X.truth/setting.json` was marked synthetic, and
    that file (outside the release) was read even through a link. Only a release the simulator
    wrote (its marker inside) is read as simulated, and its setting file must not lead out."""
    import shutil

    from aadb_toolkit._atomic import MARKER_FILE

    res = simulate(tmp_path / "r", n_images=20, seed=1, image_size=(32, 24))
    real = tmp_path / "real"
    shutil.copytree(res.release_dir, real)
    (real / MARKER_FILE).unlink()  # a release like the real one: no toolkit marker
    (tmp_path / "real.truth").mkdir()
    (tmp_path / "elsewhere.txt").write_text("not json")
    (tmp_path / "real.truth" / SETTING_FILE).symlink_to(tmp_path / "elsewhere.txt")
    curate(real, tmp_path / "c", key=KEY, progress=False)  # the sibling file is never opened
    assert json.loads((tmp_path / "c" / "manifest.json").read_text()).get("synthetic") is not True
    setting = res.truth_dir / SETTING_FILE
    setting.unlink()
    setting.symlink_to(tmp_path / "elsewhere.txt")  # a simulated release whose setting leads out
    with pytest.raises(InputError, match="leads outside"):
        curate(res.release_dir, tmp_path / "c2", key=KEY, progress=False)

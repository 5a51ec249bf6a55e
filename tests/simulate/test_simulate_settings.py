"""Named settings of the generator (docs/synthetic.md, "Settings"): the default is byte-for-byte
the release it always was, each named setting and ``--set`` override is recorded in the truth,
and each planted lever does what its name says."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aadb_toolkit.errors import InputError
from aadb_toolkit.simulate import (DEFAULT_SETTING, SETTING_FILE, load_setting, parse_setting_override, setting_names,
                                   simulate)

#: Digest of every file of ``simulate(n_images=200, seed=3, quirks=True, random_rater_share=0.1,
#: image_size=(48, 32))`` as written by the generator before settings existed (sorted relative
#: path, tab, sha256 of the file, newline): the default setting must not move a single byte.
DEFAULT_RELEASE_DIGEST = "8b37632e66825287562220acab60f981d11de1b1b1d1c5b7e59a4216c9164262"


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(f"{p.relative_to(root).as_posix()}\t{hashlib.sha256(p.read_bytes()).hexdigest()}\n".encode())
    return h.hexdigest()


#: Digest (as in :func:`_digest`) of ``simulate(n_images=30, seed=4, quirks=True,
#: random_rater_share=0.1, image_size=(32, 24), model=name)`` for every shipped setting, taken
#: before the parameter checks existed: the checks must not move a byte of any shipped setting.
SHIPPED_SETTING_DIGESTS = {
    "default": "4bf4be652c52556ffb1300e89b26cdbd021377736c1a9a10b72ede41bf266e12",
    "null_attributes": "f4d2a4ce0a47ad97dc6f8ac95f940da8aac52726476fdd16370fb5a5dc827315",
    "null_interaction": "3481bf44285755afc995ae3aafccd2fc90093aeb964d3fc9d485ca49e4b46287",
    "null_reliability": "5c306e46f6c2af204b067a700405a6fedd8d87841cd72fe3bf346105049f391e",
    "null_taste": "dbebb6b815df4ced6c9fd05e3dffeea608f7944b1e16f72370b75f60533e59fa",
    "planted_attributes": "66a77a0f70a85500cfedef367e7b49ea9e7867a60c186546490cebe6e5ea3a6e",
    "planted_interaction": "db098aa9cd9c86233ef24dce4648408cda6234ab80818cbcb6bd835377cf0912",
    "planted_reliability": "068ce9e408827cf5a50b30ee1e80812bbeb59975c3f1b3a0ed9079ef3cab24c7",
    "planted_taste": "b3fca2960806e38f733cc0b2028247d079f66aa3587cec53fe138128f5990539",
}


def test_every_shipped_setting_is_accepted_and_draws_the_same_bytes_as_before(tmp_path):
    assert set(setting_names()) == set(SHIPPED_SETTING_DIGESTS)
    for name, want in SHIPPED_SETTING_DIGESTS.items():
        res = simulate(tmp_path / name, n_images=30, seed=4, quirks=True, random_rater_share=0.1,
                       image_size=(32, 24), model=name, progress=False)
        assert _digest(res.release_dir) == want, name


def test_default_setting_writes_the_same_bytes_as_before_settings_existed(tmp_path):
    res = simulate(tmp_path / "r", n_images=200, seed=3, quirks=True, random_rater_share=0.1, image_size=(48, 32))
    assert _digest(res.release_dir) == DEFAULT_RELEASE_DIGEST
    named = simulate(tmp_path / "n", n_images=200, seed=3, quirks=True, random_rater_share=0.1, image_size=(48, 32),
                     model=DEFAULT_SETTING)
    assert _digest(named.release_dir) == DEFAULT_RELEASE_DIGEST
    record = json.loads((res.truth_dir / SETTING_FILE).read_text())
    assert record["setting"] == "default" and record["overrides"] == {}
    assert record["parameters"]["raters"]["taste_sd"] == 0.25 and record["sha256"].startswith("sha256:")


def test_named_settings_and_overrides_are_recorded_in_the_truth(tmp_path):
    assert {"default", "planted_taste", "null_taste", "planted_reliability", "null_reliability",
            "planted_attributes", "null_attributes", "planted_interaction", "null_interaction"} <= set(setting_names())
    res = simulate(tmp_path / "r", n_images=100, seed=1, image_size=(32, 24), model="planted_taste",
                   overrides={"raters.taste_sd": 0.5})
    record = json.loads((res.truth_dir / SETTING_FILE).read_text())
    assert record["setting"] == "planted_taste" and record["overrides"] == {"raters.taste_sd": 0.5}
    assert record["parameters"]["raters"]["taste_sd"] == 0.5
    assert record["parameters"]["raters"]["taste_attribute_sd"] == load_setting("planted_taste").raters["taste_attribute_sd"]
    workers = pd.read_parquet(res.truth_dir / "workers.parquet")
    assert np.abs(np.stack(workers["taste_attributes"].to_numpy())).max() > 0


def test_bad_settings_and_overrides_are_clear_errors():
    with pytest.raises(InputError, match="unknown simulator setting 'planted_tast'.*planted_taste"):
        load_setting("planted_tast")
    with pytest.raises(InputError, match="raters.taste_sdd"):
        load_setting(None, {"raters.taste_sdd": 1.0})
    with pytest.raises(InputError, match="raters.taste_sd must be a float"):
        load_setting(None, {"raters.taste_sd": "high"})
    with pytest.raises(InputError, match="KEY=VALUE"):
        parse_setting_override("raters.taste_sd")
    assert parse_setting_override("raters.taste_sd=0.5") == ("raters.taste_sd", 0.5)


def test_interaction_strength_scales_the_differences_between_content_types():
    written = load_setting().weight_matrix
    none = load_setting(None, {"images.interaction": 0.0}).weight_matrix
    strong = load_setting("planted_interaction").weight_matrix
    np.testing.assert_allclose(none, np.broadcast_to(none[0], none.shape))  # one weighting for all
    spread = lambda w: float(np.abs(w - w.mean(axis=0)).mean())
    assert spread(strong) > 1.5 * spread(written) > 0
    np.testing.assert_allclose(np.linalg.norm(strong, axis=1), 1.0)


def test_cli_takes_a_setting_and_overrides(tmp_path, capsys):
    from aadb_toolkit.cli import main

    code = main(["simulate", "--out", str(tmp_path / "r"), "--images", "50", "--image-size", "32x24",
                 "--model", "null_interaction", "--set", "raters.taste_sd=0.1"])
    assert code == 0
    assert "setting: null_interaction with raters.taste_sd=0.1" in capsys.readouterr().out
    record = json.loads((tmp_path / "r.truth" / SETTING_FILE).read_text())
    assert record["setting"] == "null_interaction" and record["parameters"]["images"]["interaction"] == 0.0


def test_raters_without_rating_noise_still_vote_on_the_attributes(tmp_path):
    # vote noise scales with a rater's noise relative to noise_light; at noise_light = 0 that
    # ratio was 0/0, every vote NaN-compared to 0, and the votes said nothing about the image
    res = simulate(tmp_path / "r", n_images=40, seed=2, image_size=(32, 24),
                   overrides={"raters.noise_light": 0.0, "raters.noise_heavy": 0.0, "raters.noise_log_sd": 0.0})
    from aadb_toolkit import schema

    votes = pd.read_parquet(res.truth_dir / "ratings.parquet")[list(schema.ATTRIBUTES)].to_numpy(float)
    assert (votes != 0).mean() > 0.3


def test_generation_options_are_recorded_and_covered_by_the_sha256(tmp_path):
    """D4: --random-raters, --quirks and --image-size change the release's bytes but were neither in
    setting.json nor in its sha256, so two different releases of one seed and size shared a digest."""
    base = dict(n_images=20, seed=1, image_size=(32, 24))
    variants = {"plain": {}, "random": {"random_rater_share": 0.4}, "quirks": {"quirks": True},
                "size": {"image_size": (40, 30)}}
    records = {name: json.loads((simulate(tmp_path / name, **{**base, **kw}).truth_dir / SETTING_FILE).read_text())
               for name, kw in variants.items()}
    assert records["plain"]["options"] == {"quirks": False, "random_rater_share": 0.0, "image_size": [32, 24]}
    assert records["random"]["options"]["random_rater_share"] == 0.4
    assert records["quirks"]["options"]["quirks"] is True and records["size"]["options"]["image_size"] == [40, 30]
    assert len({r["sha256"] for r in records.values()}) == len(records)
    again = simulate(tmp_path / "again", **base)
    assert json.loads((again.truth_dir / SETTING_FILE).read_text())["sha256"] == records["plain"]["sha256"]

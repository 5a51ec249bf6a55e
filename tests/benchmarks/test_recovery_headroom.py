"""benchmarks/recovery_headroom.py: the closed-form ridges that bound what a head on the suite's
frozen features can gain from attribute labels or content types, checked on pixel-free releases
of the planted settings (recovery.draft_release) with features whose content is known."""

from __future__ import annotations

import numpy as np
import pytest
from benchmark_modules import benchmark_module

R, H = benchmark_module("recovery"), benchmark_module("recovery_headroom")


def test_dual_ridge_is_the_primal_ridge():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 50)), rng.normal(size=30)
    xc = x - x.mean(0)
    lam = 2.0 * float((xc ** 2).sum(1).mean())
    w = np.linalg.solve(xc.T @ xc + lam * np.eye(50), xc.T @ (y - y.mean()))
    z = rng.normal(size=(5, 50))
    np.testing.assert_allclose(H.ridge(x, y, 2.0)(z), (z - x.mean(0)) @ w + y.mean(), rtol=1e-8)


@pytest.mark.parametrize("seed", [0, 1])
def test_attribute_labels_add_headroom_only_where_they_describe_the_image(seed):
    gains = {}
    for setting in ("planted_attributes", "null_attributes"):
        rel = R.draft_release(setting, 50 + seed, 1000)
        rho = H.headroom(H.known_features(rel, seed, noise=0.7), rel.data.images, rel.images)
        assert rho["truth"] > rho["scores"]  # the noisy scores leave room under the ceiling
        gains[setting] = rho["via_attributes"] - rho["scores"]
    assert gains["planted_attributes"] > 0.02
    assert gains["null_attributes"] < -0.05  # decoy labels: a read through them loses the quality


def test_a_per_content_fit_adds_headroom_only_where_the_interaction_is_planted():
    gains = {}
    for setting in ("planted_interaction", "null_interaction"):
        rel = R.draft_release(setting, 60, 2000)
        rho = H.headroom(H.known_features(rel, 0, noise=0.05, nuisance=0), rel.data.images, rel.images)
        gains[setting] = rho["per_content"] - rho["scores"]
    assert gains["planted_interaction"] > 0.05
    assert abs(gains["null_interaction"]) < 0.02


def test_the_report_gives_each_settings_mean_and_per_seed_gain_and_says_the_data_are_synthetic():
    import pandas as pd

    table = pd.DataFrame({"setting": ["planted_attributes", "planted_attributes", "null_interaction"],
                          "seed": [1, 2, 1], "scores": [0.5, 0.6, 0.7], "via_attributes": [0.6, 0.6, 0.7],
                          "truth": [0.7, 0.8, 0.9], "per_content": [0.5, 0.6, 0.65]})
    text = H.report(table, R.DATA_NOTE)
    assert "| planted_attributes | 2 | 0.550 | 0.600 | 0.750 | 0.550 |" in text
    assert "planted_attributes: per-seed gain over the scores' ridge [0.1, 0.0]" in text
    assert "null_interaction: per-seed gain over the scores' ridge [-0.05]" in text
    assert text.splitlines()[-1] == f"Data: {R.DATA_NOTE}."
    assert "synthetic" in R.DATA_NOTE and "not AADB" in R.DATA_NOTE


def test_readability_says_how_well_the_features_show_the_planted_strengths():
    rel = R.draft_release("planted_attributes", 70, 1000)
    sharp = H.headroom(H.known_features(rel, 0, noise=0.05), rel.data.images, rel.images)["readability"]
    blurred = H.headroom(H.known_features(rel, 0, noise=1.0), rel.data.images, rel.images)["readability"]
    assert sharp > 0.95  # strengths in the features nearly as they are
    assert 0.2 < blurred < 0.8 and blurred < sharp - 0.2  # buried under noise as large as they are


def test_the_known_feature_curve_finds_content_headroom_only_with_enough_training_images():
    table = H.known_feature_curve([800, 3200], [0.3], [80], settings=("planted_interaction", "null_interaction"))
    gain = table.set_index(["images", "setting"])["gain"]
    assert gain[(3200, "planted_interaction")] > gain[(800, "planted_interaction")] + 0.03
    assert abs(gain[(800, "planted_interaction")]) < 0.03  # 50 training images per content type are too few
    assert abs(gain[(3200, "null_interaction")]) < 0.02
    text = H.curve_report(table, R.DATA_NOTE)
    assert text.splitlines()[0] == "| images | noise | readability | planted_interaction | null_interaction |"
    assert text.splitlines()[2].startswith("| 800 | 0.3 | 0.8")
    assert "not AADB" in text.splitlines()[-1]


def test_known_feature_sizes_are_checked_like_the_suites_own(capsys):
    """--known-features takes pixel-free drafts from 100 images and whole HITs only, with the
    suite's own message (recovery.release_size_problem), naming the bad value."""
    for bad, shown in ((["--images", "95"], "got 95"), (["--images", "800", "805"], "got 805"),
                       (["--noise", "-1"], "--noise must be at least 0")):
        with pytest.raises(SystemExit):
            H.main(["--known-features", "--seeds", "1", *bad])
        assert shown in capsys.readouterr().err
    assert R.release_size_problem(100, H.DRAFT_MIN_IMAGES) is None
    assert "at least 200" in R.release_size_problem(100)


def test_the_features_of_each_setting_come_from_its_mechanisms_ablation_run():
    """The suite trains no Reg+Rank on the content row's releases (its ablation is Reg+Rank+Att):
    the headroom reads each setting's features from the run that the suite does train there."""
    assert H.ablation_arm("planted_attributes", R) == H.ablation_arm("null_attributes", R) == "reg_rank"
    assert H.ablation_arm("planted_interaction", R) == H.ablation_arm("null_interaction", R) == "reg_rank_att"

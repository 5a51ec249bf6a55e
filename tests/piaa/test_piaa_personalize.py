"""The reference personalizer: the vectorised ridge equals the per-episode lstsq reference, and
it finds a planted per-rater residual that the generic score misses."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from piaa_data import make_data, mean_episode_rho, planted_taste, taste_with_train_split, train_ratings

from aadb_toolkit import schema
from aadb_toolkit._ranks import spearman
from aadb_toolkit.errors import InputError
from aadb_toolkit.piaa import episodes as ep
from aadb_toolkit.piaa.personalize import (
    choose_alpha,
    fit_residual_ridge,
    generic_scale,
    loop_lstsq_baseline,
)


def _rho(x, y) -> float:
    """Spearman's ρ (NaN where undefined), the toolkit's one implementation."""
    return spearman(x, y)[0]


def test_vectorised_fit_equals_per_episode_lstsq():
    data, index, feats, generic = planted_taste()
    table = ep.make_episodes(data, ks=(10, 100), repeats=4)
    fast = fit_residual_ridge(feats, generic, table, index, alpha=0.5)
    slow = loop_lstsq_baseline(feats, generic, table, index, alpha=0.5)
    assert fast.shape == (len(ep.queries(table)),)
    np.testing.assert_allclose(fast, slow, rtol=1e-7, atol=1e-9)


def test_personalizer_recovers_planted_taste_that_generic_misses():
    from aadb_toolkit.protocols import piaa_protocol

    data, index, feats, generic = planted_taste()
    table = ep.make_episodes(data, ks=(100,), repeats=3)
    personal = fit_residual_ridge(feats, generic, table, index, alpha=0.1)
    q = ep.queries(table)
    g = generic[index.get_indexer(q["image_id"])]
    res = piaa_protocol.evaluate(data, personal, episodes=table, generic=g, n_boot=0)
    assert res.metrics["rho_k100"].value > res.metrics["generic_rho_k100"].value + 0.3
    assert res.metrics["share_beats_generic_k100"].value == 1.0


def test_support_targets_use_the_generic_runs_scale():
    # with zero features the fit is the generic score on the raters' scale (b, from the train
    # split) plus the episode's mean support residual
    data, index, feats, generic = planted_taste()
    table = ep.make_episodes(data, ks=(10,), repeats=1)
    b = 2.5
    out = fit_residual_ridge(np.zeros_like(feats), generic, table, index, scale=b, alpha=1.0)
    sup = table[(table["role"] == "support") & (table["rater_id"] == "Rx")]
    g = generic[index.get_indexer(sup["image_id"])].astype(float)
    shift = np.mean(schema.rescale_score(sup["score"].to_numpy()) - b * g)
    q = ep.queries(table)
    rx = (q["rater_id"] == "Rx").to_numpy()
    np.testing.assert_allclose(out[rx], b * generic[index.get_indexer(q["image_id"][rx])] + shift, rtol=1e-6)
    assert generic_scale(np.array([0.1, 0.2, 0.3]), np.array([0.2, 0.4, 0.6])) == pytest.approx(2.0)
    # never flips the order, nor erases it (review 2026-12-04: 0 made "no correction" a constant)
    assert 0 < generic_scale(np.array([0.1, 0.2, 0.3]), np.array([0.6, 0.4, 0.2])) <= 1e-6
    assert generic_scale(np.array([0.5, 0.5]), np.array([0.1, 0.9])) == 1.0  # undefined: unchanged


def test_a_compressed_generic_score_keeps_its_ranking_when_there_is_no_taste():
    # every rater ranks by the generic model's own feature; the generic run predicts a narrow range
    # (as a model that has fitted the mean does). Its residuals then carry the quality signal; the
    # personalizer must rescale the generic score, not refit that signal from 10 images.
    rng = np.random.default_rng(1)
    ids = [f"img{i:04d}" for i in range(150)]
    feats = rng.normal(size=(150, 40)).astype(np.float32)
    generic = 0.5 + 0.003 * feats[:, 1]
    ratings = [(r, i, float(np.clip(np.rint(3 + 1.2 * feats[j, 1] + rng.normal(0, 0.6)), 1, 5)))
               for r in ("Ra", "Rb", "Rc") for j, i in enumerate(ids)]
    data = make_data(ratings, {i: ("validation" if j % 3 == 0 else "test") for j, i in enumerate(ids)})
    index = pd.Index(ids)
    table = ep.make_episodes(data, ks=(10,), repeats=10)
    # the scale comes from training images the generic run was fitted on (here: fresh draws)
    f_train = rng.normal(size=300)
    train_scores = schema.rescale_score(np.clip(np.rint(3 + 1.2 * f_train + rng.normal(0, 0.6, 300)), 1, 5))
    scale = generic_scale(0.5 + 0.003 * f_train, train_scores)
    personal = fit_residual_ridge(feats, generic, table, index, scale=scale, alpha=1.0)
    q = ep.queries(table)
    g = generic[index.get_indexer(q["image_id"])]

    truth = feats[index.get_indexer(q["image_id"]), 1]
    key = (q["rater_id"] + q["episode"].astype(str)).to_numpy()
    own = np.mean([_rho(personal[key == e], truth[key == e]) for e in np.unique(key)])
    base = np.mean([_rho(g[key == e], truth[key == e]) for e in np.unique(key)])
    assert base > 0.99 and own > base - 0.02


def test_missing_features_and_bad_alpha_are_refused():
    data, index, feats, generic = planted_taste()
    table = ep.make_episodes(data, ks=(10,), repeats=1)
    with pytest.raises(InputError, match="no features"):
        fit_residual_ridge(feats[:5], generic[:5], table, index[:5])
    with pytest.raises(InputError, match="alpha"):
        fit_residual_ridge(feats, generic, table, index, alpha=0)


def test_penalty_ignores_a_constant_shift_of_the_features():
    # fc7 after a ReLU is all positive with a large common part; the ridge penalty must scale with
    # the features' spread (centred), not their raw norm, or it shrinks every correction to nothing
    data, index, feats, generic = planted_taste()
    table = ep.make_episodes(data, ks=(10, 100), repeats=2)
    plain = fit_residual_ridge(feats, generic, table, index, alpha=0.5)
    shifted = fit_residual_ridge(feats + 20.0, generic, table, index, alpha=0.5)
    np.testing.assert_allclose(shifted, plain, atol=1e-5)  # float32 features + 20: ~1e-6 rounding
    np.testing.assert_allclose(loop_lstsq_baseline(feats + 20.0, generic, table, index, alpha=0.5), plain, atol=1e-5)


def _episode_gain(taste: float, seed: int, **fit) -> tuple[float, float]:
    """(personalized − generic mean episode ρ against each rater's utility, α chosen on the train split)."""
    data, index, feats, generic, utility = taste_with_train_split(taste, seed=seed)
    table = ep.make_episodes(data, ks=(10,), repeats=5, seed=0)
    g = generic[index.get_indexer(ep.queries(table)["image_id"])]
    base = mean_episode_rho(table, index, g, utility)
    own = mean_episode_rho(table, index, fit_residual_ridge(feats, generic, table, index, **fit), utility)
    alpha = choose_alpha(feats, generic, train_ratings(data), index, k=10)
    return own - base, alpha


@pytest.mark.parametrize("seed", [0, 1])
def test_default_learns_a_taste_that_many_uninformative_features_hide(seed):
    # 58 of 60 features say nothing a rater cares about (as most of fc7). The old default, each
    # episode's own leave-one-out choice behind a two-standard-error guard, almost never corrected
    # (+0.009 and +0.003 here; +0.005 on the recovery suite's planted taste); the penalty chosen on
    # the train split's raters affords a correction (α = 1..3 gain about +0.06 here)
    gain, alpha = _episode_gain(1.5, seed, train_ratings=train_ratings(taste_with_train_split(1.5, seed=seed)[0]))
    assert gain > 0.03
    assert alpha <= 10


@pytest.mark.parametrize("seed", [0, 1])
def test_default_keeps_the_generic_ranking_when_raters_have_no_taste(seed):
    # every rater ranks by the generic model's own feature: α = 1 fits each rater's rating noise
    # (−0.01 here); the train split shows there is nothing to learn, and the choice is no correction
    data = taste_with_train_split(0.0, seed=seed)[0]
    gain, alpha = _episode_gain(0.0, seed, train_ratings=train_ratings(data))
    assert gain > -0.003
    assert alpha >= 100
    assert _episode_gain(0.0, seed, alpha=1.0)[0] < gain - 0.005  # what the choice protects against


def test_infinite_alpha_is_the_generic_ranking_and_the_choice_needs_train_ratings():
    data, index, feats, generic, _ = taste_with_train_split(1.5)
    table = ep.make_episodes(data, ks=(10,), repeats=2)
    q = ep.queries(table)
    none = fit_residual_ridge(feats, generic, table, index, alpha=math.inf)
    for e in q.groupby(["rater_id", "episode"]).indices.values():  # a constant shift per episode
        shift = none[e] - generic[index.get_indexer(q["image_id"].iloc[e])]
        np.testing.assert_allclose(shift, shift[0], atol=1e-12)
    with pytest.raises(InputError, match="train split's ratings"):  # the rest: test_piaa_layout.py
        fit_residual_ridge(feats, generic, table, index)


def test_choice_uses_fewer_images_where_no_rater_has_k():
    data, index, feats, generic, _ = taste_with_train_split(1.5)
    ratings = train_ratings(data)
    assert ratings.groupby("rater_id").size().max() == 200
    assert choose_alpha(feats, generic, ratings, index, k=500) == choose_alpha(feats, generic, ratings, index, k=190)


def test_cli_alpha_is_auto_or_a_positive_number():
    import argparse

    from aadb_toolkit.cli.personalize import _alpha

    assert _alpha("auto") is None and _alpha("AUTO") is None and _alpha("0.5") == 0.5
    for bad in ("0", "-1", "lots"):
        with pytest.raises(argparse.ArgumentTypeError):
            _alpha(bad)


def test_the_generic_predictions_it_returns_are_the_ones_aadb_score_reads(monkeypatch):
    """Review 2026-12-04: `aadb personalize --generic-out` wrote a score for every episode image,
    support-only images included, and `aadb score --generic` refused the file ("unknown
    image_id … not in the episodes' query images"). It now holds the query images, and scores."""
    import importlib

    from aadb_toolkit.piaa.personalize import personalize
    from aadb_toolkit.protocols import evaluate

    data, index, feats, generic = planted_taste()
    table = ep.make_episodes(data, ks=(60,), repeats=1)
    support_only = set(table["image_id"]) - set(ep.queries(table)["image_id"])
    assert support_only  # both raters drew some image as support: the case that failed

    def fake_features(run, data, ids, **kwargs):
        rows = index.get_indexer(ids)
        return generic[rows], feats[rows]

    monkeypatch.setattr(importlib.import_module("aadb_toolkit.models.predict"), "predict_features", fake_features)
    preds, gen = personalize("no-run", data, table, alpha=1.0)
    assert set(gen["image_id"]) == set(ep.queries(table)["image_id"])
    assert np.allclose(gen.set_index("image_id")["score"].loc[list(index[:5].intersection(gen["image_id"]))],
                       generic[index.get_indexer(index[:5].intersection(gen["image_id"]))])
    result = evaluate("piaa", data, preds, generic=gen, episodes=table, n_boot=10, seed=0)
    assert math.isfinite(result.metrics["generic_rho_k60"].value) and math.isfinite(result.metrics["rho_k60"].value)


def test_no_correction_keeps_the_generic_ranking_even_when_the_train_slope_is_negative():
    """Review 2026-12-04: a generic model ranking the train split backwards got slope 0, so α = ∞
    ("no correction: the generic ranking") gave every query one score."""
    data, index, feats, generic = planted_taste()
    table = ep.make_episodes(data, ks=(10,), repeats=1)
    scale = generic_scale(np.array([0.1, 0.2, 0.3]), np.array([0.6, 0.4, 0.2]))
    out = fit_residual_ridge(feats, generic, table, index, alpha=math.inf, scale=scale)
    q = ep.queries(table)
    for rater in ("Rx", "Ry"):
        rows = (q["rater_id"] == rater).to_numpy()
        assert _rho(out[rows], generic[index.get_indexer(q["image_id"][rows])]) == pytest.approx(1.0)


def test_the_penalty_chosen_on_the_train_split_is_recorded_and_reproduces_the_scores():
    """Review 2026-12-04: the α (ridge) and pull (fine-tune) chosen on the train split were only
    logged, so the predictions' sidecar could not say which was used. Each personalizer now hands
    them back per k, and the recorded α, given as a number, gives the same scores."""
    from aadb_toolkit.piaa.finetune import PULL_GRID
    from aadb_toolkit.piaa.personalize import ALPHA_GRID, personalize_scores

    data, index, feats, generic, _ = taste_with_train_split(1.5)
    table = ep.make_episodes(data, ks=(10,), repeats=2)
    chosen: dict = {}
    auto = personalize_scores(data, table, generic, feats, index, chosen=chosen)
    assert list(chosen) == [10] and chosen[10] in ALPHA_GRID
    np.testing.assert_array_equal(personalize_scores(data, table, generic, feats, index, alpha=chosen[10]), auto)
    fixed: dict = {}
    personalize_scores(data, table, generic, feats, index, alpha=3.0, chosen=fixed)
    assert fixed == {}  # a number given is not a choice
    pulls: dict = {}
    personalize_scores(data, table, generic, feats, index, method="rank-finetune", chosen=pulls)
    assert list(pulls) == [10] and pulls[10] in (*PULL_GRID, math.inf)


def test_the_sidecar_record_names_the_method_the_penalty_given_and_each_one_chosen():
    from aadb_toolkit.piaa.personalize import personalizer_record

    assert personalizer_record("ridge", None, {100: 30.0, 10: math.inf}) == {
        "method": "ridge", "alpha": "auto", "chosen": {"alpha": {"10": "inf", "100": 30.0}}}
    assert personalizer_record("rank-finetune", None, {10: 4.0}) == {
        "method": "rank-finetune", "alpha": "auto", "chosen": {"pull": {"10": 4.0}}}
    assert personalizer_record("ridge", 3.0, {}) == {"method": "ridge", "alpha": 3.0}


def test_cli_alpha_inf_is_refused_before_any_work(tiny_curated, tmp_path, monkeypatch, capsys):
    """Found 2026-12-04 while recording the chosen penalties: `--alpha inf` was taken, the whole
    personalization ran, and writing the sidecar (JSON has no ∞) failed as an internal error,
    leaving the predictions without their sidecar. A number must be finite; `auto` may still
    choose no correction, and the generic predictions rank every episode as no correction does."""
    from aadb_toolkit.cli import main
    from aadb_toolkit.piaa import personalize as pz

    ran = []
    monkeypatch.setattr(pz, "personalize", lambda *a, **k: ran.append(1))
    out = tmp_path / "p.csv"
    with pytest.raises(SystemExit) as stop:
        main(["personalize", "--run", str(tmp_path / "run"), "--data", str(tiny_curated), "--episodes",
              str(tmp_path / "ep.csv"), "--out", str(out), "--alpha", "inf"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "--alpha" in err and "finite" in err and "Traceback" not in err
    assert not ran and not out.exists()

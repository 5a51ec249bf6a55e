"""The reference personalizer: the vectorised ridge equals the per-episode lstsq reference, and
it finds a planted per-rater residual that the generic score misses."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from piaa_data import make_data

from aadb_toolkit import schema
from aadb_toolkit.errors import InputError
from aadb_toolkit.piaa import episodes as ep
from aadb_toolkit.piaa.personalize import fit_residual_ridge, loop_lstsq_baseline


def _planted(n_images=120, d=6, seed=0):
    """Images with features; rater Rx likes feature 0, rater Ry dislikes it; the generic score is
    feature 1 only. Own scores on 1..5 follow generic ± taste."""
    rng = np.random.default_rng(seed)
    ids = [f"img{i:04d}" for i in range(n_images)]
    feats = rng.normal(size=(n_images, d)).astype(np.float32)
    generic = 0.5 + 0.1 * feats[:, 1]
    ratings = []
    for rater, taste in (("Rx", 1.0), ("Ry", -1.0)):
        latent = feats[:, 1] + 2.0 * taste * feats[:, 0]
        own = np.clip(np.rint(3 + latent * 0.8), 1, 5)
        ratings += [(rater, i, float(s)) for i, s in zip(ids, own)]
    data = make_data(ratings, {i: ("validation" if j % 3 == 0 else "test") for j, i in enumerate(ids)})
    return data, pd.Index(ids), feats, generic


def test_vectorised_fit_equals_per_episode_lstsq():
    data, index, feats, generic = _planted()
    table = ep.make_episodes(data, ks=(10, 100), repeats=4)
    fast = fit_residual_ridge(feats, generic, table, index, alpha=0.5)
    slow = loop_lstsq_baseline(feats, generic, table, index, alpha=0.5)
    assert fast.shape == (len(ep.queries(table)),)
    np.testing.assert_allclose(fast, slow, rtol=1e-7, atol=1e-9)


def test_personalizer_recovers_planted_taste_that_generic_misses():
    from aadb_toolkit.protocols import piaa_protocol

    data, index, feats, generic = _planted()
    table = ep.make_episodes(data, ks=(100,), repeats=3)
    personal = fit_residual_ridge(feats, generic, table, index, alpha=0.1)
    q = ep.queries(table)
    g = generic[index.get_indexer(q["image_id"])]
    res = piaa_protocol.evaluate(data, personal, episodes=table, generic=g, n_boot=0)
    assert res.metrics["rho_k100"].value > res.metrics["generic_rho_k100"].value + 0.3
    assert res.metrics["share_beats_generic_k100"].value == 1.0


def test_support_targets_use_the_generic_runs_scale():
    # with zero features the fit is the generic score plus the mean support residual
    data, index, feats, generic = _planted()
    table = ep.make_episodes(data, ks=(10,), repeats=1)
    out = fit_residual_ridge(np.zeros_like(feats), generic, table, index)
    sup = table[(table["role"] == "support") & (table["rater_id"] == "Rx")]
    shift = np.mean(schema.rescale_score(sup["score"].to_numpy()) - generic[index.get_indexer(sup["image_id"])])
    q = ep.queries(table)
    rx = (q["rater_id"] == "Rx").to_numpy()
    np.testing.assert_allclose(out[rx], generic[index.get_indexer(q["image_id"][rx])] + shift)


def test_missing_features_and_bad_alpha_are_refused():
    data, index, feats, generic = _planted()
    table = ep.make_episodes(data, ks=(10,), repeats=1)
    with pytest.raises(InputError, match="no features"):
        fit_residual_ridge(feats[:5], generic[:5], table, index[:5])
    with pytest.raises(InputError, match="alpha"):
        fit_residual_ridge(feats, generic, table, index, alpha=0)

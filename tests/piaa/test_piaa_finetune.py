"""The second reference personalizer: the generic run's last layer fine-tuned with the rank loss
on the k support images (all episodes at once)."""

from __future__ import annotations

import numpy as np
import pytest
from piaa_data import mean_episode_rho, no_taste_data, planted_taste

from aadb_toolkit.errors import InputError
from aadb_toolkit.piaa import episodes as ep
from aadb_toolkit.piaa.finetune import fit_rank_finetune


def test_finetune_learns_each_raters_planted_taste():
    data, index, feats, generic = planted_taste()
    truth = {"Rx": feats[:, 1] + 2 * feats[:, 0], "Ry": feats[:, 1] - 2 * feats[:, 0]}
    table = ep.make_episodes(data, ks=(10,), repeats=5)
    personal = fit_rank_finetune(feats, generic, table, index)
    q = ep.queries(table)
    g = generic[index.get_indexer(q["image_id"])]
    assert mean_episode_rho(table, index, personal, truth) > mean_episode_rho(table, index, g, truth) + 0.3


def test_finetune_ignores_a_constant_shift_of_the_features_and_keeps_generic_without_features():
    data, index, feats, generic = planted_taste()
    table = ep.make_episodes(data, ks=(10,), repeats=2)
    plain = fit_rank_finetune(feats, generic, table, index)
    np.testing.assert_allclose(fit_rank_finetune(feats + 20.0, generic, table, index), plain, atol=1e-5)
    q = ep.queries(table)
    flat = fit_rank_finetune(np.zeros_like(feats), generic, table, index, scale=2.0)
    np.testing.assert_allclose(flat, 2.0 * generic[index.get_indexer(q["image_id"])], rtol=1e-9)


def test_bad_finetune_parameters_are_refused():
    data, index, feats, generic = planted_taste()
    table = ep.make_episodes(data, ks=(10,), repeats=1)
    with pytest.raises(InputError, match="pull"):
        fit_rank_finetune(feats, generic, table, index, pull=0)
    with pytest.raises(InputError, match="scale"):
        fit_rank_finetune(feats, generic, table, index, scale=float("nan"))


def test_finetune_keeps_the_generic_ranking_when_raters_have_no_taste():
    # without the held-out guard the hinge fitted each rater's rating noise on the 10 support
    # images and ranked well below the generic model
    data, index, feats, generic = no_taste_data()
    table = ep.make_episodes(data, ks=(10,), repeats=10, seed=0)
    g = generic[index.get_indexer(ep.queries(table)["image_id"])]
    base = mean_episode_rho(table, index, g, feats[:, 1])
    guarded = mean_episode_rho(table, index, fit_rank_finetune(feats, generic, table, index), feats[:, 1])
    free = mean_episode_rho(table, index, fit_rank_finetune(feats, generic, table, index, guard=False), feats[:, 1])
    assert guarded > base - 0.01
    assert free < guarded - 0.01

"""The other variants of issue 11: the wide net widens fc7 alone, ensembles average their members,
and ``features()`` gives a run's fc7 for the images asked for."""

from pathlib import Path

import numpy as np
import pytest
import torch

from aadb_toolkit.errors import InputError
from aadb_toolkit.models import build_model, features, load_config, load_trunk_weights, predict, train
from aadb_toolkit.models.predict import model_identity

BASELINES = Path(__file__).resolve().parents[2] / "baselines"
TINY = {"model.width": 0.0625, "data.warp_size": 72, "data.crop_size": 64, "optim.batch_size": 16,
        "optim.steps": 2, "train.cpu_threads": 1}
pytestmark = pytest.mark.filterwarnings("ignore:no --init-weights")


def _n(module):
    return sum(p.numel() for p in module.parameters())


def test_wide_net_has_8x_the_fc7_parameters_and_every_other_layer_unchanged():
    base, wide = build_model("regression"), build_model("regression", fc7_factor=8)
    assert _n(wide.backbone.classifier[4]) == pytest.approx(8 * _n(base.backbone.classifier[4]), rel=1e-3)
    for i in (1,):
        assert _n(wide.backbone.classifier[i]) == _n(base.backbone.classifier[i])
    assert _n(wide.backbone.features) == _n(base.backbone.features)
    # ImageNet weights load into everything but the widened fc7
    state = dict(base.backbone.state_dict())
    loaded = load_trunk_weights(wide, state)
    assert "classifier.1.weight" in loaded and not any(k.startswith("classifier.4.") for k in loaded)
    assert torch.equal(wide.backbone.state_dict()["features.0.weight"], state["features.0.weight"])


def test_ensemble_averages_members_trained_with_different_seeds(tiny_curated, tmp_path):
    cfg = load_config(BASELINES / "reg_ensemble8.toml", {**TINY, "ensemble.members": 3})
    res = train(cfg, tiny_curated, tmp_path / "ens", progress=False, cache_dir=tmp_path / "c")
    members = [tmp_path / "ens" / "members" / str(k) for k in range(3)]
    shas = {(m / "run.json").read_text().split('"weights_sha256": "')[1][:64] for m in members}
    assert len(shas) == 3  # different seeds, different weights
    each = [predict(m, tiny_curated, "test", cache_dir=tmp_path / "c")["score"].to_numpy() for m in members]
    avg = predict(tmp_path / "ens", tiny_curated, "test", cache_dir=tmp_path / "c")
    np.testing.assert_allclose(avg["score"].to_numpy(), np.mean(each, axis=0), rtol=1e-12)
    assert res.best_val_rho is not None and res.global_step == 6
    again = train(cfg, tiny_curated, tmp_path / "ens", progress=False, cache_dir=tmp_path / "c")
    assert again.global_step == 6  # finished members are resumed at their end, not retrained
    with pytest.raises(InputError, match="ensemble"):
        features(tmp_path / "ens", tiny_curated)
    # the prediction sidecar names an ensemble by its config and its members' weights
    ident = model_identity(tmp_path / "ens")
    assert ident["name"] == cfg.name and ident["members"] == 3
    assert ident["run_id"] != model_identity(members[0])["run_id"]


def test_features_returns_fc7_of_the_requested_images(tiny_curated, tmp_path):
    cfg = load_config(BASELINES / "reg.toml", TINY)
    train(cfg, tiny_curated, tmp_path / "run", progress=False)
    ids, f = features(tmp_path / "run", tiny_curated, "test")
    from aadb_toolkit.models import load_model

    net, _ = load_model(tmp_path / "run")
    assert f.shape == (len(ids), net.feature_size) and f.dtype == np.float32 and (f >= 0).all()  # after ReLU
    sub, g = features(tmp_path / "run", tiny_curated, image_ids=ids[3:1:-1])
    assert sub == ids[3:1:-1]
    np.testing.assert_allclose(g, f[3:1:-1], rtol=1e-5, atol=1e-6)
    # the personalizer's one-pass scores and fc7 agree with predict() and features()
    from aadb_toolkit.models.predict import predict_features

    scores, h = predict_features(tmp_path / "run", tiny_curated, ids)
    np.testing.assert_allclose(scores, predict(tmp_path / "run", tiny_curated, "test")["score"].to_numpy(),
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(h, f, rtol=1e-5, atol=1e-6)

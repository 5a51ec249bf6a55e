"""Practitioner options that keep the paper's losses (issue 22 item 8): the score bias starts at
the training-target mean, a head lr multiplier, standardised targets with α and ω rescaled; each
recorded in config.json and run.json, and each can be switched off."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from aadb_toolkit.errors import InputError
from aadb_toolkit.models import load_config, total_loss, train
from aadb_toolkit.models import trainer
from aadb_toolkit.models.losses import Batch
from aadb_toolkit.sources import load

BASELINES = Path(__file__).resolve().parents[2] / "baselines"
TINY = {"model.width": 0.0625, "data.warp_size": 72, "data.crop_size": 64, "optim.batch_size": 8,
        "train.cpu_threads": 1, "train.log_every_steps": 1, "pairs.n_pairs": 64, "optim.steps": 2}
pytestmark = pytest.mark.filterwarnings("ignore:no --init-weights")


def _state(cfg, tiny_curated, tmp_path):
    run = trainer._setup(cfg, load(tiny_curated), tmp_path / "run", "cpu", trainer._Dist(), False, False,
                         tmp_path / "c")
    return run, trainer._build_state(run, None, None, False)


def test_the_score_bias_starts_at_the_target_mean_unless_switched_off(tiny_curated, tmp_path):
    cfg = load_config(BASELINES / "reg_rank_within_cross.toml", TINY)
    assert cfg.model.score_bias == "target_mean" and cfg.optim.head_lr_mult == 1.0
    run, state = _state(cfg, tiny_curated, tmp_path)
    mean = float(load(tiny_curated).split("train")["score"].mean())
    assert state.net.head.bias.item() == pytest.approx(mean, abs=1e-6)
    run, state = _state(cfg.replace({"model.score_bias": "default"}), tiny_curated, tmp_path)
    assert abs(state.net.head.bias.item() - mean) > 1e-3  # torch's fresh-layer init
    with pytest.raises(InputError, match="score_bias"):
        cfg.replace({"model.score_bias": "mean"})


def test_the_head_lr_multiplier_scales_only_the_head(tiny_curated, tmp_path):
    cfg = load_config(BASELINES / "reg_rank_within_cross.toml", {**TINY, "optim.head_lr_mult": 10.0, "optim.lr": 1e-3})
    run, state = _state(cfg, tiny_curated, tmp_path)
    trainer._enter_stage(run, state, run.plan[0])
    trainer.train_step(run, state, run.plan[0])
    trunk, head = state.opt.param_groups
    assert trunk["lr"] == pytest.approx(1e-3) and head["lr"] == pytest.approx(1e-2)
    assert {id(p) for p in head["params"]} == {id(p) for p in state.net.head.parameters()}
    with pytest.raises(InputError, match="head_lr_mult"):
        cfg.replace({"optim.head_lr_mult": 0})


def test_standardised_targets_keep_eq3_up_to_a_factor():
    """Standardised scores/targets with α, ω_r / std and ω_a / std² give Eq. 3's loss / std²."""
    torch.manual_seed(0)
    mu, sd = 0.48, 0.08
    score = mu + sd * torch.randn(8)
    outputs = {"score": score, "attributes": torch.randn(8, 3)}
    batch = Batch(targets=mu + sd * torch.randn(8), pair_first=torch.arange(4), pair_second=torch.arange(4, 8),
                  pair_delta=torch.tensor([1.0, -1.0, 1.0, -1.0]), attributes=torch.randn(8, 3))
    weights = {"regression": 1.0, "rank": 1.0, "attribute": 0.1}
    stage = SimpleNamespace(weights=weights)

    def objective(standardise: bool) -> torch.Tensor:
        run = SimpleNamespace(cfg=SimpleNamespace(loss=SimpleNamespace(standardise_targets=standardise,
                                                                       rank_margin=0.02)),
                              td=SimpleNamespace(target_mean=mu, target_std=sd))
        return total_loss(*trainer._objective(run, stage, outputs, batch))[0]

    plain = objective(False)
    torch.testing.assert_close(plain, total_loss(outputs, batch, weights, 0.02)[0])
    torch.testing.assert_close(objective(True) * sd ** 2, plain)


def test_the_options_are_recorded_and_predictions_stay_on_the_score_scale(tiny_curated, tmp_path):
    cfg = load_config(BASELINES / "reg_rank_within_cross.toml", {**TINY, "loss.standardise_targets": True,
                                                                  "optim.head_lr_mult": 5.0})
    train(cfg, tiny_curated, tmp_path / "run", progress=False, cache_dir=tmp_path / "c")
    summary = json.loads((tmp_path / "run" / "run.json").read_text())
    opts = summary["practitioner_options"]
    assert opts["standardise_targets"] is True and opts["head_lr_mult"] == 5.0 and opts["score_bias"] == "target_mean"
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["loss"]["standardise_targets"] is True and saved["optim"]["head_lr_mult"] == 5.0
    from aadb_toolkit.models import predict

    scores = predict(tmp_path / "run", tiny_curated)["score"]
    assert 0.2 < scores.mean() < 0.8  # shift/scale turn the standardised output back into [0, 1] ratings
    with pytest.raises(InputError, match="standardised targets"):
        load_config(BASELINES / "alexnet_ft_conf.toml", {"loss.standardise_targets": True})

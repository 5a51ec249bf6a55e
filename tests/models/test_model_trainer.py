"""Trainer and predictions on the tiny curated fixture: every variant trains and predicts; a run
interrupted mid-epoch resumes to bit-identical weights; the CLI writes the submission format."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from aadb_toolkit.cli import main
from aadb_toolkit.errors import InputError
from aadb_toolkit.models import TrainingInterrupted, load_config, predict, train
from aadb_toolkit.models.trainer import BEST, CHECKPOINT, load_run_file, state_sha256
from aadb_toolkit.sources import load

BASELINES = Path(__file__).resolve().parents[2] / "baselines"
#: shrink a paper config to seconds on CPU (AlexNet needs crops ≥ 63 px)
TINY = {"model.width": 0.0625, "data.warp_size": 72, "data.crop_size": 64, "optim.batch_size": 16,
        "optim.epochs": 1, "train.log_every_steps": 2, "train.cpu_threads": 1}

pytestmark = pytest.mark.filterwarnings("ignore:no --init-weights")


def _tiny(variant, **more):
    o = dict(TINY)
    if "rank" in variant:
        o["pairs.n_pairs"] = 96
    o.update(more)
    return load_config(BASELINES / f"{variant}.toml", o)


@pytest.mark.parametrize("variant", ["alexnet_ft_conf", "reg", "reg_rank_cross", "reg_rank_within",
                                     "reg_rank_within_cross"])
def test_every_variant_trains_one_epoch_and_predicts(variant, tiny_curated, tmp_path):
    cfg = _tiny(variant)
    res = train(cfg, tiny_curated, tmp_path / "run", progress=False, cache_dir=tmp_path / "cache")
    data = load(tiny_curated)
    units = 96 if "rank" in variant else len(data.split("train"))
    assert res.epochs_completed == 1 and res.global_step == units // 16 == res.total_steps
    assert len(res.val_rho) == 1 and res.best_epoch == 0
    run = tmp_path / "run"
    for f in ("checkpoint.pt", "best.pt", "metrics.jsonl", "metrics.png", "run.json", "config.json"):
        assert (run / f).is_file(), f
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert recs[-1]["kind"] == "val" and all(np.isfinite(r["loss"]) for r in recs if r["kind"] == "train")
    if "rank" in variant:
        assert "loss_rank" in recs[0] and "loss_regression" in recs[0]
    preds = predict(run, data, "test", cache_dir=tmp_path / "cache")
    assert list(preds.columns) == ["image_id", "score"]
    assert list(preds["image_id"]) == list(data.split("test")["image_id"])
    assert np.isfinite(preds["score"]).all()
    if variant == "alexnet_ft_conf":
        assert ((preds["score"] > 0) & (preds["score"] < 1)).all()  # softmax confidence of "high"


def test_interrupted_run_resumes_to_bit_identical_weights(tiny_curated, tmp_path):
    cfg = _tiny("reg_rank_within_cross", **{"optim.epochs": 2, "pairs.n_pairs": 128, "train.checkpoint_every_steps": 3,
                                            "model.dropout": 0.5, "data.hflip": True})
    steps_per_epoch = 128 // 16
    full = train(cfg, tiny_curated, tmp_path / "full", progress=False, cache_dir=tmp_path / "c")
    with pytest.raises(TrainingInterrupted):
        train(cfg, tiny_curated, tmp_path / "cut", progress=False, cache_dir=tmp_path / "c",
              stop_after_steps=steps_per_epoch + 3)  # mid-epoch 2, between periodic checkpoints' multiples
    ck = load_run_file(tmp_path / "cut" / CHECKPOINT, "aadb-checkpoint")
    assert (ck["epoch"], ck["step_in_epoch"], ck["global_step"]) == (1, 3, steps_per_epoch + 3)
    resumed = train(cfg, tiny_curated, tmp_path / "cut", progress=False, cache_dir=tmp_path / "c")
    assert resumed.global_step == full.global_step == 2 * steps_per_epoch
    assert resumed.weights_sha256 == full.weights_sha256
    a = load_run_file(tmp_path / "full" / BEST, "aadb-model")
    b = load_run_file(tmp_path / "cut" / BEST, "aadb-model")
    assert state_sha256(a["model"]) == state_sha256(b["model"])
    assert resumed.val_rho == full.val_rho
    # the metrics log of the resumed run has no duplicated steps
    steps = [json.loads(x)["step"] for x in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()
             if json.loads(x)["kind"] == "train"]
    assert steps == sorted(set(steps))
    # a different seed gives different weights (the comparison above can fail)
    other = train(cfg.replace({"train.seed": 1}), tiny_curated, tmp_path / "other", progress=False,
                  cache_dir=tmp_path / "c")
    assert other.weights_sha256 != full.weights_sha256


def test_resume_refuses_a_different_config(tiny_curated, tmp_path):
    cfg = _tiny("reg")
    train(cfg, tiny_curated, tmp_path / "run", progress=False)
    with pytest.raises(InputError, match="different config"):
        train(cfg.replace({"optim.lr": 1e-3}), tiny_curated, tmp_path / "run", progress=False)
    res = train(cfg.replace({"optim.lr": 1e-3}), tiny_curated, tmp_path / "run", progress=False, resume=False)
    assert res.global_step == res.total_steps


def test_init_weights_are_loaded_and_checked(tiny_curated, tmp_path):
    from aadb_toolkit.models import build_model

    cfg = _tiny("reg", **{"optim.lr": 1e-12})  # lr ~ 0: the trained front end stays the loaded one
    ref = build_model("regression", width=cfg.model.width)
    state = {k: v for k, v in ref.state_dict().items() if not k.startswith("classifier.6")}
    state["classifier.6.weight"] = torch.zeros(1000, ref.fc7_size)  # an ImageNet-shaped fc8, replaced
    torch.save(state, tmp_path / "w.pth")
    train(cfg, tiny_curated, tmp_path / "run", progress=False, init_weights=tmp_path / "w.pth")
    best = load_run_file(tmp_path / "run" / BEST, "aadb-model")["model"]
    assert torch.allclose(best["features.0.weight"], state["features.0.weight"], atol=1e-6)
    with pytest.raises(InputError, match="sha256"):
        train(cfg, tiny_curated, tmp_path / "run2", progress=False, init_weights=tmp_path / "w.pth",
              init_sha256="ab" * 32)


def test_time_limit_stops_with_a_resumable_checkpoint(tiny_curated, tmp_path):
    cfg = _tiny("reg", **{"optim.epochs": 50})
    res = train(cfg, tiny_curated, tmp_path / "run", progress=False, max_minutes=1e-4)
    assert res.stopped == "time_limit" and res.global_step < res.total_steps
    assert (tmp_path / "run" / BEST).is_file()
    ck = load_run_file(tmp_path / "run" / CHECKPOINT, "aadb-checkpoint")
    assert ck["global_step"] == res.global_step


def test_cli_train_and_predict_write_the_submission_format(tiny_curated, tmp_path, capsys):
    run, csv = tmp_path / "run", tmp_path / "preds.csv"
    code = main(["train", "--config", str(BASELINES / "reg_rank_within.toml"), "--data", str(tiny_curated),
                 "--out", str(run), "--image-size", "64", "--epochs", "1", "--set", "model.width=0.0625",
                 "--set", "pairs.n_pairs=64", "--set", "optim.batch_size=16", "--no-progress"])
    assert code == 0 and "best validation rho" in capsys.readouterr().out
    assert json.loads((run / "config.json").read_text())["data"]["warp_size"] == 72
    assert main(["predict", "--run", str(run), "--data", str(tiny_curated), "--split", "test", "--out", str(csv)]) == 0
    text = csv.read_text()
    assert text.startswith("image_id,score\n")
    df = pd.read_csv(csv)
    assert len(df) == len(load(tiny_curated).split("test")) and df["image_id"].is_unique
    assert main(["train", "--config", str(BASELINES / "reg.toml"), "--data", str(tiny_curated), "--out",
                 str(tmp_path / "x"), "--set", "optim.epoch=1"]) == 1
    assert "did you mean 'epochs'" in capsys.readouterr().err

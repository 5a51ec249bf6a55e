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
from aadb_toolkit.models.runs import BEST, CHECKPOINT, load_run_file, state_sha256
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
    state = dict(ref.backbone.state_dict())
    state["classifier.6.weight"] = torch.zeros(1000, ref.feature_size)  # an ImageNet-shaped fc8, replaced
    torch.save(state, tmp_path / "w.pth")
    train(cfg, tiny_curated, tmp_path / "run", progress=False, init_weights=tmp_path / "w.pth")
    best = load_run_file(tmp_path / "run" / BEST, "aadb-model")["model"]
    assert torch.allclose(best["backbone.features.0.weight"], state["features.0.weight"], atol=1e-6)
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
    test_ids = list(load(tiny_curated).split("test")["image_id"])
    assert list(df.columns) == ["image_id", "score"] and list(df["image_id"]) == test_ids
    assert df["score"].notna().all() and np.isfinite(df["score"]).all()
    # the file passes submission validation and scores under the aadb protocol
    from aadb_toolkit.submissions import read_submission

    sub = read_submission(csv, test_ids)
    assert sub.n_images == len(test_ids)
    assert main(["score", "--submission", str(csv), "--protocol", "aadb", "--data", str(tiny_curated),
                 "--out", str(tmp_path / "result.json"), "--n-boot", "50"]) == 0
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["protocol"]["name"] == "aadb"
    assert -1 <= result["metrics"]["spearman"]["value"] <= 1
    capsys.readouterr()
    assert main(["train", "--config", str(BASELINES / "reg.toml"), "--data", str(tiny_curated), "--out",
                 str(tmp_path / "x"), "--set", "optim.epoch=1"]) == 1
    assert "did you mean 'epochs'" in capsys.readouterr().err


class _Killed(BaseException):
    """Stands in for SIGKILL arriving in the middle of a file write."""


@pytest.mark.parametrize("target, nth", [("checkpoint.pt", 4), ("best.pt", 1)])
def test_a_kill_during_a_checkpoint_write_never_leaves_a_partial_checkpoint(target, nth, tiny_curated, tmp_path,
                                                                           monkeypatch):
    cfg = _tiny("reg_rank_within_cross", **{"optim.epochs": 2, "pairs.n_pairs": 128, "train.checkpoint_every_steps": 3})
    full = train(cfg, tiny_curated, tmp_path / "full", progress=False, cache_dir=tmp_path / "c")
    from aadb_toolkit.models import runs

    real_write, calls = runs._write, []

    def dying_write(tmp, data):
        name = Path(tmp).name
        if name.startswith(f".{target}."):
            calls.append(name)
            if len(calls) == nth:
                real_write(tmp, data[:1000])  # half-written, then the process dies
                raise _Killed
        return real_write(tmp, data)

    monkeypatch.setattr(runs, "_write", dying_write)
    with pytest.raises(_Killed):
        train(cfg, tiny_curated, tmp_path / "cut", progress=False, cache_dir=tmp_path / "c")
    monkeypatch.setattr(runs, "_write", real_write)
    run = tmp_path / "cut"
    # the checkpoint on disk is the last complete one (the 4th write would have been at step 9)
    ck = load_run_file(run / CHECKPOINT, "aadb-checkpoint")
    assert ck["global_step"] == (8 if target == "checkpoint.pt" else 6)
    assert not (run / BEST).exists() if target == "best.pt" else (run / BEST).is_file()
    # a real SIGKILL leaves its temporary file behind: it must be ignored, never loaded
    (run / ".checkpoint.pt.zzzz.tmp").write_bytes(b"partial")
    resumed = train(cfg, tiny_curated, run, progress=False, cache_dir=tmp_path / "c")
    assert resumed.weights_sha256 == full.weights_sha256 and resumed.val_rho == full.val_rho
    # a damaged checkpoint.pt (e.g. copied half-way by hand) is refused, not silently restarted
    (run / CHECKPOINT).write_bytes((run / CHECKPOINT).read_bytes()[:2000])
    with pytest.raises(InputError, match="checkpoint.pt"):
        train(cfg, tiny_curated, run, progress=False, cache_dir=tmp_path / "c")


def test_identical_runs_are_bit_identical_lr_anneals_and_best_is_by_validation_rho(tiny_curated, tmp_path,
                                                                                  monkeypatch):
    from aadb_toolkit.models import trainer

    cfg = _tiny("reg", **{"optim.epochs": 3, "optim.anneal_at": [0.5, 0.75], "optim.lr": 1e-3,
                          "train.log_every_steps": 1})
    planted = {}

    def fake_rho(pred, truth):  # validation ρ 0.1, 0.5, 0.3: the best epoch is the middle one
        planted.setdefault("n", 0)
        planted["n"] += 1
        return [0.1, 0.5, 0.3][(planted["n"] - 1) % 3]

    monkeypatch.setattr(trainer, "_spearman", fake_rho)
    a = train(cfg, tiny_curated, tmp_path / "a", progress=False, cache_dir=tmp_path / "c")
    b = train(cfg, tiny_curated, tmp_path / "b", progress=False, cache_dir=tmp_path / "c")
    assert a.weights_sha256 == b.weights_sha256  # deterministic on CPU
    assert a.val_rho == [0.1, 0.5, 0.3] and (a.best_epoch, a.best_val_rho) == (1, 0.5)
    best = load_run_file(tmp_path / "a" / BEST, "aadb-model")
    assert (best["epoch"], best["val_rho"]) == (1, 0.5)
    # best.pt holds the weights as they were after epoch 2 of 3 (an interrupted copy of the run stops there)
    with pytest.raises(TrainingInterrupted):
        train(cfg, tiny_curated, tmp_path / "e2", progress=False, cache_dir=tmp_path / "c",
              stop_after_steps=2 * a.total_steps // 3)
    after_e2 = load_run_file(tmp_path / "e2" / CHECKPOINT, "aadb-checkpoint")
    assert after_e2["epoch"] == 2 and state_sha256(best["model"]) == state_sha256(after_e2["model"])
    # the learning rate is annealed ×0.1 at half and three quarters of the steps
    recs = [json.loads(x) for x in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    lrs = {r["step"]: r["lr"] for r in recs if r["kind"] == "train"}
    total = a.total_steps
    assert sorted(lrs) == list(range(1, total + 1))
    for step, lr in lrs.items():  # record `step` is logged after step index step-1
        k = ((step - 1) >= round(0.5 * total)) + ((step - 1) >= round(0.75 * total))
        assert lr == pytest.approx(1e-3 * 0.1 ** k, rel=1e-12)
    assert len(set(lrs.values())) == 3


def test_bf16_autocast_only_on_cuda(tiny_curated, tmp_path):
    from aadb_toolkit.models.devices import bf16_autocast

    assert bf16_autocast("auto", "cuda:0") and bf16_autocast("bf16", "cuda:1")
    assert not bf16_autocast("auto", "cpu") and not bf16_autocast("off", "cuda:0")
    with pytest.raises(InputError, match="CUDA only") as e:
        train(_tiny("reg", **{"train.amp": "bf16"}), tiny_curated, tmp_path / "run", progress=False, device="cpu")
    assert e.value.field == "train.amp" and not (tmp_path / "run").exists()


@pytest.mark.parametrize("head", ["regression", "binary_confidence"])
def test_heads_score_in_float32_under_bf16_autocast(head):
    from aadb_toolkit.models import build_model

    torch.manual_seed(0)
    net = build_model(head, width=0.0625).eval()
    x = torch.randn(200, 3, 64, 64)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(x)
        fc7 = net.features(x)
    assert out["score"].dtype == torch.float32
    ref = net.head.__class__.forward(net.head, fc7.float())  # the head in plain float32
    torch.testing.assert_close(out["score"], ref["score"])
    assert out["score"].unique().numel() == 200  # bf16 scores would collapse into a few dozen ties


def test_cli_errors_for_bad_overrides_are_clear(tiny_curated, tmp_path, capsys):
    base = ["train", "--config", str(BASELINES / "reg.toml"), "--data", str(tiny_curated), "--out", str(tmp_path / "x")]
    for setting, expected in [("optim.lr=fast", "field 'optim.lr': expected float, got 'fast'"),
                              ("optim.epochs=1.5", "field 'optim.epochs': expected int, got 1.5"),
                              ("optim.batchsize=8", "did you mean 'batch_size'"),
                              ("optimm.lr=0.1", "did you mean 'optim'"),
                              ("pairs.strategy=crosss", "did you mean 'cross'"),
                              ("optim.epochs.x=1", "'epochs' is not a table"),
                              ("optim.lr", "not of the form section.key=value"),
                              ("optim.anneal_at=0.5", "field 'optim.anneal_at': expected a list of float, got 0.5"),
                              ("loss.weights=1", "field 'loss.weights': expected a table of float, got 1")]:
        assert main([*base, "--set", setting]) == 1
        err = capsys.readouterr().err
        assert expected in err and "Traceback" not in err, (setting, err)
    assert not (tmp_path / "x").exists()


def test_predict_refuses_to_write_non_finite_scores(tiny_curated, tmp_path, capsys):
    run = tmp_path / "run"
    train(_tiny("reg"), tiny_curated, run, progress=False)
    obj = load_run_file(run / BEST, "aadb-model")
    obj["model"]["head.bias"].fill_(float("nan"))
    torch.save(obj, run / BEST)
    csv = tmp_path / "preds.csv"
    assert main(["predict", "--run", str(run), "--data", str(tiny_curated), "--out", str(csv)]) == 1
    assert "not finite" in capsys.readouterr().err and not csv.exists()


def test_a_cpu_run_never_seeds_an_accelerator(tiny_curated, tmp_path, monkeypatch):
    """torch.manual_seed at every step would queue a lazy CUDA seed (a stack trace formatted each
    time, about 1.5 ms, a tenth of a small model's CPU step) that outlives the run's forked state."""
    calls = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", calls.append)
    res = train(_tiny("reg_rank_within"), tiny_curated, tmp_path / "run", progress=False, cache_dir=tmp_path / "c")
    assert res.global_step > 1 and calls == []


def test_the_rater_key_given_as_init_weights_writes_nothing(tiny_curated, tmp_path, monkeypatch, capsys):
    """Review 2026-12-04 (afternoon): ``--init-weights`` naming the key file echoed torch's error
    (the key's first byte) and left a claimed run folder with its pixel cache behind."""
    key = tmp_path / "keys" / "rater.key"
    key.parent.mkdir()
    key.write_text("correct-horse-battery-staple-secret\n")
    monkeypatch.setenv("AADB_RATER_KEY_FILE", str(key))
    assert main(["train", "--config", "reg", "--data", str(tiny_curated), "--out", str(tmp_path / "run"),
                 "--init-weights", str(key), "--steps", "1", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "rater key" in err and "correct" not in err and "operand" not in err
    assert not (tmp_path / "run").exists()

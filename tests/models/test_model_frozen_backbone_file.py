"""A frozen-mode run keeps its backbone once (``backbone.pt``), not in every checkpoint: the
backbone never trains there, and a large one (a ViT-L is over a gigabyte) was written again with
each checkpoint and best model. The run files keep the head and the backbone file's sha256; a run
still reloads, predicts and resumes bit-identically from its folder alone, and a damaged or mixed
backbone file is a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from aadb_toolkit.errors import InputError
from aadb_toolkit.models import TrainingInterrupted, load_config, predict, train
from aadb_toolkit.models.runs import BACKBONE_FILE, BACKBONE_FORMAT, BEST, CHECKPOINT, load_model, load_run_file

BASELINES = Path(__file__).resolve().parents[2] / "baselines"
TINY = {"model.width": 0.0625, "data.warp_size": 72, "data.crop_size": 64, "optim.batch_size": 16,
        "train.cpu_threads": 1, "pairs.n_pairs": 96, "train.checkpoint_every_steps": 2,
        "train.validate_every_steps": 3, "optim.steps": 6}
pytestmark = pytest.mark.filterwarnings("ignore:no --init-weights")


def _cfg(mode: str):
    return load_config(BASELINES / "cpu_reg_rank.toml", {**TINY, "model.mode": mode})


def test_a_frozen_run_keeps_its_backbone_once_and_reloads_from_it(tiny_curated, tmp_path):
    result = train(_cfg("frozen"), tiny_curated, tmp_path / "run", progress=False)
    run = tmp_path / "run"
    stored = load_run_file(run / BACKBONE_FILE, BACKBONE_FORMAT)["model"]
    assert stored and all(k.startswith("backbone.") for k in stored)
    for name, fmt in ((BEST, "aadb-model"), (CHECKPOINT, "aadb-checkpoint")):
        obj = load_run_file(run / name, fmt)
        assert obj["model"] and not any(k.startswith("backbone.") for k in obj["model"])  # the head only
        assert obj["frozen_backbone"]["file"] == BACKBONE_FILE
    assert (run / BEST).stat().st_size < (run / BACKBONE_FILE).stat().st_size / 10
    net, _ = load_model(run)
    for k, v in net.state_dict().items():
        if k.startswith("backbone."):
            assert torch.equal(v, stored[k])
    from aadb_toolkit.models.runs import state_sha256

    last, _ = load_model(run, which="last")
    assert state_sha256(last.state_dict()) == result.weights_sha256  # the very network that trained
    preds = predict(run, tiny_curated, "test", device="cpu")
    assert preds["score"].notna().all() and preds["score"].nunique() > 1


def test_a_frozen_run_resumes_bit_identically_from_head_only_checkpoints(tiny_curated, tmp_path):
    full = train(_cfg("frozen"), tiny_curated, tmp_path / "full", progress=False, cache_dir=tmp_path / "c")
    with pytest.raises(TrainingInterrupted):
        train(_cfg("frozen"), tiny_curated, tmp_path / "cut", progress=False, cache_dir=tmp_path / "c",
              stop_after_steps=4)
    resumed = train(_cfg("frozen"), tiny_curated, tmp_path / "cut", progress=False, cache_dir=tmp_path / "c")
    assert resumed.weights_sha256 == full.weights_sha256 and resumed.val_rho == full.val_rho


def test_a_damaged_or_missing_backbone_file_is_a_clear_error(tiny_curated, tmp_path):
    run = tmp_path / "run"
    train(_cfg("frozen"), tiny_curated, run, progress=False)
    obj = torch.load(run / BACKBONE_FILE, weights_only=True)
    key = next(iter(obj["model"]))
    obj["model"][key] = obj["model"][key] + 1.0  # other weights under the same record
    torch.save(obj, run / BACKBONE_FILE)
    with pytest.raises(InputError, match="sha256") as err:
        load_model(run)
    assert BACKBONE_FILE in str(err.value)
    (run / BACKBONE_FILE).unlink()
    with pytest.raises(InputError, match="no such file"):
        load_model(run)


def test_a_finetuned_run_keeps_every_weight_in_its_run_files(tiny_curated, tmp_path):
    train(_cfg("finetune"), tiny_curated, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / BACKBONE_FILE).exists()
    obj = load_run_file(tmp_path / "run" / BEST, "aadb-model")
    assert any(k.startswith("backbone.") for k in obj["model"]) and "frozen_backbone" not in obj

"""Issue 9 item 5 and item 8: resuming refuses other data (naming both fingerprints), another world
size or device kind; ``--device`` asks that cannot be met are clear errors, not tracebacks."""

import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from aadb_toolkit.cli import main
from aadb_toolkit.errors import InputError
from aadb_toolkit.models import TrainingInterrupted, load_config, pick_device, train
from aadb_toolkit.models.runs import CHECKPOINT, load_run_file

BASELINES = Path(__file__).resolve().parents[2] / "baselines"
TINY = {"model.width": 0.0625, "data.warp_size": 72, "data.crop_size": 64, "optim.batch_size": 16,
        "optim.epochs": 2, "train.log_every_steps": 2, "train.cpu_threads": 1, "train.checkpoint_every_steps": 2}
pytestmark = pytest.mark.filterwarnings("ignore:no --init-weights")


def _interrupted(tiny_curated, run):
    cfg = load_config(BASELINES / "reg.toml", TINY)
    with pytest.raises(TrainingInterrupted):
        train(cfg, tiny_curated, run, progress=False, stop_after_steps=3)
    return cfg


def test_resume_with_other_data_is_refused_naming_both_fingerprints(tiny_curated, tmp_path):
    cfg = _interrupted(tiny_curated, tmp_path / "run")
    other = tmp_path / "other"
    shutil.copytree(tiny_curated, other)
    shutil.copytree(tiny_curated.parent / "release", tmp_path / "release")  # the relative release root
    images = pd.read_parquet(other / "images.parquet")
    images.loc[images["split"] == "train", "score"] = images.loc[images["split"] == "train", "score"][::-1].to_numpy()
    images.to_parquet(other / "images.parquet")
    old = load_run_file(tmp_path / "run" / CHECKPOINT, "aadb-checkpoint")["data_fingerprint"]
    with pytest.raises(InputError, match="other data") as e:
        train(cfg, other, tmp_path / "run", progress=False)
    assert old in str(e.value) and str(e.value).count("sha256:") == 2
    # the same data resumes
    assert train(cfg, tiny_curated, tmp_path / "run", progress=False).stopped == "completed"


def test_resume_with_changed_image_bytes_is_refused(tiny_curated, tmp_path):
    cfg = _interrupted(tiny_curated, tmp_path / "run")
    from aadb_toolkit.sources import load

    data = load(tiny_curated)
    first = data.split("train")["image_id"].iloc[0]
    original = data.read_image_bytes
    data.read_image_bytes = lambda i: original(i) + b"\x00" if i == first else original(i)
    with pytest.raises(InputError, match="other data"):
        train(cfg, data, tmp_path / "run", progress=False)


@pytest.mark.parametrize("key, value, message", [("world_size", 2, "2 process"), ("device_kind", "cuda", "trained on cuda")])
def test_resume_checks_world_size_and_device_kind(tiny_curated, tmp_path, key, value, message):
    cfg = _interrupted(tiny_curated, tmp_path / "run")
    path = tmp_path / "run" / CHECKPOINT
    ck = load_run_file(path, "aadb-checkpoint")
    ck[key] = value
    torch.save(ck, path)
    with pytest.raises(InputError, match=message):
        train(cfg, tiny_curated, tmp_path / "run", progress=False)


def test_device_errors_are_clear(tiny_curated, tmp_path, capsys, monkeypatch):
    with pytest.raises(InputError, match="'gpu'"):
        pick_device("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InputError, match="no NVIDIA driver|sees none"):
        pick_device("cuda")
    assert pick_device("cpu") == "cpu" and pick_device(None) == "cpu"
    for device in ("gpu", "cuda", "cuda:x"):
        code = main(["train", "--config", str(BASELINES / "reg.toml"), "--data", str(tiny_curated),
                     "--out", str(tmp_path / "r"), "--device", device])
        err = capsys.readouterr().err
        assert code == 1 and "Traceback" not in err and "device" in err, (device, err)


CUSTOM_SECRET = "correct-horse-battery-staple-secret-words"


@pytest.mark.parametrize("name", ["metrics.jsonl", CHECKPOINT])
def test_a_run_file_that_is_a_link_is_refused_unread_on_resume(tiny_curated, tmp_path, name):
    """Review 2026-12-04 (afternoon): a run's metrics.jsonl replaced by a link to the rater key was
    read through the link on resume and its first line quoted ("not a JSON object: '903e15cd…'");
    a linked checkpoint echoed torch's unpickling error, which names the file's first byte."""
    cfg = _interrupted(tiny_curated, tmp_path / "run")
    secret = tmp_path / "elsewhere" / "my.key"
    secret.parent.mkdir()
    secret.write_text(CUSTOM_SECRET + "\n")
    (tmp_path / "run" / name).unlink()
    (tmp_path / "run" / name).symlink_to(secret)
    with pytest.raises(InputError, match="symbolic link") as e:
        train(cfg, tiny_curated, tmp_path / "run", progress=False)
    assert "correct-horse" not in str(e.value) and "weights_only=False" not in str(e.value)


def test_a_weights_file_torch_cannot_read_is_refused_in_one_short_line(tmp_path):
    """torch's own message for a file it cannot unpickle advises weights_only=False and names
    the file's first byte; neither is repeated."""
    path = tmp_path / "checkpoint.pt"
    path.write_text(CUSTOM_SECRET + "\n")
    with pytest.raises(InputError) as e:
        load_run_file(path, "aadb-checkpoint")
    message = str(e.value)
    assert "weights_only=False" not in message and "operand" not in message and "\n" not in message

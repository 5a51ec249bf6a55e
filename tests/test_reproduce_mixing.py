"""Issue 17 item 4: `aadb reproduce` never mixes data sets or writers. A finished row is reused only
when its run was trained on the same data (same data fingerprint); a second reproduction into the
same folder while the first runs is refused."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import pandas as pd
import pytest

from aadb_toolkit.errors import InputError, OutputError
from aadb_toolkit.reproduce import reproduce
from aadb_toolkit.sources import load
from lock_fixtures import hold_lock
from reproduce_fixtures import tiny_recipe

TINY = {"model.width": 0.0625, "data.warp_size": 72, "data.crop_size": 64, "optim.batch_size": 16,
        "optim.steps": 4, "train.validate_every_steps": 2, "train.checkpoint_every_steps": 2,
        "train.cpu_threads": 1, "optim.lr": 1e-3}
pytestmark = pytest.mark.filterwarnings("ignore:no --init-weights")


def _other_data(tiny_curated: Path, tmp_path: Path) -> Path:
    """A copy of the curated folder whose training scores are reversed (same images)."""
    other = tmp_path / "other"
    shutil.copytree(tiny_curated, other)
    shutil.copytree(tiny_curated.parent / "release", tmp_path / "release")  # the relative release root
    images = pd.read_parquet(other / "images.parquet")
    train = images["split"] == "train"
    images.loc[train, "score"] = images.loc[train, "score"][::-1].to_numpy()
    images.to_parquet(other / "images.parquet")
    return other


def test_a_finished_row_is_not_reused_for_other_data(tiny_curated, tmp_path):
    recipe = tiny_recipe("table2", TINY, rows={"Reg"})
    out = tmp_path / "o"
    reproduce(recipe, {"aadb": load(tiny_curated)}, out, n_boot=0, progress=False)
    summary = out / "reproduce.json"
    first = summary.read_bytes()
    with pytest.raises(InputError, match="trained on other data") as e:
        reproduce(recipe, {"aadb": load(_other_data(tiny_curated, tmp_path))}, out, n_boot=0, progress=False)
    assert str(e.value).count("sha256:") == 2
    assert json.loads(first)["status"] == "complete"
    # the same data still reuses every finished row, and the cache keeps only what the table used
    stale = out / "cache" / "images-99-0123456789abcdef0123.npy"  # an entry of an earlier data set
    stale.write_bytes(b"x")
    os.utime(stale, (0, 0))
    again = reproduce(recipe, {"aadb": load(tiny_curated)}, out, n_boot=0, progress=False)
    assert again.records[0]["ours"] == json.loads(first)["rows"][0]["ours"]
    left = [p.name for p in (out / "cache").iterdir()]
    assert not stale.exists() and left and all(n.startswith("images-72-") for n in left)  # the test split's


def test_a_second_reproduction_into_a_running_one_is_refused(tiny_curated, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    first = hold_lock(out)  # the first `aadb reproduce --out o`, still running
    try:
        with pytest.raises(OutputError, match="another aadb process is writing to this reproduction folder"):
            reproduce(tiny_recipe("table2", TINY, rows={"Reg"}), {"aadb": load(tiny_curated)}, out, n_boot=0,
                      progress=False)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert not (out / "runs").exists()

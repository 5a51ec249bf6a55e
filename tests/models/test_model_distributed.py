"""Data parallelism: two processes with the gloo backend on CPU (``torch.distributed.run``, as
``torchrun`` does) finish, agree on the weights, and match a single-process run closely."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aadb_toolkit.models import predict

BASELINES = Path(__file__).resolve().parents[2] / "baselines"
ARGS = ["--image-size", "64", "--epochs", "1", "--no-progress", "--set", "model.width=0.0625",
        "--set", "pairs.n_pairs=64", "--set", "optim.batch_size=16", "--set", "model.dropout=0.0",
        "--device", "cpu", "--set", "train.cpu_threads=1"]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:no --init-weights")
def test_two_gloo_processes_finish_and_agree(tiny_curated, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    # the CLI, then whether the trainer left its process group behind (it must not: a gloo group
    # alive at interpreter exit can abort the process, "terminate called without an active exception")
    script = tmp_path / "train_then_check.py"
    script.write_text("import sys\nimport torch.distributed as dist\nfrom aadb_toolkit.cli import main\n"
                      "code = main(sys.argv[1:])\nprint(f'process group left: {dist.is_initialized()}', flush=True)\n"
                      "sys.exit(code)\n")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(script), "train", "--config", str(BASELINES / "reg_rank_within_cross.toml"),
           "--data", str(tiny_curated), "--out", str(tmp_path / "ddp"), *ARGS]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("process group left: False") == 2, proc.stdout[-3000:]
    summary = json.loads((tmp_path / "ddp" / "run.json").read_text())
    assert summary["world_size"] == 2 and summary["ranks_agree"] and summary["global_step"] == 4
    from aadb_toolkit.cli import main

    assert main(["train", "--config", str(BASELINES / "reg_rank_within_cross.toml"), "--data", str(tiny_curated),
                 "--out", str(tmp_path / "one"), *ARGS]) == 0
    # the same global batches, split over two ranks and averaged by DDP: the same model up to rounding
    a = predict(tmp_path / "ddp", tiny_curated)["score"].to_numpy()
    b = predict(tmp_path / "one", tiny_curated)["score"].to_numpy()
    np.testing.assert_allclose(a, b, atol=1e-4)

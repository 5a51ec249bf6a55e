"""A plain (non-editable) install ships everything the commands read (baseline configs, card
templates, the simulator's model): install the checkout into a throw-away folder, then, from
another folder far from the checkout, list the baselines, train one by name and run the demo."""

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_plain_install_lists_and_trains_baselines_by_name_and_runs_the_demo(tiny_curated, tmp_path):
    site = tmp_path / "site"
    src = tmp_path / "src"  # a copy of the checkout, so the build leaves nothing in the real one
    shutil.copytree(CHECKOUT, src, ignore=shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__",
                                                                 ".pytest_cache", "demo_out", ".venv"))
    # offline when this environment can build (setuptools present), else pip fetches the build backend
    offline = ["--no-build-isolation", "--no-index"] if importlib.util.find_spec("setuptools") else []
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", *offline, "--target", str(site),
                    str(src)], check=True, capture_output=True)
    shutil.rmtree(src)
    assert (site / "aadb_toolkit" / "baselines" / "reg.toml").is_file()
    assert (site / "aadb_toolkit" / "docs" / "protocols.md").is_file()  # the docs the help texts name
    env = {**os.environ, "PYTHONPATH": str(site), "HF_HOME": str(tmp_path / "hf")}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def aadb(*args):
        return subprocess.run([sys.executable, "-m", "aadb_toolkit", *args], cwd=elsewhere, env=env,
                              capture_output=True, text=True, timeout=600)

    where = subprocess.run([sys.executable, "-c", "import aadb_toolkit; print(aadb_toolkit.__file__)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(site)), where
    assert str(site / "aadb_toolkit" / "docs") in aadb("--help").stdout
    listing = aadb("baselines")
    assert listing.returncode == 0, listing.stderr
    assert "reg_rank_within" in listing.stdout and str(site) in listing.stdout
    trained = aadb("train", "--config", "reg_rank_within", "--data", str(tiny_curated), "--out", "run",
                   "--image-size", "64", "--epochs", "1", "--set", "model.width=0.0625",
                   "--set", "pairs.n_pairs=32", "--set", "optim.batch_size=16", "--no-progress")
    assert trained.returncode == 0, trained.stderr
    assert (elsewhere / "run" / "config.json").is_file()
    demo = aadb("demo", "--out", "demo", "--images", "200", "--n-perm", "100")
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert (elsewhere / "demo" / "score.json").is_file() and (elsewhere / "demo" / "report" / "report.html").is_file()

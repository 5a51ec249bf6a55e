"""Baseline configs are found by name wherever a config path is accepted, and listed by
``aadb baselines`` with the paper rows they read from their own files."""

import json
import tomllib
from pathlib import Path

import pytest

from aadb_toolkit.cli import main
from aadb_toolkit.errors import InputError
from aadb_toolkit.models import baseline_names, baselines_dir, load_config

BASELINES = Path(__file__).resolve().parents[2] / "baselines"


def test_a_bare_name_loads_the_shipped_config_and_a_typo_gets_suggestions(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # another folder: the name must not depend on the working directory
    by_name = load_config("reg_rank_within", {"optim.epochs": 3})
    by_path = load_config(BASELINES / "reg_rank_within.toml", {"optim.epochs": 3})
    assert by_name == by_path and by_name.optim.epochs == 3
    with pytest.raises(InputError, match="did you mean 'reg_rank_within'"):
        load_config("reg_rank_witin")


def test_a_local_file_wins_over_a_baseline_of_the_same_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("reg").write_text('name = "my_local_reg"\n')
    assert load_config("reg").name == "my_local_reg"


def test_baselines_come_from_the_checkout_when_run_from_one():
    assert baselines_dir() == BASELINES
    assert baseline_names() == sorted(p.stem for p in BASELINES.glob("*.toml"))


def test_aadb_baselines_lists_every_config_with_its_paper_row(capsys):
    assert main(["baselines"]) == 0
    out = capsys.readouterr().out
    for path in BASELINES.glob("*.toml"):
        raw = tomllib.loads(path.read_text())
        line = next(ln for ln in out.splitlines() if ln.startswith(path.stem + " "))
        assert raw.get("paper_row", "-") in line
    assert "Reg+Rank (within-rater)" in out and "0.6450" in out


def test_cli_train_accepts_a_baseline_name(tiny_curated, tmp_path, capsys):
    assert main(["train", "--config", "reg", "--data", str(tiny_curated), "--out", str(tmp_path / "run"),
                 "--image-size", "64", "--epochs", "1", "--set", "model.width=0.0625", "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith("reg: ")
    assert json.loads((tmp_path / "run" / "config.json").read_text())["name"] == "reg"
    assert main(["train", "--config", "rge", "--data", str(tiny_curated), "--out", str(tmp_path / "x")]) == 1
    assert "did you mean 'reg'" in capsys.readouterr().err

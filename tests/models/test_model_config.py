"""Configs: validation with suggestions, overrides, and the baselines' numbers equal paper.py's."""

from pathlib import Path

import pytest

from aadb_toolkit import paper
from aadb_toolkit.errors import InputError
from aadb_toolkit.models.config import config_from_dict, load_config, parse_override

BASELINES = Path(__file__).resolve().parents[2] / "baselines"
PAPER_VARIANTS = ["alexnet_ft_conf", "reg", "reg_rank_cross", "reg_rank_within", "reg_rank_within_cross"]


@pytest.mark.parametrize("name", PAPER_VARIANTS)
def test_baseline_numbers_equal_the_papers(name):
    cfg = load_config(BASELINES / f"{name}.toml")
    assert cfg.name == name
    assert cfg.paper_table == "TABLE2_AADB_RHO" and cfg.paper_row in paper.TABLE2_AADB_RHO
    assert (cfg.data.warp_size, cfg.data.crop_size) == (paper.WARP_SIZE, paper.CROP_SIZE)
    assert cfg.optim.lr == paper.LEARNING_RATE
    assert cfg.optim.momentum == paper.MOMENTUM
    assert cfg.optim.weight_decay == paper.WEIGHT_DECAY
    assert cfg.optim.anneal_factor == paper.LR_ANNEAL_FACTOR
    assert cfg.model.width == 1.0 and cfg.model.arch == "alexnet"
    if "rank" in name:
        assert cfg.loss.rank_margin == paper.RANK_MARGIN["aadb"]
        assert cfg.loss.weights["rank"] == paper.OMEGA_RANK_BEST["aadb"]
        strategy = name.removeprefix("reg_rank_")
        assert cfg.pairs.strategy == strategy
        assert cfg.pairs.n_pairs in paper.TABLE5_PAIRS[strategy]


def test_every_toml_under_baselines_is_valid():
    files = sorted(BASELINES.glob("*.toml"))
    assert {f.stem for f in files} >= set(PAPER_VARIANTS) | {"demo_cpu"}
    for f in files:
        load_config(f)


@pytest.mark.parametrize("raw, field, hint", [
    ({"optim": {"epoch": 3}}, "optim.epoch", "epochs"),
    ({"modle": {}}, "modle", "model"),
    ({"model": {"head": "regresion"}}, "model.head", "regression"),
    ({"pairs": {"strategy": "within-cross", "n_pairs": 5}}, "pairs.strategy", "within_cross"),
    ({"loss": {"weights": {"rnk": 1.0}}}, "loss.weights.rnk", "rank"),
    ({"paper_table": "TABLE2_AADB_RHO", "paper_row": "Reg+Rnk (cross-rater)"}, "paper_row", "Reg+Rank (cross-rater)"),
])
def test_unknown_names_are_rejected_with_suggestions(raw, field, hint):
    with pytest.raises(InputError) as e:
        config_from_dict({"name": "x", **raw})
    assert e.value.field == field and hint in str(e.value)


@pytest.mark.parametrize("raw, field", [
    ({"loss": {"weights": {"rank": 1.0}}}, "loss.weights.rank"),  # rank loss without pairs
    ({"loss": {"weights": {"classification": 1.0}}}, "loss.weights.classification"),  # regression head has no logits
    ({"data": {"crop_size": 56, "warp_size": 64}}, "data.crop_size"),
    ({"optim": {"lr": "fast"}}, "optim.lr"),
    ({"optim": {"anneal_at": [0.8, 0.5]}}, "optim.anneal_at"),
])
def test_inconsistent_configs_are_rejected(raw, field):
    with pytest.raises(InputError) as e:
        config_from_dict({"name": "x", **raw})
    assert e.value.field == field


def test_overrides_and_round_trip(tmp_path):
    cfg = load_config(BASELINES / "reg_rank_within.toml", {"optim.epochs": 3, "pairs.n_pairs": 10})
    assert cfg.optim.epochs == 3 and cfg.pairs.n_pairs == 10
    assert config_from_dict(cfg.to_dict()) == cfg
    assert cfg.replace({"model.width": 0.5}).model.width == 0.5
    assert parse_override("pairs.strategy=cross") == ("pairs.strategy", "cross")
    assert parse_override("optim.anneal_at=[0.3, 0.6]") == ("optim.anneal_at", [0.3, 0.6])
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(InputError, match="invalid TOML"):
        load_config(bad)


def test_baseline_config_by_name():
    from aadb_toolkit.models import baseline_config

    assert baseline_config("demo_cpu", {"optim.epochs": 1}).optim.epochs == 1
    with pytest.raises(InputError, match="did you mean 'demo_cpu'"):
        baseline_config("demo_cp")

"""Issue 17 item 7: hostile config values are refused when the config is loaded, naming the key,
with bounds derived from the machine's memory where memory is the limit — never a
FloatingPointError, MemoryError, RuntimeError or ValueError from deep inside training."""

from __future__ import annotations

import pytest

from aadb_toolkit.cli import main
from aadb_toolkit.errors import InputError
from aadb_toolkit.models import load_config
from aadb_toolkit.models.config import baseline_config, parse_override

CASES = [
    ("optim.lr=1e30", "optim.lr", "finite number"), ("optim.lr=inf", "optim.lr", "finite number"),
    ("optim.momentum=inf", "optim.momentum", "finite number"), ("optim.momentum=1", "optim.momentum", "[0, 1)"),
    ("loss.rank_margin=inf", "loss.rank_margin", "finite number"),
    ("data.mean=[nan, 0.4, 0.4]", "data.mean", "not finite"), ("data.std=[inf, 1, 1]", "data.std", "not finite"),
    ("data.warp_size=30000", "data.warp_size", "larger than 4096"),
    ("model.width=1000", "model", "more than this machine's memory"),
    ("model.fc7_factor=1e6", "model", "more than this machine's memory"),
    ("pairs.n_pairs=10000000000", "pairs.n_pairs", "machine's memory"),
    ("pairs.n_pairs=1e10", "pairs.n_pairs", "expected int"),
    ("pairs.cross_group_size=1", "pairs.cross_group_size", "at least 2"),
    ("pairs.cross_group_size=-10", "pairs.cross_group_size", "at least 2"),
    ("optim.weight_decay=1e300", "optim.weight_decay", "finite number"),
    ("train.seed=-1", "train.seed", "0 … 4294967295"), ("train.seed=1e20", "train.seed", "expected int"),
    ("train.seed=100000000000000000000", "train.seed", "0 … 4294967295"),
    # review 2026-12-04: accepted, then an internal error at the first step (nothing to train)
    ("loss.weights={regression=0.0, rank=0.0}", "loss.weights", "at least one loss weight must be > 0"),
    ("pairs.cross_bias=-2", "pairs.cross_bias", "≥ 0"),  # was read as 0 (uniform), against P ∝ |Δ|^bias
]


@pytest.mark.parametrize("override, key, message", CASES)
def test_hostile_values_are_refused_at_load_time_naming_the_key(override, key, message):
    k, v = parse_override(override)
    with pytest.raises(InputError, match="field") as e:
        baseline_config("reg_rank_within", {k: v})
    assert f"field {key!r}" in str(e.value) and message in str(e.value)


@pytest.mark.parametrize("override", ["optim.lr=1e30", "model.width=1000", "train.seed=-1"])
def test_the_cli_reports_them_without_a_traceback(override, tiny_curated, tmp_path, capsys):
    code = main(["train", "--config", "reg", "--data", str(tiny_curated), "--out", str(tmp_path / "r"),
                 "--no-progress", "--set", override])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("aadb train: error:") and override.split("=")[0] in err
    assert not (tmp_path / "r").exists()


def test_the_bounds_accept_the_shipped_configs_and_the_largest_seed():
    from aadb_toolkit.models.config import MAX_SEED

    assert baseline_config("reg", {"train.seed": MAX_SEED}).train.seed == MAX_SEED
    with pytest.raises(InputError, match="seed"):
        baseline_config("reg", {"train.seed": MAX_SEED, "ensemble.members": 2})
    from aadb_toolkit.models.config import baseline_names

    for name in baseline_names():
        load_config(name)


def test_a_pixel_cache_larger_than_memory_is_refused_before_it_is_allocated():
    from aadb_toolkit.models.config import machine_memory
    from aadb_toolkit.models.pipeline import decode_all

    n = machine_memory() // (3 * 4096 * 4096) + 1
    with pytest.raises(InputError, match="data.warp_size"):
        decode_all(None, [f"img{i}" for i in range(n)], 4096)


@pytest.mark.parametrize("limit, expect_limit", [("1073741824\n", True), ("max\n", False), ("garbage", False),
                                                 (None, False)])
def test_machine_memory_is_bounded_by_the_containers_memory_limit(tmp_path, monkeypatch, limit, expect_limit):
    """In a container (cgroup v2 memory.max, or v1 memory.limit_in_bytes) the limit, not the
    host's physical memory, bounds what a config may ask for; no limit ("max", unreadable, or a
    v1 "unlimited" of 2**63) leaves the physical memory."""
    from aadb_toolkit.models import config

    physical = config.physical_memory()
    file = tmp_path / "memory.max"
    if limit is not None:
        file.write_text(limit)
    monkeypatch.setattr(config, "CGROUP_MEMORY_FILES", (tmp_path / "absent", file))
    assert config.machine_memory() == (min(physical, 2**30) if expect_limit else physical)
    file.write_text(str(2**63 - 4096))
    assert config.machine_memory() == physical


def test_a_config_larger_than_the_containers_memory_is_refused(tmp_path, monkeypatch):
    from aadb_toolkit.models import config

    file = tmp_path / "memory.max"
    file.write_text(str(2**20))  # a 1 MiB container
    monkeypatch.setattr(config, "CGROUP_MEMORY_FILES", (file,))
    with pytest.raises(InputError, match="pairs.n_pairs"):
        baseline_config("cpu_reg_rank", {"pairs.n_pairs": 100_000})


@pytest.mark.parametrize("overrides", [
    {"optim.optimizer": "adamw", "optim.lr": 1.0, "optim.weight_decay": 1.0},
    {"optim.optimizer": "sgd", "optim.lr": 4.0, "optim.weight_decay": 0.5},
    {"optim.lr": 1e-3, "optim.head_lr_mult": 1000.0, "optim.weight_decay": 1.0},
])
def test_a_decay_that_zeroes_or_flips_the_weights_each_step_is_refused(overrides):
    """Each step multiplies a weight by 1 − lr × weight_decay (the head's lr × head_lr_mult): at 1
    or more the decay alone zeroes or flips every weight, whatever the bound on weight_decay."""
    with pytest.raises(InputError, match="field 'optim.weight_decay'") as e:
        baseline_config("reg_rank_within", overrides)
    assert "1 − lr × weight_decay" in str(e.value)


def test_the_decay_bound_keeps_the_practitioner_recipes():
    cfg = baseline_config("reg_rank_within", {"optim.optimizer": "adamw", "optim.lr": 1e-3,
                                              "optim.head_lr_mult": 100.0, "optim.weight_decay": 1.0})
    assert cfg.optim.weight_decay == 1.0


def test_the_cli_reports_a_decay_too_strong_for_the_lr_without_a_traceback(tiny_curated, tmp_path, capsys):
    code = main(["train", "--config", "reg", "--data", str(tiny_curated), "--out", str(tmp_path / "r"),
                 "--no-progress", "--set", "optim.lr=2", "--set", "optim.weight_decay=0.6"])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("aadb train: error:") and "optim.weight_decay" in err
    assert "Traceback" not in err and not (tmp_path / "r").exists()

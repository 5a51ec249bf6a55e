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
    ("optim.weight_decay=1e300", "optim.weight_decay", "finite number"),
    ("train.seed=-1", "train.seed", "0 … 4294967295"), ("train.seed=1e20", "train.seed", "expected int"),
    ("train.seed=100000000000000000000", "train.seed", "0 … 4294967295"),
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

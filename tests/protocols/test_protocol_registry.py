"""The declared protocol registry."""

from __future__ import annotations

import pytest

from aadb_toolkit.errors import InputError
from aadb_toolkit.protocols import PROTOCOLS, UnknownProtocolError, get_protocol, score_submission


def test_every_protocol_is_declared_and_loads():
    assert set(PROTOCOLS) == {"aadb", "ava", "human", "cross-dataset", "piaa", "attributes"}
    for name, p in PROTOCOLS.items():
        assert p.name == name and p.version and p.main_metric and p.splits
        module = p.implementation()
        assert callable(module.evaluate) and callable(module.read_files)


def test_unknown_protocol_suggests_close_names():
    with pytest.raises(UnknownProtocolError, match="did you mean aadb"):
        get_protocol("aadv")
    with pytest.raises(UnknownProtocolError, match="did you mean cross-dataset"):
        get_protocol("cross_dataset")
    with pytest.raises(InputError, match="known: aadb, ava, human, cross-dataset"):
        get_protocol("zzzzzz")


def test_arguments_a_protocol_does_not_take_are_refused(tmp_path):
    with pytest.raises(InputError, match="takes no --validation"):
        score_submission("aadb", tmp_path / "s.csv", tmp_path, validation=tmp_path / "v.csv")
    with pytest.raises(InputError, match="needs the submitter's validation"):
        score_submission("ava", tmp_path / "s.csv", tmp_path)
    with pytest.raises(InputError, match="needs the AVA folder"):
        score_submission("cross-dataset", tmp_path / "m.toml", tmp_path)
    with pytest.raises(InputError, match="n_boot must be >= 0"):
        score_submission("aadb", tmp_path / "s.csv", tmp_path, n_boot=-1)


SEED_RANGE = "seed must be a whole number from 0 to 9,223,372,036,854,775,807"


@pytest.mark.parametrize("seed", [-1, 2**63, True, 1.5], ids=["negative", "past_int64", "bool", "float"])
def test_every_entry_refuses_a_seed_outside_the_one_range_before_any_work(tmp_path, seed):
    """The range ``aadb score`` and ``aadb consistency`` give (``_numbers.check_seed``): a seed past
    int64 was accepted and recorded in a result document the toolkit then refused to read, and
    ``evaluate_model`` predicted before it looked at the seed."""
    import pandas as pd

    from aadb_toolkit.protocols import evaluate, evaluate_model
    from tiny_data import memory_source

    data = memory_source(pd.Series([1.0, 2.0, 3.0], index=["a", "b", "c"]))
    predictions = pd.DataFrame({"image_id": ["a", "b", "c"], "score": [1.0, 2.0, 3.0]})

    def model(data, split):
        raise AssertionError("predicted before the seed was checked")

    for call in (lambda: evaluate("aadb", data, predictions, n_boot=10, seed=seed),
                 lambda: score_submission("aadb", tmp_path / "s.csv", tmp_path / "nowhere", seed=seed),
                 lambda: evaluate_model("aadb", model, data, seed=seed)):
        with pytest.raises(InputError, match=SEED_RANGE) as exc:
            call()
        assert exc.value.field == "seed"

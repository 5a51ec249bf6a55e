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

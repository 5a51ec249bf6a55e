"""The published ``piaa`` config: the protocol's episodes, round-tripped through load_dataset."""

from __future__ import annotations

from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pytest

from aadb_toolkit import hub, sources

from aadb_toolkit.hub import layout
from aadb_toolkit.piaa import episodes as ep
from aadb_toolkit.protocols import piaa_protocol


@pytest.fixture(scope="module")
def published(tiny_curated, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pub_piaa") / "aadb"
    data = sources.load(tiny_curated)
    hub.publish(data, out, extra_configs=(hub.piaa_config(*ep.published_table(data)),))
    return out


def test_piaa_config_round_trips_through_load_dataset(published, tiny_curated, tmp_path):
    expected = ep.make_episodes(sources.load(tiny_curated))
    assert len(expected) > 0
    ds = datasets.load_dataset(str(published), layout.CONFIG_PIAA, cache_dir=str(tmp_path / "cache"))
    assert list(ds) == [layout.PIAA_SPLIT]
    got = ds[layout.PIAA_SPLIT].to_pandas()
    assert list(got.columns) == list(ep.COLUMNS)
    got["score"] = got["score"].astype(float)  # queries hold no score (null)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert got.loc[got["role"] == "query", "score"].isna().all()
    assert got.loc[got["role"] == "support", "score"].notna().all()


def test_published_and_curated_give_the_same_episodes_and_fingerprint(published, tiny_curated):
    curated, back = sources.load(tiny_curated), sources.load(published)
    a, b = ep.make_episodes(curated), ep.make_episodes(back)
    pd.testing.assert_frame_equal(a, b)
    assert piaa_protocol.fingerprint(curated, a) == piaa_protocol.fingerprint(back, b)
    readme = (published / layout.README).read_text()
    assert ep.fingerprint(a) in readme


def test_fingerprint_covers_the_episodes(tiny_curated):
    data = sources.load(tiny_curated)
    a = ep.make_episodes(data)
    b = ep.make_episodes(data, seed=1)
    assert piaa_protocol.fingerprint(data, a) != piaa_protocol.fingerprint(data, b)
    assert np.isfinite(a.loc[a["role"] == "support", "score"]).all()


def test_no_qualifying_rater_leaves_the_config_out_with_a_note(tiny_curated, tmp_path):
    data = sources.load(tiny_curated)
    extra = hub.ExtraConfig(name=layout.CONFIG_PIAA, split=layout.PIAA_SPLIT, table=ep.empty_episodes(),
                            note="no rater qualifies")
    res = hub.publish(data, tmp_path / "out", extra_configs=(extra,))
    assert any("'piaa' has no rows" in n for n in res.notes)
    assert not (tmp_path / "out" / "piaa").exists()
    hub.validate_card(tmp_path / "out")

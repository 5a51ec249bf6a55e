"""Synthetic provenance travels from the data into every result document and scorer message."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from aadb_toolkit import sources
from aadb_toolkit.protocols import score_submission
from aadb_toolkit.protocols.results import Result, comparable
from aadb_toolkit.submissions import SubmissionError


@pytest.fixture()
def synthetic_copy(tiny_curated, tmp_path):
    root = tmp_path / "syn"
    shutil.copytree(tiny_curated.parent, root)
    manifest = json.loads((root / "curated/manifest.json").read_text())
    (root / "curated/manifest.json").write_text(json.dumps({**manifest, "synthetic": True}))
    return root / "curated"


def _submission(data, path, extra_id=None):
    test = data.split("test")
    ids = list(test["image_id"]) + ([extra_id] if extra_id else [])
    pd.DataFrame({"image_id": ids, "score": np.arange(len(ids), dtype=float)}).to_csv(path, index=False)
    return path


def test_synthetic_data_gives_a_synthetic_result(tiny_curated, synthetic_copy, tmp_path):
    real = score_submission("aadb", _submission(sources.load(tiny_curated), tmp_path / "r.csv"), tiny_curated, n_boot=0)
    fake = score_submission("aadb", _submission(sources.load(synthetic_copy), tmp_path / "s.csv"), synthetic_copy,
                            n_boot=0)
    assert (real.dataset, real.synthetic) == ("aadb", False)
    assert (fake.dataset, fake.synthetic) == ("synthetic-aadb", True)
    doc = fake.to_dict()
    assert doc["data"]["synthetic"] is True and doc["data"]["dataset"] == "synthetic-aadb"
    back = Result.from_dict(json.loads(json.dumps(doc)))
    assert back.synthetic and back.dataset == "synthetic-aadb"
    assert real.data_fingerprint == fake.data_fingerprint  # same tables: only provenance tells them apart
    assert not comparable(real, fake)


def test_human_protocol_result_is_synthetic_too(synthetic_copy, tmp_path):
    r = score_submission("human", _submission(sources.load(synthetic_copy), tmp_path / "s.csv"), synthetic_copy,
                         n_boot=0)
    assert r.synthetic and r.dataset == "synthetic-aadb"


def test_scorer_messages_name_the_synthetic_split(synthetic_copy, tmp_path):
    sub = _submission(sources.load(synthetic_copy), tmp_path / "s.csv", extra_id="stranger.jpg")
    with pytest.raises(SubmissionError, match="not in the synthetic AADB test split"):
        score_submission("aadb", sub, synthetic_copy, n_boot=0)


def test_malformed_synthetic_flag_is_refused():
    from aadb_toolkit.errors import InputError
    from aadb_toolkit.protocols.results import Metric, make_result

    doc = make_result(protocol="aadb", protocol_version="1", main_metric="spearman",
                      metrics={"spearman": Metric(0.5)}, data_fingerprint="sha256:x", submission_sha256="sha256:y",
                      n_images=3, seed=0, n_boot=0).to_dict()
    doc["data"]["synthetic"] = "yes"
    with pytest.raises(InputError, match="synthetic"):
        Result.from_dict(doc)


@pytest.mark.parametrize("field,value,named", [
    ("synthetic_setting", {"setting": "planted_taste", "sha256": "nope", "overrides": {}}, "data.synthetic_setting"),
    ("synthetic", "yes" * 200, "data.synthetic must be true or false"),
    ("fingerprint", 12, "data.fingerprint must be a string"),
], ids=["setting", "flag", "fingerprint"])
def test_a_malformed_result_field_is_named_in_full_and_its_value_only_excerpted(field, value, named):
    """The message names the whole field (it was cut at 32 characters, inside the field name), and
    repeats a value from the file only as a short quoted excerpt."""
    from aadb_toolkit.errors import EXCERPT_CHARS, InputError
    from aadb_toolkit.protocols.results import Metric, make_result

    doc = make_result(protocol="aadb", protocol_version="1", main_metric="spearman",
                      metrics={"spearman": Metric(0.5)}, data_fingerprint="sha256:x", submission_sha256="sha256:y",
                      n_images=3, seed=0, n_boot=0).to_dict()
    doc["data"][field] = value
    with pytest.raises(InputError) as err:
        Result.from_dict(doc, file="r.json")
    assert named in str(err.value)
    if field == "synthetic_setting":
        assert "must be the sha256 of the setting's parameters" in str(err.value)
    assert "yes" * (EXCERPT_CHARS // 3 + 1) not in str(err.value)


def test_a_missing_result_field_is_named():
    from aadb_toolkit.errors import InputError
    from aadb_toolkit.protocols.results import Metric, make_result

    doc = make_result(protocol="aadb", protocol_version="1", main_metric="spearman",
                      metrics={"spearman": Metric(0.5)}, data_fingerprint="sha256:x", submission_sha256="sha256:y",
                      n_images=3, seed=0, n_boot=0).to_dict()
    del doc["settings"]
    with pytest.raises(InputError, match="missing field 'settings'"):
        Result.from_dict(doc, file="r.json")

"""The versioned result document."""

from __future__ import annotations

import json
import math

import pytest

from aadb_toolkit import __version__
from aadb_toolkit.errors import InputError
from aadb_toolkit.protocols.results import (RESULT_SCHEMA_VERSION, Metric, comparable, make_result, read_result,
                                            write_result)


def _result(**kw):
    base = dict(protocol="aadb", protocol_version="1", main_metric="spearman",
                metrics={"spearman": Metric(0.5, 0.4, 0.6, 0.95), "kendall": Metric(math.nan)},
                data_fingerprint="sha256:aa", submission_sha256="sha256:bb", n_images=10, seed=3, n_boot=100,
                details={"x": [1, 2]})
    base.update(kw)
    return make_result(**base)


def test_round_trip_and_fields(tmp_path):
    r = _result()
    path = write_result(tmp_path / "sub" / "r.json", r)
    doc = json.loads(path.read_text())
    assert doc["schema_version"] == RESULT_SCHEMA_VERSION and doc["format"] == "aadb-result"
    assert doc["protocol"] == {"name": "aadb", "version": "1", "main_metric": "spearman"}
    assert doc["toolkit_version"] == __version__
    assert doc["data"]["fingerprint"] == "sha256:aa" and doc["submission"]["sha256"] == "sha256:bb"
    assert doc["settings"] == {"seed": 3, "n_boot": 100}
    assert doc["metrics"]["kendall"] == {"value": None}  # NaN becomes null, never invalid JSON
    back = read_result(path)
    assert back.to_dict() == r.to_dict()
    assert back.main_value == 0.5


def test_unsupported_schema_and_garbage_are_clear_errors(tmp_path):
    doc = _result().to_dict()
    doc["schema_version"] = 99
    (tmp_path / "r.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match="schema_version '99' is not supported"):
        read_result(tmp_path / "r.json")
    (tmp_path / "g.json").write_text("{not json")
    with pytest.raises(InputError, match="cannot read result document"):
        read_result(tmp_path / "g.json")
    (tmp_path / "o.json").write_text('{"format": "something-else"}')
    with pytest.raises(InputError, match="not an aadb result document"):
        read_result(tmp_path / "o.json")


def test_comparable_needs_same_protocol_and_fingerprint():
    assert comparable(_result(), _result(submission_sha256="sha256:cc"))
    assert not comparable(_result(), _result(data_fingerprint="sha256:zz"))
    assert not comparable(_result(), _result(protocol="human"))


@pytest.mark.parametrize("field, value, why", [
    ("data.n_images", "1e999", "not a finite number"),  # JSON allows it; Python reads infinity
    ("settings.seed", "1e999", "not a finite number"),
    ("settings.n_boot", "-1e999", "not a finite number"),
    ("settings.seed", "2.5", "not a whole number"),
    ("settings.n_boot", "-1", "out of range"),
    ("data.n_images", "1e30", "out of range"),
    ("settings.seed", "1" + "0" * 400, "out of range"),
    ("settings.seed", '"12"', "must be a number"),
    ("settings.n_boot", "true", "must be a number"),
])
def test_counts_that_are_not_whole_numbers_in_range_are_malformed_documents(tmp_path, field, value, why):
    """``n_images``, ``seed`` and ``n_boot`` are checked integers: an infinite, fractional, negative,
    huge or non-numeric value is the malformed-document error naming the file and the field."""
    section, name = field.split(".")
    doc = _result().to_dict()
    doc[section][name] = "@@"
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc).replace('"@@"', value))
    with pytest.raises(InputError, match=f"malformed result document: {field} .*{why}") as err:
        read_result(path)
    assert str(path) in str(err.value)


def test_whole_number_floats_are_read_as_counts(tmp_path):
    doc = _result().to_dict()
    doc["settings"]["n_boot"] = 100.0
    (tmp_path / "r.json").write_text(json.dumps(doc))
    assert read_result(tmp_path / "r.json").n_boot == 100


@pytest.mark.parametrize("content, why", [(b"[" * 100_000, "nested too deeply"), (b"\xff", "not UTF-8"),
                                          (b"[]", "expected a JSON object"), (b"1" * 5000, "not JSON")],
                         ids=["deep", "not_utf8", "array", "long_number"])
def test_a_result_document_that_is_no_json_object_is_a_clear_error(tmp_path, content, why):
    """What ``aadb score --compare`` reads: deep nesting (RecursionError), bytes that are not UTF-8,
    another JSON value, a number too long to convert: each an InputError naming the file."""
    path = tmp_path / "r.json"
    path.write_bytes(content)
    with pytest.raises(InputError, match="cannot read result document") as exc:
        read_result(path)
    assert exc.value.file == str(path) and why in str(exc.value)

"""The one reader of a JSON object file: every bad file is an InputError naming it, none a traceback."""

from __future__ import annotations

import pytest

from aadb_toolkit._jsonfile import parse_json_object, read_json_object
from aadb_toolkit.errors import InputError


@pytest.mark.parametrize("content, why", [
    (b"[" * 100_000, "nested too deeply"),
    (b'{"a": ' * 100_000, "nested too deeply"),
    (b'{"a": "\xff"}', "not UTF-8 text (byte 0xff at offset 7)"),
    (b"{not json", "not JSON (Expecting property name"),
    (b"1" * 5000, "not JSON the toolkit reads"),
    (b"[]", "expected a JSON object, found an array"),
    (b'"x"', "expected a JSON object, found a string"),
    (b"null", "expected a JSON object, found null"),
    (b"3.5", "expected a JSON object, found a number"),
], ids=["deep_array", "deep_object", "not_utf8", "not_json", "long_number", "array", "string", "null", "number"])
def test_every_bad_file_is_an_input_error_naming_it(tmp_path, content, why):
    path = tmp_path / "doc.json"
    path.write_bytes(content)
    with pytest.raises(InputError) as exc:
        read_json_object(path, "the document")
    assert exc.value.file == str(path) and f"cannot read the document: {why}" in str(exc.value)


def test_a_missing_file_and_a_good_one(tmp_path):
    with pytest.raises(InputError, match="cannot read the document: No such file"):
        read_json_object(tmp_path / "none.json", "the document")
    (tmp_path / "ok.json").write_text('{"a": [1, {"b": null}]}', encoding="utf-8")
    assert read_json_object(tmp_path / "ok.json", "the document") == {"a": [1, {"b": None}]}
    assert parse_json_object(b'\xef\xbb\xbf{"a": 1}', file="m.json", what="x") == {"a": 1}  # bytes: BOM read


@pytest.mark.parametrize("content", [b"[" * 100_000, b"\xff", b"{not json", b"1" * 5000, b"[]", None],
                         ids=["deep", "not_utf8", "not_json", "long_number", "array", "missing"])
def test_json_object_or_none_is_none_where_the_reader_refuses(tmp_path, content):
    """The "none, not an error" form has the reader's one list of bad files (a RecursionError too)."""
    from aadb_toolkit._jsonfile import json_object_or_none

    path = tmp_path / "doc.json"
    if content is not None:
        path.write_bytes(content)
    assert json_object_or_none(path) is None
    path.write_text('{"a": 1}')
    assert json_object_or_none(path) == {"a": 1}

"""The one way a JSON object is read from a file the user hands over or may have edited (a manifest,
a sidecar, a result document, a summary): every way the file can be bad is an
:class:`~aadb_toolkit.errors.InputError` naming the file, never a traceback. Those ways are an
unreadable file, bytes that are not UTF-8, text that is not JSON (or a number too long for Python to
convert), nesting deeper than the JSON reader follows (its ``RecursionError``: ``"[" * 100000`` is
a 100 KB file), and a JSON value that is not an object. Where a bad file means "none" rather than an error (an output
marker, a file an output may replace), :func:`json_object_or_none` has the same list of ways.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .errors import InputError, excerpt

#: Why a file nested deeper than a recursive reader follows (json's, tomllib's) cannot be read.
TOO_DEEP = "nested too deeply (more arrays or objects inside each other than the reader follows)"


def read_json_object(path: str | os.PathLike[str], what: str) -> dict[str, Any]:
    """The JSON object in the UTF-8 file ``path``; ``what`` names the file in errors
    (``cannot read {what}: …``)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {what}: {exc.strerror or type(exc).__name__}", file=str(path)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"cannot read {what}: {_reason(exc)}", file=str(path)) from None
    return parse_json_object(text, file=str(path), what=what)


def json_object_or_none(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The JSON object in the file ``path``, or None where :func:`read_json_object` refuses it: for
    the checks whose answer to a bad file is "none" rather than an error (an output marker, a file
    an output may replace, a manifest's key fingerprint), with the reader's one list of the ways a
    file can be bad."""
    try:
        return read_json_object(path, "file")
    except InputError:
        return None


def parse_json_object(text: str | bytes, *, file: str, what: str) -> dict[str, Any]:
    """The JSON object in ``text`` (bytes as :func:`json.loads` decodes them) read from ``file``."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InputError(f"cannot read {what}: {_reason(exc)}", file=file) from None
    if not isinstance(doc, dict):
        raise InputError(f"cannot read {what}: expected a JSON object, found {_kind(doc)}", file=file)
    return doc


def _reason(exc: BaseException) -> str:
    """What is wrong with the file, in words (no byte of its content is repeated)."""
    if isinstance(exc, RecursionError):
        return TOO_DEEP
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
    if isinstance(exc, json.JSONDecodeError):
        return f"not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
    return f"not JSON the toolkit reads ({excerpt(exc)})"  # e.g. an integer of over 4,300 digits


def _kind(doc: object) -> str:
    """The JSON name of a parsed value's type, with its article."""
    if isinstance(doc, list):
        return "an array"
    if isinstance(doc, str):
        return "a string"
    if isinstance(doc, bool) or doc is None:
        return json.dumps(doc)
    return "a number"

"""Read and validate a benchmark submission (docs/protocols.md): a CSV with header ``image_id,score`` and one
row per image of the split. Every problem in the file is collected and reported at once, with the
row (line) number, so a submitter fixes everything in one round; nothing is scored when any is found.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ._keyguard import ONE_LINE_NOT_QUOTED, refuse_key_file
from .data import sha256_fingerprint
from .errors import InputError, quote

#: The exact header a submission starts with.
HEADER: tuple[str, str] = ("image_id", "score")
#: Default size limit, checked before the file is read (AVA's ~20,000-row test list needs < 1 MiB;
#: a 255,000-row file about 7 MiB).
DEFAULT_MAX_BYTES: int = 32 * 1024 * 1024
#: How many problems the error message lists (all are kept on the exception).
SHOWN_PROBLEMS: int = 25
#: Checking stops after this many problems: a file this wrong is not a submission for the split,
#: and a 32 MiB file of bad rows would otherwise take half a minute and gigabytes to list.
MAX_PROBLEMS: int = 1000


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a submission; ``row`` is the 1-based line number (header = 1)."""

    message: str
    row: int | None = None

    def __str__(self) -> str:
        return f"row {self.row}: {self.message}" if self.row is not None else self.message


class SubmissionError(InputError):
    """A submission failed validation; ``problems`` lists everything found, in file order."""

    def __init__(self, file: str, problems: Sequence[Problem], *, shown: int = SHOWN_PROBLEMS) -> None:
        self.problems = list(problems)
        in_rows = [p for p in self.problems if p.row is not None]
        general = [p for p in self.problems if p.row is None]  # about the whole file: always shown after the rows
        lines = [str(p) for p in in_rows[:shown]]
        if len(in_rows) > shown:
            lines.append(f"... and {len(in_rows) - shown} more problem(s) in rows")
        lines += [str(p) for p in general[:shown]]
        if len(general) > shown:
            lines.append(f"... and {len(general) - shown} more problem(s)")
        n = len(self.problems)
        msg = f"invalid submission, {n} problem{'s' if n != 1 else ''} (nothing was scored):\n  " + "\n  ".join(lines)
        super().__init__(msg, file=file)


@dataclass(frozen=True)
class Submission:
    """A validated submission: scores indexed by image_id in the split's order, and the file's hash."""

    path: Path | None  # None for predictions checked in memory
    scores: pd.Series
    sha256: str

    @property
    def n_images(self) -> int:
        """Number of scored images (equals the split size)."""
        return int(self.scores.size)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """``sha256:<hex>`` of a file's bytes."""
    with open(path, "rb") as f:
        return sha256_fingerprint(iter(lambda: f.read(1 << 20), b""))


#: First characters that make a spreadsheet program read a cell as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _wrong_split_problems(ids: list[str], expected: set[str], other_splits: Mapping[str, str] | None,
                          split_name: str) -> list[Problem]:
    """One summary problem per other split whose images the file lists (e.g. validation predictions)."""
    if not other_splits:
        return []
    counts: dict[str, int] = {}
    for image_id in set(ids) - expected:
        if image_id in other_splits:
            counts[other_splits[image_id]] = counts.get(other_splits[image_id], 0) + 1
    return [Problem(f"{n:,} of the unknown image ids are images of the {split} split: these look like {split} "
                    f"predictions, and this scores the {split_name} (write its predictions with "
                    "`aadb predict --split test`)") for split, n in sorted(counts.items())]


def _looks_like_path(image_id: str) -> bool:
    return "/" in image_id or "\\" in image_id or ".." in image_id


#: Leading bytes of files that are not text at all, and what to tell the submitter.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "file is gzip-compressed (a binary file); decompress it and submit the CSV itself"),
    (b"PK\x03\x04", "file is a ZIP archive or an .xlsx workbook (a binary file); submit a plain CSV"),
    (b"\x89PNG", "file is a PNG image (a binary file), not a CSV"),
    (b"%PDF", "file is a PDF document (a binary file), not a CSV"),
)


def _looks_like_utf16(data: bytes) -> bool:
    """UTF-16 without a byte-order mark: ASCII text leaves every other byte NUL."""
    head = data[:4096]
    half = len(head) // 2
    return half >= 4 and max(head[0::2].count(0), head[1::2].count(0)) >= 0.9 * half


def _decode(data: bytes, header: tuple[str, ...] = HEADER) -> tuple[str | None, Problem | None]:
    """UTF-8 text (a BOM is dropped), or the problem that prevents decoding."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or (b"\x00" in data[:4096] and _looks_like_utf16(data)):
        return None, Problem(f"file is UTF-16 encoded; save it as UTF-8 (a CSV with header {','.join(header)})")
    for magic, message in _MAGIC:
        if data.startswith(magic):
            return None, Problem(message)
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        return None, Problem(f"contains NUL bytes (first on line {line}): a binary file, not a CSV")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return None, Problem(f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}, "
                             f"line {line}); save the file as UTF-8", row=line)
    if text.startswith("\ufeff"):
        text = text[1:]
    if re.match(r"\s*<(!doctype\s+html|html|\?xml|head|body)\b", text[:1024], re.IGNORECASE):
        return None, Problem("file is an HTML/XML page (a saved error or download page?), not a CSV "
                             f"with header {','.join(header)}")
    return text, None


def _is_number_row(row: list[str], n_fields: int = 2) -> bool:
    if len(row) != n_fields:
        return False
    try:
        float(row[-1])
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class _Target:
    """What a submission is checked against: the split's keys, the header, and how messages name them."""

    expected: list[str]
    expected_set: set[str]
    header: tuple[str, ...]
    split_name: str
    unit: str
    other_splits: Mapping[str, str] | None
    other_layouts: Mapping[tuple[str, ...], str] | None = None

    @property
    def key_name(self) -> str:
        """The key column(s) as messages name them, e.g. ``image_id``."""
        return ",".join(self.header[:-1])


def read_submission(path: str | os.PathLike[str], expected_ids: Iterable[str], *,
                    max_bytes: int = DEFAULT_MAX_BYTES, split_name: str = "split",
                    header: tuple[str, ...] = HEADER, unit: str = "image",
                    other_splits: Mapping[str, str] | None = None,
                    other_layouts: Mapping[tuple[str, ...], str] | None = None) -> Submission:
    """Read a submission CSV and check it against the split's image ids; raise one
    :class:`SubmissionError` listing every problem (with row numbers) when anything is wrong.

    Other layouts reuse the same checks: ``header`` names the columns (all but the last form the
    row's key, matched against ``expected_ids`` joined with commas; the last is the score) and
    ``unit`` says what one row stands for in messages (e.g. the piaa protocol's query rows).
    ``other_splits`` (image_id → split name, for the data set's other images) lets an unknown id
    be named as another split's image, so predictions of the wrong split are told as such;
    ``other_layouts`` (header → what such a file is) names a file of another protocol's layout."""
    path = Path(path)
    target = _target(expected_ids, split_name, header, unit, other_splits, other_layouts)
    data = _read_bounded(path, max_bytes, target)
    refuse_key_file(path, field="submission", content=data)  # never parsed, let alone quoted
    return check_submission(data, str(path), target, path=path)


def _target(expected_ids: Iterable[str], split_name: str, header: tuple[str, ...], unit: str,
            other_splits: Mapping[str, str] | None,
            other_layouts: Mapping[tuple[str, ...], str] | None) -> "_Target":
    expected = [str(i) for i in expected_ids]
    target = _Target(expected, set(expected), tuple(header), split_name, unit, other_splits, other_layouts)
    if len(target.expected_set) != len(expected):
        raise ValueError("expected_ids contains duplicates")
    return target


def check_submission(data: bytes, name: str, target: "_Target", *, path: Path | None = None) -> Submission:
    """Check a submission's bytes against ``target`` (the one checker of files and of predictions
    in memory, so both get the same rules and the same messages); ``name`` names it in errors."""
    text = _decode_submission(name, data, target)
    problems: list[Problem] = []
    ids, score_text, line_of, stopped_at = _submission_rows(text, name, target, problems)
    values = pd.to_numeric(pd.Series(score_text, dtype=object), errors="coerce").to_numpy(dtype=float)
    first_row, stopped_at = _check_rows(ids, score_text, line_of, values, target, problems, stopped_at)
    problems += _coverage_problems(first_row, ids, stopped_at, target)
    if not problems:
        problems += _equal_scores_problems(values)
    if problems:
        problems.sort(key=lambda p: (p.row is None, p.row or 0))
        raise SubmissionError(name, problems)
    header = target.header
    scores = pd.Series(values, index=pd.Index(ids, name=target.key_name), name=header[-1]).reindex(target.expected)
    return Submission(path=path, scores=scores, sha256=sha256_fingerprint(data))


#: How in-memory predictions are named in messages (where a file's path would be).
IN_MEMORY_NAME: str = "<predictions in memory>"


def from_memory(predictions: "pd.DataFrame | pd.Series | np.ndarray | Sequence[float]", expected_ids: Iterable[str],
                *, split_name: str = "split", header: tuple[str, ...] = HEADER, unit: str = "image",
                other_splits: Mapping[str, str] | None = None,
                other_layouts: Mapping[tuple[str, ...], str] | None = None,
                name: str = IN_MEMORY_NAME) -> Submission:
    """Predictions in memory, checked exactly as a file: a DataFrame with the ``header`` columns
    (the key columns may be its index), a Series indexed by the key, or an array of scores in the
    order of ``expected_ids``. They are written out as :func:`write_predictions` would write them
    and that text goes through the file checker, so the rules, the messages, the parsed floats and
    the sha256 are those of the same predictions written to a file."""
    target = _target(expected_ids, split_name, header, unit, other_splits, other_layouts)
    frame = _as_frame(predictions, target, name)
    return check_submission(predictions_text(frame).encode("utf-8"), name, target)


def accept(predictions: "Submission | pd.DataFrame | pd.Series | np.ndarray", expected_ids: Iterable[str],
           **checks) -> Submission:
    """A :class:`Submission` as is (already checked; its keys must be ``expected_ids``), anything
    else through :func:`from_memory`. A path is refused: files are read by the one file adapter
    (:func:`aadb_toolkit.protocols.score_submission`)."""
    if isinstance(predictions, Submission):
        expected = [str(i) for i in expected_ids]
        if list(predictions.scores.index) != expected:
            raise InputError(f"the checked predictions cover other {checks.get('unit', 'image')}s than the "
                             f"{checks.get('split_name', 'split')}")
        return predictions
    if isinstance(predictions, (str, os.PathLike)):
        raise InputError(f"predictions must be in memory (a DataFrame, a Series or an array), got the path "
                         f"{str(predictions)!r}; score a file with score_submission or `aadb score`")
    return from_memory(predictions, expected_ids, **checks)


def _as_frame(predictions, target: "_Target", name: str) -> pd.DataFrame:
    """The predictions as a frame with the header's columns (or whatever columns they have, for the
    checker to name): an array is aligned with the expected keys, a Series' index is its key."""
    header = target.header
    if isinstance(predictions, pd.DataFrame):
        keys = [k for k in header[:-1] if k not in predictions.columns]
        if keys and list(predictions.index.names) == keys:
            return predictions.reset_index()
        return predictions
    if isinstance(predictions, pd.Series):
        if len(header) != 2:
            raise InputError(f"give these predictions as a DataFrame with columns {','.join(header)}", file=name)
        return pd.DataFrame({header[0]: predictions.index.astype(str), header[1]: predictions.to_numpy()})
    values = np.asarray(predictions)
    if values.ndim != 1 or values.shape[0] != len(target.expected):
        raise InputError(f"an array of predictions needs one score per {target.unit} of the {target.split_name}, "
                         f"in its order ({len(target.expected):,}), got shape {values.shape}", file=name)
    keys = [k.split(",") for k in target.expected] if len(header) > 2 else [[k] for k in target.expected]
    frame = pd.DataFrame(keys, columns=list(header[:-1]))
    frame[header[-1]] = values
    return frame


def _read_bounded(path: Path, max_bytes: int, target: _Target) -> bytes:
    """The file's bytes; a missing, special, oversized or empty file is refused before it is parsed."""
    n_expected, split_name, unit = len(target.expected), target.split_name, target.unit
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"cannot read submission: {exc.strerror or exc}", file=str(path)) from exc
    if not path.is_file():
        raise SubmissionError(str(path), [Problem("not a regular file")])
    if size > max_bytes:
        raise SubmissionError(str(path), [Problem(f"file is {size:,} bytes, over the limit of {max_bytes:,} bytes "
                                                  f"(the {split_name}, {n_expected:,} {unit}s, needs far less)")])
    with open(path, "rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise SubmissionError(str(path), [Problem(f"file grew over the limit of {max_bytes:,} bytes while read")])
    if not data.removeprefix(b"\xef\xbb\xbf").strip():  # a UTF-8 byte-order mark alone is empty too
        raise SubmissionError(str(path), [Problem(f"file is empty; expected header {','.join(target.header)} and "
                                                  f"one row per {unit} ({n_expected:,} rows)")])
    return data


def _decode_submission(path: str, data: bytes, target: _Target) -> str:
    """The file as text; refused when it does not decode or has far more lines than the split has rows."""
    text, problem = _decode(data, target.header)
    if text is None:
        raise SubmissionError(str(path), [problem or Problem("cannot decode the file")])
    n_lines = max(text.count("\n"), text.count("\r"))
    n_expected, split_name = len(target.expected), target.split_name
    if n_lines > 2 * n_expected + 1000:  # parsing and listing millions of bad rows helps no one
        raise SubmissionError(str(path), [Problem(f"file has {n_lines:,} lines, but the {split_name} has "
                                                  f"{n_expected:,} {target.unit}s (one row each): not a submission "
                                                  f"for the {split_name}")])
    return text


def _submission_rows(text: str, path: str, target: _Target, problems: list[Problem]
                     ) -> tuple[list[str], list[str], Sequence[int], int | None]:
    """(keys, score texts, line of each row, line where checking stopped or None) of the data rows;
    header and row-layout problems are appended to ``problems``. A missing header (the first line
    is data) is told, and that line is checked as a row."""
    header = target.header
    n_fields = len(header)
    simple = _split_simple_csv(text, n_fields)
    if simple is not None:
        file_header, ids, score_text = simple
        line_of: Sequence[int] = range(2, len(ids) + 2)
    else:
        rows, line_numbers = _csv_records(text, str(path))
        file_header = rows[0] if rows else []
    if tuple(file_header) != header:
        body = text.strip("\r\n")
        if "\n" not in body and "\r" not in body:  # one line: never quoted
            raise SubmissionError(str(path), [Problem(f"the file has one line, not the header "
                                                      f"{','.join(header)!r} ({ONE_LINE_NOT_QUOTED})", row=1)])
        problems.append(_header_problem(path, file_header, target))
        if _is_number_row(file_header, n_fields) and sorted(file_header) != sorted(header):
            # header missing: the first line is data; check it as such
            if simple is not None:
                ids, score_text = [",".join(file_header[:-1]), *ids], [file_header[-1], *score_text]
                line_of = range(1, len(ids) + 1)
            else:
                rows, line_numbers = [[]] + rows, [0] + line_numbers
    if simple is not None:
        return ids, score_text, line_of, None
    return _split_records(rows[1:], line_numbers[1:], header, problems)


def _csv_records(text: str, file: str) -> tuple[list[list[str]], list[int]]:
    """:func:`_parse_csv` without the blank lines at the very end (harmless; inside the file they are
    reported)."""
    rows, line_numbers = _parse_csv(text, file)
    while rows and (not rows[-1] or (len(rows[-1]) == 1 and not rows[-1][0].strip())):
        rows.pop()
        line_numbers.pop()
    return rows, line_numbers


def _header_problem(path: str, file_header: list[str], target: _Target) -> Problem:
    """The problem with a header that is not the expected one, with a hint at the likely cause; raised at
    once when the header shows every row has the wrong layout (the rows would only repeat it)."""
    expected_header = target.header
    shown = ",".join(file_header)
    if len(file_header) == len(expected_header) + 1 and file_header[0].strip() in ("", "Unnamed: 0") \
            and tuple(file_header[1:]) == expected_header:
        raise SubmissionError(path, [Problem("the leading unnamed column looks like a pandas index: write the file "
                                             "with df.to_csv(path, index=False)", row=1)])
    if target.other_layouts and tuple(file_header) in target.other_layouts:
        raise SubmissionError(path, [Problem(f"header is {shown!r}: {target.other_layouts[tuple(file_header)]}", row=1)])
    layout = ""
    if len(file_header) == 1 and any(sep in file_header[0] for sep in (";", "\t", "|")):
        hint = layout = " (fields must be separated by commas)"
    elif tuple(h.strip().lower() for h in file_header) == expected_header:
        hint = " (names are case- and space-sensitive)"
    elif sorted(h.strip().lower() for h in file_header) == sorted(expected_header):
        hint = layout = (f" (columns must be in the order {','.join(expected_header)}; swapped columns are "
                         "not accepted)")
    else:
        hint = ""
    problem = Problem(f"header is {quote(shown)}, expected exactly {','.join(expected_header)!r}{hint}",
                      row=1)
    if layout:
        raise SubmissionError(path, [Problem(problem.message + "; rows not checked", row=1)])
    return problem


def _split_records(rows: list[list[str]], line_numbers: list[int], header: tuple[str, ...],
                   problems: list[Problem]) -> tuple[list[str], list[str], list[int], int | None]:
    """(keys, score texts, lines, line where checking stopped or None) of the well-formed records;
    empty lines and wrong field counts are appended to ``problems``."""
    n_fields = len(header)
    ids: list[str] = []
    score_text: list[str] = []
    line_of: list[int] = []
    for row, line in zip(rows, line_numbers):
        if len(problems) >= MAX_PROBLEMS:
            return ids, score_text, line_of, line
        if not row or (len(row) == 1 and not row[0].strip()):
            problems.append(Problem("empty line", row=line))
        elif len(row) != n_fields:
            problems.append(Problem(f"expected {n_fields} fields ({','.join(header)}), found {len(row)}", row=line))
        else:
            ids.append(",".join(row[:-1]))
            score_text.append(row[-1])
            line_of.append(line)
    return ids, score_text, line_of, None


def _check_rows(ids: list[str], score_text: list[str], line_of: Sequence[int], values: np.ndarray,
                target: _Target, problems: list[Problem], stopped_at: int | None
                ) -> tuple[dict[str, int], int | None]:
    """Append each row's key and score problems to ``problems``; return the first line of each key and
    the line where checking stopped (None when every row was checked). A clean file skips the loop."""
    expected_set = target.expected_set
    clean = (bool(np.isfinite(values).all()) and len(set(ids)) == len(ids) and expected_set.issuperset(ids)
             and "" not in expected_set)
    if clean:
        return dict(zip(ids, line_of)), stopped_at
    first_row: dict[str, int] = {}
    for image_id, raw, v, line in zip(ids, score_text, values, line_of):
        if len(problems) >= MAX_PROBLEMS:
            stopped_at = line if stopped_at is None else min(stopped_at, line)
            break
        key_message = _key_problem(image_id, first_row, target)
        if key_message is not None:
            problems.append(Problem(key_message, row=line))
        if image_id and image_id not in first_row:
            first_row[image_id] = line
        score_message = _score_problem(raw, v, image_id)
        if score_message is not None:
            problems.append(Problem(score_message, row=line))
    return first_row, stopped_at


def _key_problem(image_id: str, first_row: Mapping[str, int], target: _Target) -> str | None:
    """What is wrong with a row's key (empty, a formula, a path, a repeat, not in the split), or None."""
    expected_set, key_name = target.expected_set, target.key_name
    if not image_id:
        return f"{key_name} is empty"
    if image_id not in expected_set and image_id[:1] in _FORMULA_START:
        return (f"{key_name} {quote(image_id)} starts with {quote(image_id[0])}: a spreadsheet formula, "
                "not an image id (rejected: it would run when the file is opened)")
    if image_id not in expected_set and _looks_like_path(image_id):
        return f"{key_name} {quote(image_id)} looks like a path; give the bare image id (no '/', '\\' or '..')"
    if image_id in first_row:
        return f"duplicated {key_name} {quote(image_id)} (first on row {first_row[image_id]})"
    if image_id not in expected_set:
        if image_id.strip() in expected_set:
            hint = " (surrounding spaces?)"
        elif image_id.endswith(".0") and image_id[:-2] in expected_set:
            hint = f" (the id {quote(image_id[:-2])} written as a float?)"
        elif target.other_splits and image_id in target.other_splits:
            hint = f" (an image of the {target.other_splits[image_id]} split)"
        else:
            hint = ""
        return f"unknown {key_name} {quote(image_id)}: not in the {target.split_name}{hint}"
    return None


def _score_problem(raw: str, value: float, image_id: str) -> str | None:
    """What is wrong with a row's score (NaN, empty, not a number, infinite), or None."""
    if math.isnan(value):
        if raw.strip().lower() in ("nan", "+nan", "-nan"):
            return f"score is NaN for {quote(image_id)}"
        if not raw.strip():
            return f"score is empty for {quote(image_id)}"
        return f"score {quote(raw)} is not a number"
    if math.isinf(value):
        return f"score {quote(raw)} is infinite"
    return None


def _coverage_problems(first_row: Mapping[str, int], ids: list[str], stopped_at: int | None,
                       target: _Target) -> list[Problem]:
    """Whole-file problems: checking stopped early, other splits' images listed, split images without a row."""
    split_name = target.split_name
    problems: list[Problem] = []
    if stopped_at is not None:
        problems.append(Problem(f"checking stopped at row {stopped_at} after {MAX_PROBLEMS:,} problems: is this a "
                                f"submission for the {split_name}?"))
        missing = []
    else:
        missing = [i for i in target.expected if i not in first_row]
    problems += _wrong_split_problems(ids, target.expected_set, target.other_splits, split_name)
    if missing:
        listed = ", ".join(repr(m) for m in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        problems.append(Problem(f"{len(missing):,} {target.unit}(s) of the {split_name} have no row: {listed}{more}"))
    return problems


def _equal_scores_problems(values: np.ndarray) -> list[Problem]:
    """A problem when every score is the same: no ranking can be read from the file."""
    finite = values[np.isfinite(values)]
    if finite.size and (finite == finite[0]).all():
        return [Problem(f"all {finite.size:,} scores are equal ({float(finite[0])!r}): the ranking is undefined")]
    return []


_SIMPLE_CSV = re.compile(r"[^,\n\"]*,[^,\n\"]*(?:\n[^,\n\"]*,[^,\n\"]*)*\n?")


def _split_simple_csv(text: str, n_fields: int = 2) -> tuple[list[str], list[str], list[str]] | None:
    """Fast path for the usual file (no quotes, no blank lines, no lone CR, exactly ``n_fields - 1``
    commas on every line): (header, keys, scores), a key being the fields before the score joined
    with commas. None when the file is not that simple."""
    body = text.replace("\r\n", "\n")
    if "\r" in body:
        return None
    if n_fields == 2:
        if not _SIMPLE_CSV.fullmatch(body):
            return None
    else:
        lines = body[:-1].split("\n") if body.endswith("\n") else body.split("\n")
        if '"' in body or any(line.count(",") != n_fields - 1 for line in lines):
            return None
    if body.endswith("\n"):
        body = body[:-1]
    if n_fields == 2:
        flat = body.replace("\n", ",").split(",")
        return flat[0:2], flat[2::2], flat[3::2]
    lines = body.split("\n")
    keys, scores = [], []
    for line in lines[1:]:
        key, _, score = line.rpartition(",")
        keys.append(key)
        scores.append(score)
    return lines[0].split(","), keys, scores


def _parse_csv(text: str, file: str) -> tuple[list[list[str]], list[int]]:
    """CSV records and the 1-based physical line on which each starts (quoted fields may span lines)."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[list[str]] = []
    lines: list[int] = []
    start = 1
    try:
        for row in reader:
            rows.append(row)
            lines.append(start)
            start = reader.line_num + 1
    except csv.Error as exc:
        raise SubmissionError(file, [Problem(f"not a parseable CSV: {exc}", row=reader.line_num)]) from exc
    return rows, lines


def is_submission_file(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` starts like a prediction file the toolkit writes (a header of key columns
    ending in ``score``: ``image_id,score`` or another protocol's layout), so writing predictions
    over it replaces predictions, never another file."""
    try:
        with open(path, "rb") as fh:
            first = fh.readline(256)
    except OSError:
        return False
    fields = first.removeprefix(b"\xef\xbb\xbf").strip().decode("utf-8", "replace").split(",")
    return len(fields) >= 2 and fields[-1] == HEADER[-1] and set(fields[:-1]) <= _KEY_COLUMNS


#: Columns that key a row of a prediction file, in any protocol's layout.
_KEY_COLUMNS = frozenset({"image_id", "attribute", "rater_id", "k", "episode"})


#: Suffix of the sidecar written beside a predictions CSV with the model's identity
#: (``preds.csv.model.json``); ``aadb score`` copies it into the result.
MODEL_SIDECAR_SUFFIX: str = ".model.json"
#: A sidecar is a few hundred bytes; anything over this is not one (checked before it is read).
MODEL_SIDECAR_MAX_BYTES: int = 16 * 1024


def is_model_sidecar(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` holds a model sidecar the toolkit wrote (small, a JSON object with a
    ``name`` and the ``predictions_sha256``), so writing predictions may replace it."""
    from ._atomic import small_json_object

    d = small_json_object(path, MODEL_SIDECAR_MAX_BYTES)
    return d is not None and "name" in d and "predictions_sha256" in d


def predictions_text(predictions: pd.DataFrame) -> str:
    """The one text form of predictions: CSV, header first, ``\\n`` line ends, no index, every
    float in its shortest round-trip form (read back, it is the same float64), NaN as ``nan``."""
    return predictions.to_csv(index=False, lineterminator="\n", na_rep="nan")


def write_predictions(predictions: pd.DataFrame | pd.Series, path: str | os.PathLike[str], *,
                      model: Mapping[str, object] | None = None) -> Path:
    """The toolkit's one writer of prediction files (any protocol's layout), atomically: a frame's
    columns as they are, or a Series of scores indexed by image_id as ``image_id,score``. With
    ``model`` (e.g. :func:`aadb_toolkit.models.predict.model_identity`) also the sidecar
    ``<path>.model.json`` that ``aadb score`` copies into the result, tied to these exact bytes.
    Non-finite scores are refused: a file of them could not be scored."""
    from ._atomic import check_output_file, json_text, write_texts

    frame = predictions if isinstance(predictions, pd.DataFrame) else pd.DataFrame(
        {HEADER[0]: predictions.index.astype(str), HEADER[1]: predictions.to_numpy(dtype=float)})
    scores = frame[frame.columns[-1]].to_numpy(dtype=float)
    if not np.isfinite(scores).all():
        raise ValueError(f"scores contain {int((~np.isfinite(scores)).sum())} non-finite values")
    text = predictions_text(frame)
    sidecar = None
    if model is not None:  # checked before the CSV is written: a refused sidecar leaves nothing half-written
        sidecar = check_output_file(Path(str(path) + MODEL_SIDECAR_SUFFIX), "model sidecar", is_model_sidecar)
    files = {path: text}
    if sidecar is not None:  # the predictions and the sidecar that names their bytes: both or neither
        files[sidecar] = json_text({**model, "predictions_sha256": sha256_fingerprint(text)})
    write_texts(files)
    return Path(path)

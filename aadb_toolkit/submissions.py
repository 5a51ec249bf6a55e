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

from .data import sha256_fingerprint
from .errors import InputError

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

    path: Path
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


def read_submission(path: str | os.PathLike[str], expected_ids: Iterable[str], *,
                    max_bytes: int = DEFAULT_MAX_BYTES, split_name: str = "split",
                    header: tuple[str, ...] = HEADER, unit: str = "image",
                    other_splits: Mapping[str, str] | None = None) -> Submission:
    """Read a submission CSV and check it against the split's image ids; raise one
    :class:`SubmissionError` listing every problem (with row numbers) when anything is wrong.

    Other layouts reuse the same checks: ``header`` names the columns (all but the last form the
    row's key, matched against ``expected_ids`` joined with commas; the last is the score) and
    ``unit`` says what one row stands for in messages (e.g. the piaa protocol's query rows).
    ``other_splits`` (image_id → split name, for the data set's other images) lets an unknown id
    be named as another split's image, so predictions of the wrong split are told as such."""
    path = Path(path)
    key_name = ",".join(header[:-1])
    n_fields = len(header)
    expected = [str(i) for i in expected_ids]
    expected_set = set(expected)
    if len(expected_set) != len(expected):
        raise ValueError("expected_ids contains duplicates")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"cannot read submission: {exc.strerror or exc}", file=str(path)) from exc
    if not path.is_file():
        raise SubmissionError(str(path), [Problem("not a regular file")])
    if size > max_bytes:
        raise SubmissionError(str(path), [Problem(f"file is {size:,} bytes, over the limit of {max_bytes:,} bytes "
                                                  f"(the {split_name}, {len(expected):,} {unit}s, needs far less)")])
    with open(path, "rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise SubmissionError(str(path), [Problem(f"file grew over the limit of {max_bytes:,} bytes while read")])
    if not data.strip():
        raise SubmissionError(str(path), [Problem(f"file is empty; expected header {','.join(header)} and one row "
                                                  f"per {unit} ({len(expected):,} rows)")])
    text, problem = _decode(data, header)
    if text is None:
        raise SubmissionError(str(path), [problem or Problem("cannot decode the file")])
    n_lines = max(text.count("\n"), text.count("\r"))
    if n_lines > 2 * len(expected) + 1000:  # parsing and listing millions of bad rows helps no one
        raise SubmissionError(str(path), [Problem(f"file has {n_lines:,} lines, but the {split_name} has "
                                                  f"{len(expected):,} {unit}s (one row each): not a submission "
                                                  f"for the {split_name}")])
    problems: list[Problem] = []
    simple = _split_simple_csv(text, n_fields)
    if simple is not None:
        file_header, ids, score_text = simple
        line_of = range(2, len(ids) + 2)
    else:
        rows, line_numbers = _parse_csv(text, str(path))
        while rows and (not rows[-1] or (len(rows[-1]) == 1 and not rows[-1][0].strip())):
            rows.pop()  # blank lines at the very end are harmless; inside the file they are reported
            line_numbers.pop()
        file_header = rows[0] if rows else []
    expected_header, header = header, file_header
    if tuple(header) != expected_header:
        shown = ",".join(header)
        layout = ""  # a header that shows every row has the wrong layout: the rows would only repeat it
        if len(header) == 1 and any(sep in header[0] for sep in (";", "\t", "|")):
            hint = layout = " (fields must be separated by commas)"
        elif tuple(h.strip().lower() for h in header) == expected_header:
            hint = " (names are case- and space-sensitive)"
        elif sorted(h.strip().lower() for h in header) == sorted(expected_header):
            hint = layout = (f" (columns must be in the order {','.join(expected_header)}; swapped columns are "
                             "not accepted)")
        else:
            hint = ""
        problems.append(Problem(f"header is {shown[:80]!r}, expected exactly {','.join(expected_header)!r}{hint}",
                                row=1))
        if layout:
            raise SubmissionError(str(path), [Problem(problems[-1].message + "; rows not checked", row=1)])
        if _is_number_row(header, n_fields) and sorted(header) != sorted(expected_header):
            # header missing: the first line is data; check it as such
            if simple is not None:
                ids, score_text = [",".join(header[:-1]), *ids], [header[-1], *score_text]
                line_of = range(1, len(ids) + 1)
            else:
                rows, line_numbers = [[]] + rows, [0] + line_numbers
    stopped_at = None
    if simple is None:
        ids, score_text, line_of = [], [], []
        for row, line in zip(rows[1:], line_numbers[1:]):
            if len(problems) >= MAX_PROBLEMS:
                stopped_at = line
                break
            if not row or (len(row) == 1 and not row[0].strip()):
                problems.append(Problem("empty line", row=line))
            elif len(row) != n_fields:
                problems.append(Problem(f"expected {n_fields} fields ({','.join(expected_header)}), found {len(row)}",
                                        row=line))
            else:
                ids.append(",".join(row[:-1]))
                score_text.append(row[-1])
                line_of.append(line)

    values = pd.to_numeric(pd.Series(score_text, dtype=object), errors="coerce").to_numpy(dtype=float)
    clean = (bool(np.isfinite(values).all()) and len(set(ids)) == len(ids) and expected_set.issuperset(ids)
             and "" not in expected_set)
    first_row: dict[str, int] = dict(zip(ids, line_of)) if clean else {}
    for k, (image_id, raw, line) in enumerate([] if clean else zip(ids, score_text, line_of)):
        if len(problems) >= MAX_PROBLEMS:
            stopped_at = line if stopped_at is None else min(stopped_at, line)
            break
        v = values[k]
        if not image_id:
            problems.append(Problem(f"{key_name} is empty", row=line))
        elif image_id not in expected_set and image_id[:1] in _FORMULA_START:
            problems.append(Problem(f"{key_name} {image_id[:80]!r} starts with {image_id[0]!r}: a spreadsheet formula, "
                                    "not an image id (rejected: it would run when the file is opened)", row=line))
        elif image_id not in expected_set and _looks_like_path(image_id):
            problems.append(Problem(f"{key_name} {image_id[:80]!r} looks like a path; give the bare image id "
                                    f"(no '/', '\\' or '..')", row=line))
        elif image_id in first_row:
            problems.append(Problem(f"duplicated {key_name} {image_id[:80]!r} (first on row {first_row[image_id]})",
                                    row=line))
        elif image_id not in expected_set:
            if image_id.strip() in expected_set:
                hint = " (surrounding spaces?)"
            elif image_id.endswith(".0") and image_id[:-2] in expected_set:
                hint = f" (the id {image_id[:-2]!r} written as a float?)"
            elif other_splits and image_id in other_splits:
                hint = f" (an image of the {other_splits[image_id]} split)"
            else:
                hint = ""
            problems.append(Problem(f"unknown {key_name} {image_id[:80]!r}: not in the {split_name}{hint}", row=line))
        if image_id and image_id not in first_row:
            first_row[image_id] = line
        if math.isnan(v):
            if raw.strip().lower() in ("nan", "+nan", "-nan"):
                problems.append(Problem(f"score is NaN for {image_id[:80]!r}", row=line))
            elif not raw.strip():
                problems.append(Problem(f"score is empty for {image_id[:80]!r}", row=line))
            else:
                problems.append(Problem(f"score {raw[:40]!r} is not a number", row=line))
        elif math.isinf(v):
            problems.append(Problem(f"score {raw[:40]!r} is infinite", row=line))
    if stopped_at is not None:
        problems.append(Problem(f"checking stopped at row {stopped_at} after {MAX_PROBLEMS:,} problems: is this a "
                                f"submission for the {split_name}?"))
        missing = []
    else:
        missing = [i for i in expected if i not in first_row]
    problems += _wrong_split_problems(ids, expected_set, other_splits, split_name)
    if missing:
        listed = ", ".join(repr(m) for m in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        problems.append(Problem(f"{len(missing):,} {unit}(s) of the {split_name} have no row: {listed}{more}"))
    if not problems:
        finite = values[np.isfinite(values)]
        if finite.size and (finite == finite[0]).all():
            problems.append(Problem(f"all {finite.size:,} scores are equal ({float(finite[0])!r}): the ranking is undefined"))
    if problems:
        problems.sort(key=lambda p: (p.row is None, p.row or 0))
        raise SubmissionError(str(path), problems)
    scores = pd.Series(values, index=pd.Index(ids, name=key_name), name=expected_header[-1]).reindex(expected)
    return Submission(path=path, scores=scores, sha256=sha256_fingerprint(data))


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


def write_submission(path: str | os.PathLike[str], scores: pd.Series) -> Path:
    """Write ``scores`` (indexed by image_id) as a submission CSV, atomically; returns the path."""
    from ._atomic import write_text

    if scores.isna().any() or not np.isfinite(scores.to_numpy(dtype=float)).all():
        raise ValueError(f"scores contain {int((~np.isfinite(scores.to_numpy(dtype=float))).sum())} non-finite values")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(HEADER)
    for image_id, s in zip(scores.index.astype(str), scores.to_numpy(dtype=float)):
        w.writerow((image_id, repr(float(s))))
    write_text(path, buf.getvalue())
    return Path(path)

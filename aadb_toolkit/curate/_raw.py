"""Reading and validating the raw AMT batch-results file ``AADB_AllinAll.csv`` (docs/curation.md, "Input: the release").

Row numbers: every location says ``row N`` where N counts the data rows of the CSV from 1, the
header not counted (so row N is on line N + 1 of the file when no quoted field spans lines).
All per-answer work is vectorised: the wide table (one row per assignment, 10 image slots) is
turned into a long one (one row per answer) with numpy, never row by row in Python.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import schema
from .._numbers import ANSWER_NUMBER
from .._registry import close_matches, did_you_mean
from ..errors import InputError, quote
from ._ledger import Ledger

#: The AMT columns curation needs (others, e.g. AcceptTime or WorkTimeInSeconds, are ignored).
REQUIRED_COLUMNS = ("HITId", "WorkerId", "AssignmentStatus", "SubmitTime")
IMAGE_URL_PREFIX = "Input.image_url"
DEFAULT_SCORE_STEM = "overallScore"
ROW_CONVENTION = "data rows counted from 1 after the header (row N is on file line N + 1)"
BAD_VALUE_POLICIES = ("error", "exclude")

_KEPT_STATUSES = {"approved", "submitted"}
_FLICKR = re.compile(r"^(?:https?:)?//(?:farm(?P<farm>\d+)\.static\.?flickr\.com|c\d+\.static\.?flickr\.com/"
                     r"(?P<cdn_farm>\d+))/(?P<server>[^/?#]+)/(?P<file>[^/?#]+)", re.IGNORECASE)
# A Flickr photo is identified by server, photo id and secret; the size suffix (_b, _z, none) and
# the host form (farm<k>., c<n>./<k>/, live.) vary between copies of the same URL.
_FLICKR_URL_PHOTO = re.compile(r"^(?:https?:)?//[^/?#]*static\.?flickr\.com/(?:\d+/)?(?P<server>\d+)/"
                               r"(?P<photo>\d+)_(?P<secret>[0-9a-f]+)(?:_[a-z0-9]{1,2})?\.[a-z]{3,4}(?:[?#].*)?$",
                               re.IGNORECASE)
_FLICKR_FILE_PHOTO = re.compile(r"^farm\d+_(?P<server>\d+)_(?P<photo>\d+)_(?P<secret>[0-9a-f]+)"
                                r"(?:_[a-z0-9]{1,2})?\.[a-z]{3,4}$", re.IGNORECASE)
_AMT_TIME = re.compile(r"^(?:[A-Za-z]{3},?\s+)?(?P<mon>[A-Za-z]{3})\s+(?P<day>\d{1,2})\s+(?P<h>\d{1,2}):(?P<m>\d{2})"
                       r":(?P<s>\d{2})\s+(?P<tz>[A-Za-z]{1,5})\s+(?P<year>\d{4})$")
_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                       "nov", "dec"), start=1)}
_TZ_HOURS = {"UTC": 0, "GMT": 0, "Z": 0, "PDT": -7, "PST": -8, "MDT": -6, "MST": -7, "CDT": -5, "CST": -6,
             "EDT": -4, "EST": -5, "AKDT": -8, "AKST": -9, "HST": -10, "BST": 1, "CET": 1, "CEST": 2}


@dataclass(frozen=True)
class AnswerColumns:
    """Where each answer lives in the CSV: ``<prefix><i>`` for image slot i."""

    score_prefix: str
    attribute_prefixes: dict[str, str]

    @classmethod
    def from_mapping(cls, mapping: dict[str, str] | None) -> "AnswerColumns":
        """Defaults (``Answer.overallScore<i>``, ``Answer.<schema stem><i>``) with user overrides
        keyed by attribute name or ``score``; a stem without a ``Prefix.`` gets ``Answer.``."""
        stems = {"score": DEFAULT_SCORE_STEM, **schema.AMT_ATTRIBUTE_ANSWER_STEMS}
        for name, stem in (mapping or {}).items():
            if name not in stems:
                hint = did_you_mean(name, stems)
                hint = f"; {hint}" if hint else ""
                raise InputError(f"unknown answer column name {quote(name)}: expected 'score' or one of "
                                 f"{', '.join(schema.ATTRIBUTES)}{hint}", field=name)
            if not stem or not str(stem).strip():
                raise InputError(f"empty answer column stem for {quote(name)}", field=name)
            stems[name] = str(stem).strip()
        full = {k: v if "." in v else f"Answer.{v}" for k, v in stems.items()}
        return cls(full["score"], {a: full[a] for a in schema.ATTRIBUTES})

    def as_dict(self) -> dict[str, str]:
        """The mapping as column patterns (for the manifest)."""
        return {"image_url": f"{IMAGE_URL_PREFIX}<i>", "score": f"{self.score_prefix}<i>",
                **{a: f"{p}<i>" for a, p in self.attribute_prefixes.items()}}


def read_results_csv(path: Path) -> pd.DataFrame:
    """Read the CSV as text (UTF-8 with or without BOM, LF, CRLF or CR, quoted fields), every cell a str."""
    name = str(path)
    if not path.is_file():
        raise InputError("raw batch-results file not found (expected it at the release root)", file=name)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror or exc}", file=name) from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        head = raw[: exc.start]  # lines end at LF, CRLF or a lone CR, as the reader below counts them
        line = head.count(b"\n") + head.count(b"\r") - head.count(b"\r\n") + 1
        raise InputError(f"not valid UTF-8 text: byte 0x{raw[exc.start]:02x} at offset {exc.start} "
                         f"(file line {line}); AMT batch results are UTF-8", file=name,
                         row=line - 1 if line > 1 else None) from exc
    if not text.strip():
        raise InputError("file is empty (expected an AMT batch-results CSV with a header)", file=name)
    _check_field_counts(text, name)  # first: pandas would warn, then drop or shift the extra fields
    try:
        # index_col=False: a first data row with one field too many would otherwise become the row
        # index, every column shifted left by one, and a whole release read as nothing
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False,
                         skipinitialspace=False, engine="c", index_col=False)
    except pd.errors.ParserError as exc:
        match = re.search(r"line (\d+)", str(exc))
        row = int(match.group(1)) - 1 if match else None
        raise InputError(f"malformed CSV: {exc}", file=name, row=row) from exc
    header = [str(c).strip() for c in df.columns]
    df.columns = header
    return df


def _check_field_counts(text: str, name: str) -> None:
    """The header line itself (pandas renames a repeated column "X" to "X.1") and every row's number
    of fields: pandas pads a short row with empty cells, which would read as blank answers, and
    the csv module's default field size limit must not stop a file pandas read. Lines end at LF,
    CRLF or a lone CR (classic Mac files), as pandas reads them: ``newline=""`` hands every ending
    to the csv module, which would otherwise stop at a CR with a ``csv.Error``."""
    limit = csv.field_size_limit()
    csv.field_size_limit(2 ** 31 - 1)
    try:
        # pandas skips blank and whitespace-only lines; so does this count of each row's fields.
        lines = io.StringIO(text, newline="")
        records = (r for r in csv.reader(lines) if len(r) > 1 or (r and r[0].strip()))
        raw_header = [c.strip() for c in next(records, [])]
        dupes = sorted(c for c, k in Counter(raw_header).items() if k > 1)
        if dupes:
            raise InputError(f"header repeats column(s) {dupes}", file=name, row=0, field=dupes[0])
        for row, record in enumerate(records, start=1):
            if len(record) > len(raw_header):
                raise InputError(f"malformed CSV: the row has {len(record)} fields, the header {len(raw_header)}",
                                 file=name, row=row)
            if len(record) < len(raw_header):
                raise InputError(f"malformed CSV: the row has {len(record)} fields, the header {len(raw_header)} "
                                 f"(missing from {quote(raw_header[len(record)])} on)", file=name, row=row,
                                 field=raw_header[len(record)])
    except csv.Error as exc:  # none is known once every line ending is read; still a named error, never a traceback
        raise InputError(f"malformed CSV: {exc}", file=name) from None
    finally:
        csv.field_size_limit(limit)


def find_slots(df: pd.DataFrame, cols: AnswerColumns, file: str) -> list[int]:
    """The image slots i of the CSV, after checking every required column is present."""
    header = list(df.columns)
    for col in REQUIRED_COLUMNS:
        if col not in header:
            raise _missing(col, header, file)
    slot_re = re.compile(rf"^(?:{re.escape(IMAGE_URL_PREFIX)}|{re.escape(cols.score_prefix)})(\d+)$")
    slots = sorted({int(m.group(1)) for c in header if (m := slot_re.match(c))})
    if not slots:
        raise _missing(f"{IMAGE_URL_PREFIX}1", header, file)
    for i in slots:
        for prefix in (IMAGE_URL_PREFIX, cols.score_prefix, *cols.attribute_prefixes.values()):
            if f"{prefix}{i}" not in header:
                raise _missing(f"{prefix}{i}", header, file)
    return slots


def _missing(col: str, header: list[str], file: str) -> InputError:
    close = close_matches(col, header, n=2)
    hint = f" (similar: {', '.join(close)}; map answer columns with --answer-column attr=Stem)" if close else ""
    return InputError(f"required column is missing from the header row{hint}", file=file, row=0, field=col)


def parse_submit_times(text: pd.Series) -> pd.Series:
    """AMT submit times ("Mon Jun 01 10:23:45 PDT 2015", or ISO 8601) as naive UTC timestamps; NaT
    where the text cannot be parsed (the caller reports those with their original text)."""
    uniques = pd.unique(text)
    parsed = {u: _parse_time(u) for u in uniques}
    out = text.map(parsed)
    return pd.to_datetime(out, errors="coerce").astype("datetime64[ns]")


def _parse_time(value: str) -> pd.Timestamp | None:
    value = value.strip()
    if not value:
        return None
    m = _AMT_TIME.match(value)
    if m:
        month = _MONTHS.get(m["mon"].lower())
        hours = _TZ_HOURS.get(m["tz"].upper())
        if month is None or hours is None:
            return None
        try:
            local = dt.datetime(int(m["year"]), month, int(m["day"]), int(m["h"]), int(m["m"]), int(m["s"]))
        except ValueError:
            return None
        return pd.Timestamp(local - dt.timedelta(hours=hours))
    if re.match(r"^\d{4}-\d{2}-\d{2}", value):
        try:
            ts = pd.Timestamp(value)
        except ValueError:
            return None
        return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts
    return None


def image_names(urls: pd.Series) -> pd.Series:
    """Release image names for Flickr static URLs (``farm<k>_<server>_<photo>_<secret>_b.jpg``); any
    other URL maps to its last path component."""
    uniques = pd.unique(urls)
    names = {}
    for u in uniques:
        m = _FLICKR.match(u)
        if m:
            names[u] = f"farm{m['farm'] or m['cdn_farm']}_{m['server']}_{m['file']}"
        else:
            names[u] = re.split(r"[?#]", u, maxsplit=1)[0].rstrip("/").rsplit("/", 1)[-1]
    return urls.map(names)


def match_url_variants(answers: pd.DataFrame, files: dict[str, str], file: str, ledger: Ledger) -> None:
    """Point usable answers whose image name is not a file of the release, but whose Flickr URL names
    a photo (server, id, secret) that exactly one release file holds in another size or host form,
    at that file; each such URL is reported (``url_variant``)."""
    live = (answers["reason"] == "kept") & ~answers["image_id"].isin(files.keys())
    if not live.any():
        return
    by_photo: dict[tuple[str, str, str], list[str]] = {}
    for name in files:
        m = _FLICKR_FILE_PHOTO.match(name)
        if m:
            by_photo.setdefault((m["server"], m["photo"], m["secret"].lower()), []).append(name)
    mapped = {}
    for url in pd.unique(answers.loc[live, "url"]):
        m = _FLICKR_URL_PHOTO.match(url)
        hits = by_photo.get((m["server"], m["photo"], m["secret"].lower()), []) if m else []
        if len(hits) == 1:
            mapped[url] = hits[0]
    if not mapped:
        return
    todo = live & answers["url"].isin(mapped.keys())
    answers.loc[todo, "image_id"] = answers.loc[todo, "url"].map(mapped)
    first = answers[todo].drop_duplicates("url")
    ledger.add_frame(pd.DataFrame({
        "row": first["row"].to_numpy(), "column": [f"{IMAGE_URL_PREFIX}{s}" for s in first["slot"]],
        "image_id": first["image_id"].to_numpy(), "value": first["url"].to_numpy(),
        "detail": [f"no file of this URL's name; the same Flickr photo (server, id, secret) is {n} "
                   f"({int(k)} answers)" for n, k in zip(first["image_id"],
                                                          answers[todo].groupby("url").size()[first["url"]])]}),
        "url", "flagged", file=file, reason="url_variant")
    # Two forms of one photo's URL in one assignment are the same image twice: keep the first slot,
    # whichever form it shows (so only in the assignments that hold a mapped form).
    exclude_repeated_images(answers, file, ledger, only=answers["row"].isin(answers.loc[todo, "row"]))


#: Why a HIT id or image URL holding a WorkerId is refused rather than redacted: it is published data.
_PUBLISHED_AS = {"HITId": "the HIT id (published as batch_id)",
                 IMAGE_URL_PREFIX: "the image URL (published as source_url, its file name as image_id)"}


def refuse_worker_ids_in_data(df: pd.DataFrame, slots: list[int], file: str, ledger: Ledger) -> None:
    """Refuse a HIT id or an image URL that contains a WorkerId of the file (``ledger.redact``):
    both are published, so redaction cannot help, and real AMT HIT ids and Flickr URLs never hold
    one (the release is corrupt or crafted). The error names the first such row and field, never the id."""
    found = []  # (row, column order, column)
    for k, col in enumerate(["HITId", *(f"{IMAGE_URL_PREFIX}{i}" for i in slots)]):
        texts = pd.unique(df[col])
        bad = {t for t in texts if ledger.contains_worker_id(t)}
        if bad:
            found.append((int(np.flatnonzero(df[col].isin(bad).to_numpy())[0]) + 1, k, col))
    if found:
        row, _, col = min(found)
        what = _PUBLISHED_AS["HITId" if col == "HITId" else IMAGE_URL_PREFIX]
        raise InputError(f"{what} contains a WorkerId of this file (not quoted); real AMT HIT ids and image URLs "
                         "never do, so the release is corrupt or crafted. Nothing was written.",
                         file=file, row=row, field=col)


def assignment_rows(df: pd.DataFrame, file: str, ledger: Ledger) -> pd.DataFrame:
    """Per-assignment status: blank HIT/worker, rejected and repeated (worker, HIT) submissions are
    excluded (the earliest submission of a repeat is kept) and recorded in ``ledger``."""
    n = len(df)
    rows = pd.DataFrame({
        "row": np.arange(1, n + 1),
        "hit_id": df["HITId"].str.strip(),
        "worker_id": df["WorkerId"].str.strip(),
        "status": df["AssignmentStatus"].str.strip(),
        "submit_text": df["SubmitTime"].str.strip(),
    })
    rows["submit_time"] = parse_submit_times(rows["submit_text"])
    rows["reason"] = ""
    # Batch-results files concatenated into one repeat the header line: such a row is not an assignment.
    repeated_header = np.ones(n, dtype=bool)
    for col in REQUIRED_COLUMNS:
        repeated_header &= (df[col].str.strip() == col).to_numpy()
    checks = [
        ("repeated_header", "HITId", repeated_header),
        ("blank_hit_id", "HITId", rows["hit_id"] == ""),
        ("blank_worker_id", "WorkerId", rows["worker_id"] == ""),
        ("rejected", "AssignmentStatus", rows["status"].str.lower() == "rejected"),
    ]
    for reason, column, mask in checks:
        mask = mask & (rows["reason"] == "")
        rows.loc[mask, "reason"] = reason
        ledger.add_frame(rows.loc[mask, ["row"]].assign(column=column, value=df.loc[mask, column].values),
                         "row", "excluded", file=file, reason=reason)
    # The same worker submitting the same HIT more than once: keep the earliest submission.
    live = rows[rows["reason"] == ""].copy()
    live["_t"] = live["submit_time"].fillna(pd.Timestamp.max)
    live = live.sort_values(["_t", "row"], kind="stable")
    dup = live.duplicated(["worker_id", "hit_id"], keep="first")
    if dup.any():
        first = live[~dup].set_index(["worker_id", "hit_id"])["row"]
        d = live[dup]
        kept_row = first.reindex(pd.MultiIndex.from_frame(d[["worker_id", "hit_id"]])).to_numpy()
        rows.loc[d.index, "reason"] = "duplicate_submission"
        ledger.add_frame(pd.DataFrame({
            "row": d["row"].to_numpy(), "column": "WorkerId",
            "detail": [f"same worker and HIT {quote(h)} as row {k} (kept: earliest SubmitTime, then first row)"
                       for h, k in zip(d["hit_id"], kept_row)],
        }), "row", "excluded", file=file, reason="duplicate_submission")
    unknown = (rows["reason"] == "") & ~rows["status"].str.lower().isin(_KEPT_STATUSES)
    ledger.add_frame(rows.loc[unknown, ["row"]].assign(column="AssignmentStatus",
                                                         value=rows.loc[unknown, "status"].values,
                                                         detail="status is neither Approved nor Submitted; kept"),
                     "row", "flagged", file=file, reason="unusual_status")
    bad_time = (rows["reason"] == "") & rows["submit_time"].isna()
    ledger.add_frame(rows.loc[bad_time, ["row"]].assign(column="SubmitTime",
                                                          value=rows.loc[bad_time, "submit_text"].values,
                                                          detail="unparseable submit time; submit_time left empty"),
                     "row", "flagged", file=file, reason="unparsed_submit_time")
    rows["kept"] = rows["reason"] == ""
    rows.loc[rows["kept"], "reason"] = "kept"
    return rows


def answer_cells(df: pd.DataFrame, rows: pd.DataFrame, slots: list[int], cols: AnswerColumns, file: str,
                 on_bad_value: str, ledger: Ledger, *, error_file: str | None = None) -> pd.DataFrame:
    """One row per (kept assignment, image slot) with parsed score and votes; ``reason`` is ``kept``,
    ``empty_slot`` or why the answer is excluded. Bad values raise :class:`InputError` unless
    ``on_bad_value == "exclude"``."""
    if on_bad_value not in BAD_VALUE_POLICIES:
        raise ValueError(f"on_bad_value must be one of {BAD_VALUE_POLICIES}, got {on_bad_value!r}")
    kept_idx = np.flatnonzero(rows["kept"].to_numpy())
    sub = df.iloc[kept_idx]
    out = _slot_frame(rows, kept_idx, slots)
    url, _ = _slot_cells(sub, slots, IMAGE_URL_PREFIX, file, ledger)
    score_text, score_num = _slot_cells(sub, slots, cols.score_prefix, file, ledger)
    vote_cells = {a: _slot_cells(sub, slots, p, file, ledger) for a, p in cols.attribute_prefixes.items()}
    vote_text = {a: text for a, (text, _) in vote_cells.items()}
    out["url"] = url
    reason, no_url = _blank_slot_reasons(url, score_text, vote_text)
    active = reason == "kept"
    blank_score, non_numeric, out_of_range = _score_masks(active, score_text, score_num)
    blank_votes = {a: active & (text == "") for a, text in vote_text.items()}
    bad_votes = {a: active & (text != "") & ~np.isin(vote_cells[a][1], schema.ATTRIBUTE_VOTES)
                 for a, text in vote_text.items()}

    if on_bad_value == "error":
        _raise_first_bad(out, score_text, non_numeric, out_of_range, vote_text, bad_votes, cols, error_file or file,
                         ledger)
    _exclude_bad_scores(out, reason, score_text, no_url, blank_score, non_numeric, out_of_range, cols, file, ledger)
    _exclude_invalid_votes(out, reason, bad_votes, vote_text, cols, file, ledger)
    kept = reason == "kept"
    for a in schema.ATTRIBUTES:
        out[a] = _vote_array(vote_cells[a][1])
    _report_votes(out, kept, blank_votes, "vote", "blank_vote", "vote left blank; excluded from this attribute's "
                  "mean, the rating is kept", cols, file, ledger)
    out["score"] = np.where(kept, np.nan_to_num(score_num), 0).astype(np.int8)
    out["image_id"] = image_names(pd.Series(url, dtype=object)).to_numpy(dtype=object)
    out["reason"] = reason
    exclude_repeated_images(out, file, ledger)
    return out


def _slot_frame(rows: pd.DataFrame, kept_idx: np.ndarray, slots: list[int]) -> pd.DataFrame:
    """The (row, slot) skeleton of the answers: one row per kept assignment and image slot, row-major,
    with the assignment's hit_id, worker_id and submit_time."""
    n_slots = len(slots)
    out = pd.DataFrame({
        "row": np.repeat(rows["row"].to_numpy()[kept_idx], n_slots),
        "slot": np.tile(np.asarray(slots), len(kept_idx)),
    })
    for c in ("hit_id", "worker_id", "submit_time"):
        out[c] = np.repeat(rows[c].to_numpy()[kept_idx], n_slots)
    return out


def _slot_cells(sub: pd.DataFrame, slots: list[int], prefix: str, file: str,
                ledger: Ledger) -> tuple[np.ndarray, np.ndarray]:
    """Stripped cell texts of ``<prefix><i>`` in (row, slot) order, and their numbers (NaN where not one).
    Work is done once per distinct value (answers have a handful), not once per cell."""
    n_sub, n_slots = len(sub), len(slots)
    # Row-major (row, slot) position → position in the slot-major concatenation of the columns.
    order = np.arange(n_sub * n_slots).reshape(n_slots, n_sub).T.ravel()
    series = pd.concat([sub[f"{prefix}{i}"] for i in slots], ignore_index=True)
    codes, uniques = pd.factorize(series, use_na_sentinel=False)
    texts = np.array([str(u).strip() for u in uniques], dtype=object)
    _report_spellings(prefix, texts, np.bincount(codes, minlength=len(texts)), file, ledger)
    if not len(texts):
        return np.zeros(0, dtype=object), np.zeros(0)
    numbers = np.array([_to_float(t) for t in texts], dtype=float)
    return texts[codes[order]], numbers[codes[order]]


def _blank_slot_reasons(url: np.ndarray, score_text: np.ndarray,
                        vote_text: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Each answer's first reason (``kept``, ``empty_slot`` when every cell is blank, ``blank_image_url``
    when answers are given without an image), and the mask of the latter."""
    reason = np.full(len(url), "kept", dtype=object)
    all_blank = (url == "") & (score_text == "")
    for t in vote_text.values():
        all_blank &= t == ""
    reason[all_blank] = "empty_slot"
    no_url = (url == "") & ~all_blank
    reason[no_url] = "blank_image_url"
    return reason, no_url


def _score_masks(active: np.ndarray, score_text: np.ndarray,
                 score_num: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Among ``active`` answers: (blank score, score not a number, score not an integer in range)."""
    blank_score = active & (score_text == "")
    non_numeric = active & (score_text != "") & ~np.isfinite(score_num)
    out_of_range = active & np.isfinite(score_num) & (
        (score_num != np.round(score_num)) | (score_num < schema.SCORE_MIN) | (score_num > schema.SCORE_MAX))
    return blank_score, non_numeric, out_of_range


def _exclude_bad_scores(out: pd.DataFrame, reason: np.ndarray, score_text: np.ndarray, no_url: np.ndarray,
                        blank_score: np.ndarray, non_numeric: np.ndarray, out_of_range: np.ndarray,
                        cols: AnswerColumns, file: str, ledger: Ledger) -> None:
    """Set ``reason`` (in place) of answers with a blank image URL or a blank or bad score still kept,
    and record them in the ledger, one frame per reason."""
    sc = lambda i: f"{cols.score_prefix}{i}"  # noqa: E731 - column name of a slot's score
    for mask, why, detail in (
        (no_url, "blank_image_url", "answers given but the image URL is blank"),
        (blank_score, "blank_score", "overall score left blank: not a rating, but the answer's valid attribute "
                                     "votes still count in the image's attribute means"),
        (non_numeric, "non_numeric_score", "score is not a number in ASCII digits (expected an integer "
                                            f"{schema.SCORE_MIN}–{schema.SCORE_MAX}; '1e0', '٣' are refused)"),
        (out_of_range, "score_out_of_range", f"score is not an integer {schema.SCORE_MIN}–{schema.SCORE_MAX}"),
    ):
        mask = mask & ((reason == "kept") | (reason == why))
        reason[mask] = why
        idx = np.flatnonzero(mask)
        column = [f"{IMAGE_URL_PREFIX}{s}" if why == "blank_image_url" else sc(s) for s in out["slot"].to_numpy()[idx]]
        ledger.add_frame(pd.DataFrame({"row": out["row"].to_numpy()[idx], "column": column,
                                       "value": score_text[idx], "detail": detail}),
                         "answer", "excluded", file=file, reason=why)


def _exclude_invalid_votes(out: pd.DataFrame, reason: np.ndarray, bad_votes: dict[str, np.ndarray],
                           vote_text: dict[str, np.ndarray], cols: AnswerColumns, file: str, ledger: Ledger) -> None:
    """An answer with an invalid attribute vote is excluded whole, like one with an invalid score
    (``reason`` is set in place and the ledger told)."""
    bad_any = np.zeros(len(out), dtype=bool)
    for m in bad_votes.values():
        bad_any |= m
    blank = reason == "blank_score"  # not a rating, but its valid votes count: an invalid one is left out
    bad_any &= reason == "kept"
    reason[bad_any] = "invalid_vote"
    _report_votes(out, bad_any, bad_votes, "answer", "invalid_vote",
                  "attribute vote is not -1, 0 or +1; the whole answer is excluded", cols, file, ledger, vote_text)
    _report_votes(out, blank, bad_votes, "vote", "invalid_vote",
                  "attribute vote is not -1, 0 or +1; left out of the image's attribute mean (the answer's overall "
                  "score is blank, so it is no rating)", cols, file, ledger, vote_text)


def _vote_array(numbers: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """Parsed votes as a nullable Int8 array: NA where the cell is not -1, 0 or +1."""
    v = numbers.copy()
    v[~np.isin(v, schema.ATTRIBUTE_VOTES)] = np.nan
    arr = pd.array(np.nan_to_num(v).astype(np.int8), dtype="Int8")
    arr[np.isnan(v)] = pd.NA
    return arr


def exclude_repeated_images(answers: pd.DataFrame, file: str, ledger: Ledger, *,
                            only: pd.Series | None = None) -> None:
    """The same image twice in one assignment (CSV row): keep its first kept slot, exclude and report
    the others (restricted to the answers where ``only`` is true, when given)."""
    live = answers[answers["reason"] == "kept"]
    dup = live.duplicated(["row", "image_id"], keep="first")
    if only is not None:
        dup &= only[live.index]
    if dup.any():
        d = live[dup]
        answers.loc[d.index, "reason"] = "duplicate_image_in_assignment"
        ledger.add_frame(pd.DataFrame({"row": d["row"].to_numpy(),
                                       "column": [f"{IMAGE_URL_PREFIX}{s}" for s in d["slot"]],
                                       "image_id": d["image_id"].to_numpy(),
                                       "detail": "image shown twice in one assignment; first slot kept"}),
                         "answer", "excluded", file=file, reason="duplicate_image_in_assignment")


#: Answer numbers follow the one number rule (:data:`aadb_toolkit._numbers.ANSWER_NUMBER`); accepted
#: integers written other than plainly ("5.0", "+1") are reported ("number_spelling").


def _to_float(text: str) -> float:
    """The integer an answer text spells under :data:`ANSWER_NUMBER`, or NaN."""
    return float(text) if ANSWER_NUMBER.fullmatch(text) else float("nan")


def _report_spellings(prefix: str, texts: np.ndarray, counts: np.ndarray, file: str, ledger: Ledger) -> None:
    """One report entry per accepted number written other than plainly ("5.0", "+1")."""
    for t, n in zip(texts, counts):
        if t and ANSWER_NUMBER.fullmatch(t) and float(t).is_integer() and t != str(int(float(t))):
            ledger.add("answer", "reported", "number_spelling", file=file, column=f"{prefix}<i>", value=t,
                       detail=f"{int(n)} answer(s) written {t!r}, read as {int(float(t))} (accepted: ASCII digits "
                              "with an optional sign and decimal part)")


def _report_votes(out: pd.DataFrame, kept: np.ndarray, masks: dict[str, np.ndarray], kind: str, reason: str,
                  detail: str, cols: AnswerColumns, file: str, ledger: Ledger,
                  texts: dict[str, np.ndarray] | None = None) -> None:
    """One entry per answer (among ``kept``) listing its blank (or invalid) vote columns."""
    any_mask = np.zeros(len(out), dtype=bool)
    for a in schema.ATTRIBUTES:
        any_mask |= masks[a] & kept
    slots = out["slot"].to_numpy()
    for i in np.flatnonzero(any_mask):
        attrs = [a for a in schema.ATTRIBUTES if masks[a][i]]
        value = None if texts is None else ";".join(str(texts[a][i]) for a in attrs)
        ledger.add(kind, "excluded", reason, file=file, row=int(out["row"].iat[i]),
                   column=";".join(f"{cols.attribute_prefixes[a]}{slots[i]}" for a in attrs),
                   value=value, detail=detail)


def _raise_first_bad(out: pd.DataFrame, score_text: np.ndarray, non_numeric: np.ndarray, out_of_range: np.ndarray,
                     vote_text: dict[str, np.ndarray], bad_votes: dict[str, np.ndarray], cols: AnswerColumns,
                     file: str, ledger: Ledger) -> None:
    """Raise an :class:`InputError` naming the first bad value (in row order), if there is one."""
    found = []  # (position, column order, column, value, what)
    for mask, what in ((non_numeric, "is not a number"), (out_of_range, "is out of range")):
        for i in np.flatnonzero(mask)[:1]:
            found.append((i, 0, f"{cols.score_prefix}{out['slot'].iat[i]}", score_text[i],
                          f"score {{value!r}} {what} (expected an integer {schema.SCORE_MIN}–{schema.SCORE_MAX})"))
    for k, a in enumerate(schema.ATTRIBUTES, start=1):
        for i in np.flatnonzero(bad_votes[a])[:1]:
            found.append((i, k, f"{cols.attribute_prefixes[a]}{out['slot'].iat[i]}", vote_text[a][i],
                          "attribute vote {value!r} is not -1, 0 or +1"))
    if not found:
        return
    total = int(non_numeric.sum() + out_of_range.sum() + sum(m.sum() for m in bad_votes.values()))
    i, _, column, value, what = min(found, key=lambda f: (f[0], f[1]))
    more = f"; {total - 1} more bad value(s) in the file" if total > 1 else ""
    raise InputError(f"{what.format(value=ledger.safe_value(value))} ({ROW_CONVENTION}){more}. Nothing was written. To exclude "
                     "such answers and list them in the curation report instead, use --on-bad-value exclude "
                     "(curate(..., on_bad_value='exclude')).",
                     file=file, row=int(out["row"].iat[i]), field=column)

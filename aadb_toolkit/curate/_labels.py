"""The release's label files (``imgListFiles_label/``): the official split, and the per-image
means they publish, cross-checked against the means recomputed from the raw ratings.

Label files have no header: ``row N`` is line N of the file. A value printed with d decimals is
compared with tolerance max(1e-3, half a unit of its last decimal), since the real files round.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import schema
from .._numbers import LABEL_NUMBER
from .._paths import inside
from ..errors import InputError, excerpt
from ._ledger import Ledger

FIELDS = (schema.SCORE_LABEL_FIELD, *schema.ATTRIBUTES)
BASE_TOLERANCE = 1e-3
_RANGES = {schema.SCORE_LABEL_FIELD: (0.0, 1.0), **{a: (-1.0, 1.0) for a in schema.ATTRIBUTES}}


@dataclass
class Labels:
    """All label values read: one row per (file, line) with image_id, split, field, value, tol, file, row."""

    values: pd.DataFrame
    present: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    test_list: str = schema.DEFAULT_TEST_LIST

    @property
    def score_splits(self) -> list[str]:
        """Splits whose score file is present (these define the official split)."""
        return [s for s in schema.SPLITS if _rel(s, schema.SCORE_LABEL_FIELD, self.test_list) in self.present]


def _rel(split: str, fld: str, test_list: str) -> str:
    return f"{schema.RELEASE_LABEL_DIR}/{schema.label_file_name(split, fld, test_list)}"


def read_labels(release: Path, *, strict: bool, ledger: Ledger,
                test_list: str = schema.DEFAULT_TEST_LIST) -> Labels | None:
    """Read every official label file present, the test split's from ``test_list`` (None when the
    release has no label folder). Asking for a test list the release lacks while it has the other
    is an error, so that no one curates an empty test split by mistake."""
    folder = release / schema.RELEASE_LABEL_DIR
    if not folder.is_dir():
        return None
    _check_test_list(release, test_list)
    frames, present, missing = [], [], []
    for split in schema.SPLITS:
        for fld in FIELDS:
            rel = _rel(split, fld, test_list)
            path = release / rel
            if not path.is_file():
                missing.append(rel)
                continue
            if not inside(release, path):
                if strict:
                    raise InputError("is a symbolic link to a file outside the release; the toolkit reads "
                                     "nothing outside the release folder", file=rel)
                ledger.add("label_file", "excluded", "link_outside_release", file=rel,
                           detail="symbolic link to a file outside the release; not read")
                continue
            present.append(rel)
            frames.append(_read_one(path, rel, split, fld, strict=strict, ledger=ledger))
    _report_other_test_list(release, test_list, ledger)
    values = pd.concat(frames, ignore_index=True) if frames else _label_frame("", "", "")
    # One value per (image, field): the same image listed twice keeps its first line (split order).
    dup = values.duplicated(["image_id", "field"], keep="first")
    for r in values[dup].itertuples(index=False):
        first = values[(values["image_id"] == r.image_id) & (values["field"] == r.field)].iloc[0]
        reason = "label_in_several_splits" if first["split"] != r.split else "duplicate_label"
        ledger.add("label", "excluded", reason, file=r.file, row=r.row, column=r.field, image_id=r.image_id,
                   value=r.value, detail=f"already listed in {first['file']} row {first['row']}; first kept")
    return Labels(values[~dup].reset_index(drop=True), present, missing, test_list)


def _report_other_test_list(release: Path, test_list: str, ledger: Ledger) -> None:
    """The files of the test list not chosen are read by no one: say so, file by file."""
    for other in schema.TEST_LISTS:
        for fld in FIELDS if other != test_list else ():
            rel = _rel("test", fld, other)
            if (release / rel).is_file():
                ledger.add("label_file", "ignored", "other_test_list", file=rel,
                           detail=f"the test split comes from the {test_list} list (--test-list {other} to use this one)")


def _check_test_list(release: Path, test_list: str) -> None:
    if test_list not in schema.TEST_LISTS:
        raise InputError(f"unknown test list {test_list!r}; expected one of {', '.join(schema.TEST_LISTS)}",
                         field="test_list")
    wanted = _rel("test", schema.SCORE_LABEL_FIELD, test_list)
    others = [t for t in schema.TEST_LISTS
              if t != test_list and (release / _rel("test", schema.SCORE_LABEL_FIELD, t)).is_file()]
    if not (release / wanted).is_file() and others:
        raise InputError(f"no {Path(wanted).name} here, but the release has the {others[0]} test list: choose it "
                         f"with --test-list {others[0]} (see docs/curation.md, \"Test lists\")",
                         file=str(release / schema.RELEASE_LABEL_DIR))


def _read_one(path: Path, rel: str, split: str, fld: str, *, strict: bool, ledger: Ledger) -> pd.DataFrame:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        if strict:
            raise InputError(f"cannot read label file: {exc}", file=rel) from exc
        ledger.add("label_file", "excluded", "unreadable_label_file", file=rel, detail=excerpt(exc, 120))
        return _label_frame(rel, split, fld)
    names, values, tols, rows = [], [], [], []
    lo, hi = _RANGES[fld]
    for n, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        parts = line.rsplit(None, 1)
        value = _number(parts[1]) if len(parts) == 2 else None
        if value is None:
            if strict:
                raise InputError(f"expected '<image name> <number>', got {excerpt(line)!r}", file=rel, row=n,
                                 field="value")
            ledger.add("label", "excluded", "malformed_label_line", file=rel, row=n, value=line,
                       detail="expected '<image name> <number>'")
            continue
        if not lo <= value <= hi:
            ledger.add("label", "flagged", "label_out_of_range", file=rel, row=n, column=fld, image_id=parts[0],
                       value=parts[1], detail=f"outside [{lo:g}, {hi:g}]")
        decimals = len(parts[1].split(".", 1)[1]) if "." in parts[1] and "e" not in parts[1].lower() else 6
        names.append(re.split(r"[\\/]", parts[0])[-1])  # a name written with a folder prefix
        values.append(value)
        tols.append(max(BASE_TOLERANCE, 0.5 * 10.0 ** -decimals + 1e-9))
        rows.append(n)
    return _label_frame(rel, split, fld, names, values, tols, rows)


def _label_frame(rel: str, split: str, fld: str, names=(), values=(), tols=(), rows=()) -> pd.DataFrame:
    """The label values of one file (:class:`Labels`), typed whatever their number: a file with no
    value line gave untyped columns, which made every ``row`` of the concatenated files a float
    (the report's "row 1.0")."""
    return pd.DataFrame({"image_id": pd.Series(list(names), dtype=str), "split": split, "field": fld,
                         "value": np.asarray(values, dtype=np.float64), "tol": np.asarray(tols, dtype=np.float64),
                         "file": rel, "row": np.asarray(rows, dtype=np.int64)})


def _number(text: str) -> float | None:
    """The value a label text spells under :data:`LABEL_NUMBER`, or None (not a finite number)."""
    if not LABEL_NUMBER.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def cross_check(labels: Labels, images: pd.DataFrame, *, strict: bool, ledger: Ledger) -> set[str]:
    """Compare label values with the recomputed means (score on the [0, 1] scale); report each
    disagreement with both values and return the ids of images that disagree."""
    if labels.values.empty or images.empty:
        return set()
    computed = images.set_index("image_id")
    merged = labels.values[labels.values["image_id"].isin(computed.index)].copy()
    ours = np.full(len(merged), np.nan)
    for fld in FIELDS:
        m = (merged["field"] == fld).to_numpy()
        col = "score" if fld == schema.SCORE_LABEL_FIELD else fld
        ours[m] = computed[col].astype(float).reindex(merged.loc[m, "image_id"]).to_numpy()
    merged["ours"] = ours
    n = computed["n_ratings"].reindex(merged["image_id"]).to_numpy()
    unverifiable = np.isnan(ours)
    bad = ~unverifiable & (np.abs(merged["value"].to_numpy() - ours) > merged["tol"].to_numpy())
    if strict and bad.any():
        r = merged[bad].iloc[0]
        raise InputError(f"label {r['value']:.6g} disagrees with the mean of the raw ratings "
                         f"{r['ours']:.6g} for image {r['image_id']}", file=r["file"], row=int(r["row"]),
                         field=r["field"])
    for r, k in zip(merged[bad].itertuples(index=False), n[bad]):
        ledger.add("label", "flagged", "label_disagrees", file=r.file, row=r.row, column=r.field, image_id=r.image_id,
                   value=f"{r.value:.6g}", detail=f"label {r.value:.6g} vs ratings {r.ours:.6g} "
                                                   f"(mean of {int(k)} kept ratings; tolerance {r.tol:.2g})")
    for r in merged[unverifiable].itertuples(index=False):
        ledger.add("label", "flagged", "label_unverifiable", file=r.file, row=r.row, column=r.field,
                   image_id=r.image_id, value=f"{r.value:.6g}", detail="no kept votes for this attribute")
    return set(merged.loc[bad, "image_id"])


def official_split(labels: Labels) -> pd.Series:
    """image_id → split, from the score label files (the first split listing an image wins)."""
    score = labels.values[labels.values["field"] == schema.SCORE_LABEL_FIELD]
    return pd.Series(score["split"].to_numpy(), index=score["image_id"].to_numpy(), dtype=object)

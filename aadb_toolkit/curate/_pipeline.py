"""Curation of a raw AADB release into the canonical curated folder (docs/curation.md)."""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__, schema
from .._atomic import atomic_dir, check_output_folder
from .._keyguard import refuse_copies_of_key, refuse_key_text, refuse_links_to_key
from .._paths import inside
from ..data import sha256_fingerprint
from ..errors import InputError, OutputError
from . import _images, _labels, _raw, _report, _splits
from ._anonymize import RaterKey, rater_ids, resolve_key
from ._ledger import Ledger
from ._synthetic import synthetic_setting

log = logging.getLogger(__name__)
#: Output-marker kind of a curated folder (see :mod:`aadb_toolkit._atomic`).
CURATED_KIND = "curated"


@dataclass
class CurationResult:
    """What :func:`curate` wrote, with its headline counts and the full report."""

    out: Path
    n_images: int
    n_ratings: int
    n_batches: int
    n_raters: int
    splits: dict[str, int]
    split_method: str
    key_source: str
    key_created: bool
    key_fingerprint: str
    report: dict = field(repr=False)

    def summary(self) -> str:
        """A few lines for the terminal."""
        f = Counter()
        for e in self.report["findings"]:
            f[e["action"]] += e["count"]
        splits = " / ".join(f"{k} {v}" for k, v in self.splits.items())
        return (f"curated {self.n_images} images, {self.n_ratings} ratings, {self.n_batches} batches, "
                f"{self.n_raters} raters → {self.out}\n"
                f"split ({self.split_method}{_test_list_note(self.report)}): {splits}\n"
                f"findings: {f['excluded']} excluded, {f['flagged']} flagged, {f['reported']} reported, "
                f"{f['ignored']} ignored (see {self.out / _report.REPORT_MD})\n"
                f"rater key: {self.key_source}{' (created now)' if self.key_created else ''}, "
                f"fingerprint {self.key_fingerprint}")


def curate(release: Path | str, out: Path | str, *, key: bytes | None = None, key_file: Path | str | None = None,
           answer_columns: dict[str, str] | None = None, workers: int | None = None, strict_labels: bool = False,
           on_bad_value: str = "error", progress: bool | None = None,
           test_list: str = schema.DEFAULT_TEST_LIST, allow_insecure_key: bool = False) -> CurationResult:
    """Read, validate and anonymize a raw AADB release and write the curated folder ``out``
    (tables, manifest, report), all or nothing: on any error no partial output is left and an
    older ``out`` is untouched. ``on_bad_value="exclude"`` excludes and reports bad answers
    instead of stopping at the first one. ``test_list`` chooses the label list that defines
    ``test`` when the release has label files (``"TestNew"``, the paper's, or the older ``"Test"``).
    The key file must lie outside ``release`` and ``out`` and be private to its owner
    (``allow_insecure_key`` downgrades the second to a warning)."""
    release = Path(release).expanduser().resolve()
    out = Path(out).expanduser().absolute()
    _check_arguments(release, out, on_bad_value)
    for name, stem in (answer_columns or {}).items():  # neither side of ATTR=STEM may be the key
        refuse_key_text(str(name), field="--answer-column", key_file=key_file)
        refuse_key_text(str(stem), field=f"--answer-column {name}", key_file=key_file)
    if key is None:  # a hard link to the key among the inputs, or a copy of it, is the key under another name
        inputs = _release_inputs(release)
        refuse_links_to_key(inputs, key_file)
        # links are the release rule's (one leading out is never read); the text files are read line by line
        refuse_copies_of_key([f for f in inputs if f.suffix.lower() in (".csv", ".txt") and not f.is_symlink()],
                             key_file)
    cols = _raw.AnswerColumns.from_mapping(answer_columns)
    ledger = Ledger()
    csv_rel = schema.RELEASE_RAW_RESULTS
    csv_path = release / csv_rel
    rows, answers, slots = _read_answers(release, csv_path, csv_rel, cols, on_bad_value, ledger)
    # after the CSV checks: a run that fails on bad input creates no key
    setting = synthetic_setting(release)
    rkey = resolve_key(key, key_file, forbidden=(release, out), allow_insecure=allow_insecure_key)
    files, missing, checks, corrupt = _check_image_files(release, answers, csv_rel, ledger, workers, progress)

    ratings = _ratings_table(answers, rkey)
    _report_batch_sizes(ratings, answers, csv_rel, ledger)
    images = _images_table(ratings, answers, checks, files)
    _report_unrated_images(images, answers, files, corrupt, ledger)
    images, split_info = _assign_splits(release, images, answers, set(files), strict_labels, ledger, test_list)
    _report_image_flags(images, ledger)

    report = _build_report(release, csv_rel, rkey, cols, on_bad_value, strict_labels, rows, answers, slots,
                           files, missing, corrupt, images, ratings, split_info, ledger)
    manifest = _manifest(release, csv_path, rkey, cols, images, ratings, split_info)
    if setting is not None:  # a simulated release: say so, and which setting of the generator drew it
        manifest.update(synthetic=True, synthetic_setting=setting)
    _write_curated(out, release, images, ratings, manifest, report)
    result = CurationResult(out=out, n_images=len(images), n_ratings=len(ratings),
                            n_batches=int(ratings["batch_id"].nunique()), n_raters=int(ratings["rater_id"].nunique()),
                            splits=report["summary"]["splits"], split_method=split_info["method"],
                            key_source=rkey.source, key_created=rkey.created, key_fingerprint=rkey.fingerprint,
                            report=report)
    log.debug("curated %d images and %d ratings into %s", result.n_images, result.n_ratings, out)  # the CLI says it
    return result


def _release_inputs(release: Path) -> list[Path]:
    """Every file curation may read: the raw results CSV, the label files and the image files."""
    files = [release / schema.RELEASE_RAW_RESULTS]
    for folder in (schema.RELEASE_LABEL_DIR, *_images.IMAGE_DIRS):
        if (release / folder).is_dir() and inside(release, release / folder):
            files += [Path(e.path) for e in os.scandir(release / folder)]
    return files


def _check_arguments(release: Path, out: Path, on_bad_value: str) -> None:
    """Refuse a missing release, an output folder that overlaps it or is not ours, and an unknown policy."""
    if not release.is_dir():
        raise InputError("release folder not found", file=str(release))
    _check_out(release, out)
    if on_bad_value not in _raw.BAD_VALUE_POLICIES:
        raise InputError(f"on_bad_value must be one of {', '.join(_raw.BAD_VALUE_POLICIES)}", field="on_bad_value")


def _read_answers(release: Path, csv_path: Path, csv_rel: str, cols: _raw.AnswerColumns, on_bad_value: str,
                  ledger: Ledger) -> tuple[pd.DataFrame, pd.DataFrame, list[int]]:
    """Read and check the raw results CSV: its assignment rows, one row per answer slot, and the slots."""
    if csv_path.exists() and not inside(release, csv_path):
        raise InputError("is a symbolic link to a file outside the release; the toolkit reads nothing outside "
                         "the release folder", file=str(csv_path))
    df = _raw.read_results_csv(csv_path)
    slots = _raw.find_slots(df, cols, str(csv_path))
    ledger.redact = {w for w in df["WorkerId"].str.strip().unique() if w and w != "WorkerId"}
    _raw.refuse_worker_ids_in_data(df, slots, str(csv_path), ledger)
    rows = _raw.assignment_rows(df, csv_rel, ledger)
    answers = _raw.answer_cells(df, rows, slots, cols, csv_rel, on_bad_value, ledger, error_file=str(csv_path))
    return rows, answers, slots


def _check_image_files(release: Path, answers: pd.DataFrame, csv_rel: str, ledger: Ledger, workers: int | None,
                       progress: bool | None) -> tuple[dict[str, str], list[str], pd.DataFrame, pd.DataFrame]:
    """List and decode the referenced image files; exclude the answers of missing or corrupt ones.
    Returns the files, the missing names, the image checks and the corrupt images with their errors."""
    files, ignored = _images.list_image_files(release)
    _refuse_worker_ids_in_names(release, files, ledger)
    for rel, why in ignored:
        ledger.add("file", "ignored", why.split(" ")[0], file=rel, detail=why)
    _raw.match_url_variants(answers, files, csv_rel, ledger)
    live = answers["reason"] == "kept"
    referenced = sorted(set(answers.loc[live, "image_id"]))
    missing = [n for n in referenced if n not in files]
    checks = _images.check_images(release, {n: files[n] for n in referenced if n in files},
                                   workers=workers, progress=progress)
    corrupt = checks.loc[~checks["ok"], ["image_id", "error"]]
    _exclude_answers(answers, set(missing), "image_missing", "image file not found in the release", ledger, csv_rel)
    _exclude_answers(answers, set(corrupt["image_id"]), "image_corrupt", "image file cannot be decoded", ledger,
                     csv_rel)
    n_refs = answers.loc[answers["reason"].isin(["image_missing", "image_corrupt"])].groupby("image_id").size()
    for name in missing:
        ledger.add("image", "excluded", "missing_file", file=f"{schema.RELEASE_IMAGE_DIR}/{name}", image_id=name,
                   detail=f"referenced by {int(n_refs.get(name, 0))} answers; their ratings are excluded")
    for r in corrupt.itertuples(index=False):
        ledger.add("image", "excluded", "corrupt_file", file=files[r.image_id], image_id=r.image_id, detail=r.error)
    return files, missing, checks, corrupt


def _refuse_worker_ids_in_names(release: Path, files: dict[str, str], ledger: Ledger) -> None:
    """Refuse an image file whose name contains a WorkerId of the CSV: an image's name is published
    (image_id, path, the report's image status) and no real image name holds one. The error names
    the folder, not the file, whose name would quote the id."""
    for name, rel in files.items():
        if ledger.contains_worker_id(name):
            raise InputError("an image file name in this folder contains a WorkerId of the raw results CSV (not "
                             "quoted); real image names never do, so the release is corrupt or crafted. Rename "
                             "or remove the file. Nothing was written.", file=str(release / rel.rsplit("/", 1)[0]))


def _report_unrated_images(images: pd.DataFrame, answers: pd.DataFrame, files: dict[str, str],
                           corrupt: pd.DataFrame, ledger: Ledger) -> None:
    """Report each decodable image file that ended up with no kept rating."""
    rated = set(images["image_id"])
    seen = set(answers.loc[answers["url"] != "", "image_id"])
    for name in sorted(set(files) - rated - set(corrupt["image_id"])):
        why = "referenced only by excluded answers" if name in seen else "not referenced by any answer"
        ledger.add("image", "reported", "no_ratings", file=files[name], image_id=name, detail=why)


def _report_image_flags(images: pd.DataFrame, ledger: Ledger) -> None:
    """One ledger entry per flag of each kept image."""
    for r in images.itertuples(index=False):
        for flag in filter(None, r.flags.split(";")):
            ledger.add("image", "flagged", flag, file=r.path, image_id=r.image_id, detail=_flag_detail(flag, r))


def _write_curated(out: Path, release: Path, images: pd.DataFrame, ratings: pd.DataFrame, manifest: dict,
                   report: dict) -> None:
    """Write the tables, manifest and report aside and swap them in as ``out`` whole."""
    with atomic_dir(out, kind=CURATED_KIND, inputs=(release,)) as stage:
        images.to_parquet(stage / schema.CURATED_IMAGES, index=False)
        ratings.to_parquet(stage / schema.CURATED_RATINGS, index=False)
        _write_json(stage / schema.CURATED_MANIFEST, manifest)
        _write_json(stage / _report.REPORT_JSON, report)
        (stage / _report.REPORT_MD).write_text(_report.render_markdown(report), encoding="utf-8")


def _test_list_note(report: dict) -> str:
    test_list = report.get("split", {}).get("test_list")
    return f", test list {test_list}" if test_list else ""


def _check_out(release: Path, out: Path) -> None:
    resolved = out.resolve()
    if resolved.parent == resolved:
        raise OutputError("is the root of the file system; choose a new folder", file=str(out))
    if resolved == release or release.is_relative_to(resolved) or resolved.is_relative_to(release):
        raise InputError("the output folder must be outside the release folder (and must not contain it)",
                         file=str(out))
    check_output_folder(out, CURATED_KIND, inputs=(release,))  # before the work, and again at the swap


def _exclude_answers(answers: pd.DataFrame, names: set[str], reason: str, detail: str, ledger: Ledger,
                     file: str) -> None:
    mask = (answers["reason"] == "kept") & answers["image_id"].isin(names)
    answers.loc[mask, "reason"] = reason
    hit = answers[mask]
    ledger.add_frame(pd.DataFrame({"row": hit["row"].to_numpy(),
                                   "column": [f"{_raw.IMAGE_URL_PREFIX}{s}" for s in hit["slot"]],
                                   "image_id": hit["image_id"].to_numpy(), "detail": detail}),
                     "answer", "excluded", file=file, reason=reason)


def _report_batch_sizes(ratings: pd.DataFrame, answers: pd.DataFrame, file: str, ledger: Ledger) -> None:
    """Flag each HIT whose kept ratings do not come from the AMT design's number of distinct raters
    (more assignments were posted, or some were rejected, repeated or lost their images)."""
    n = ratings.groupby("batch_id")["rater_id"].nunique()
    odd = n[n != schema.RATERS_PER_BATCH]
    first_row = answers.groupby("hit_id")["row"].min()
    for hit, k in odd.items():
        ledger.add("batch", "flagged", "unusual_rater_count", file=file, row=int(first_row[hit]), column="HITId",
                   value=hit, detail=f"{int(k)} distinct raters with kept ratings (the design has "
                                     f"{schema.RATERS_PER_BATCH}); all kept")


def _ratings_table(answers: pd.DataFrame, rkey: RaterKey) -> pd.DataFrame:
    kept = answers[answers["reason"] == "kept"].reset_index(drop=True)
    ratings = pd.DataFrame({
        "image_id": kept["image_id"].astype("str"),
        "rater_id": rater_ids(kept["worker_id"], rkey),
        "batch_id": kept["hit_id"].astype("str"),
        "score": kept["score"].astype(np.int8),
        **{a: kept[a].astype("Int8") for a in schema.ATTRIBUTES},
        "submit_time": kept["submit_time"].astype("datetime64[ns]"),
    })
    return ratings[list(schema.RATING_COLUMNS)]


def _images_table(ratings: pd.DataFrame, answers: pd.DataFrame, checks: pd.DataFrame,
                  files: dict[str, str]) -> pd.DataFrame:
    g = ratings.groupby("image_id", sort=True)
    images = pd.DataFrame({"score_mean": g["score"].mean().astype(float), "n_ratings": g.size().astype(np.int64)})
    # A blank score is not a rating, but the votes of that answer count (docs/curation.md).
    vote_only = answers.loc[(answers["reason"] == "blank_score") & answers["image_id"].isin(images.index),
                            ["image_id", *schema.ATTRIBUTES]]
    votes = pd.concat([ratings[["image_id", *schema.ATTRIBUTES]], vote_only], ignore_index=True)
    vg = votes.groupby("image_id", sort=True)
    for a in schema.ATTRIBUTES:
        images[a] = vg[a].mean().astype(float).reindex(images.index)
    images = images.reset_index()
    images["score"] = schema.rescale_score(images["score_mean"]).astype(float)
    kept = answers[answers["reason"] == "kept"]
    url = kept.drop_duplicates("image_id").set_index("image_id")["url"]
    images["source_url"] = images["image_id"].map(url).astype("str")
    c = checks.set_index("image_id")
    for col in ("width", "height", "exif_orientation"):
        images[col] = images["image_id"].map(c[col]).astype(np.int64)
    images["flags"] = images["image_id"].map(c["flags"]).astype("str")
    images[schema.IMAGE_SHA256] = images["image_id"].map(c[schema.IMAGE_SHA256]).astype("str")
    images["license"] = ""
    images["path"] = images["image_id"].map(files).astype("str")
    images["split"] = ""
    return images


def _split_from_batch(images: pd.DataFrame, answers: pd.DataFrame, unlabeled: np.ndarray) -> np.ndarray:
    """For images without a label: the most common split among the labelled images of their
    batches (ties in the order train, validation, test), or train when none is labelled."""
    pairs = answers.loc[answers["reason"] == "kept", ["image_id", "hit_id"]].drop_duplicates()
    split = pairs.merge(images.loc[~unlabeled, ["image_id", "split"]], on="image_id")
    counts = split.groupby(["hit_id", "split"]).size().unstack(fill_value=0)
    counts = counts.reindex(columns=list(schema.SPLITS), fill_value=0)
    todo = pairs[pairs["image_id"].isin(images.loc[unlabeled, "image_id"])]
    votes = counts.reindex(todo["hit_id"]).fillna(0).groupby(todo["image_id"].to_numpy()).sum()
    best = votes.idxmax(axis=1).where(votes.sum(axis=1) > 0, "train")
    return images.loc[unlabeled, "image_id"].map(best).fillna("train").to_numpy()


def _add_flag(images: pd.DataFrame, mask: np.ndarray, flag: str) -> None:
    cur = images.loc[mask, "flags"]
    images.loc[mask, "flags"] = np.where(cur == "", flag, cur + ";" + flag)


def _assign_splits(release: Path, images: pd.DataFrame, answers: pd.DataFrame, files: set[str], strict: bool,
                   ledger: Ledger, test_list: str = schema.DEFAULT_TEST_LIST) -> tuple[pd.DataFrame, dict]:
    """Set ``images.split`` (official or by batches), cross-check label files, report label findings."""
    labels = _labels.read_labels(release, strict=strict, ledger=ledger, test_list=test_list)
    info: dict = {"label_files_present": [], "label_files_missing": [], "multi_batch_images": 0, "test_list": None}
    if labels is not None:
        info["label_files_present"], info["label_files_missing"] = labels.present, labels.missing
        for rel in labels.missing:
            ledger.add("label_file", "reported", "label_file_missing", file=rel)
    if labels is not None and labels.score_splits:
        official = _labels.official_split(labels)
        _report_split_disagreements(labels, official, ledger)
        images["split"] = images["image_id"].map(official).fillna("").astype("str")
        unlabeled = (images["split"] == "").to_numpy()
        images.loc[unlabeled, "split"] = _split_from_batch(images, answers, unlabeled)
        _add_flag(images, unlabeled, "no_label")
        missing_splits = [s for s in schema.SPLITS if s not in labels.score_splits]
        info["method"] = "official"
        info["test_list"] = test_list if "test" in labels.score_splits else None
        info["detail"] = ("from the score label files" +
                          (f"; no score file for {', '.join(missing_splits)} (that split is empty)"
                           if missing_splits else "") +
                          (f"; {int(unlabeled.sum())} images without a score label take the split of their "
                           "batch's labelled images (train if none; flag no_label)" if unlabeled.any() else ""))
        have = set(images["image_id"])
        lab = labels.values.drop_duplicates("image_id")
        for r in lab[~lab["image_id"].isin(have)].itertuples(index=False):
            reason = "label_without_ratings" if r.image_id in files else "label_without_image"
            ledger.add("label", "reported", reason, file=r.file, row=r.row, image_id=r.image_id,
                       detail="listed in the label files but " + ("has no kept ratings" if reason ==
                                                                  "label_without_ratings" else "no such image file"))
        disagree = _labels.cross_check(labels, images, strict=strict, ledger=ledger)
        _add_flag(images, images["image_id"].isin(disagree).to_numpy(), "label_mismatch")
    else:
        kept = answers[answers["reason"] == "kept"]
        split, n_multi = _splits.batch_split(kept.rename(columns={"hit_id": "batch_id"}))
        images["split"] = images["image_id"].map(split).astype("str")
        info["method"] = "batch_hash"
        info["detail"] = ("no score label files: whole batches (HITs) ordered by SHA-256 of their id, split in the "
                          f"paper's proportions {schema.PAPER_SPLIT_SIZES}")
        info["batches_per_split"] = _splits.split_sizes(kept["hit_id"].nunique())
        info["multi_batch_images"] = n_multi
        if labels is not None:
            disagree = _labels.cross_check(labels, images, strict=strict, ledger=ledger)
            _add_flag(images, images["image_id"].isin(disagree).to_numpy(), "label_mismatch")
    images = images.sort_values("image_id", kind="stable").reset_index(drop=True)
    return images[list(schema.CURATED_IMAGE_COLUMNS)], info


def _report_split_disagreements(labels: _labels.Labels, official: pd.Series, ledger: Ledger) -> None:
    """Flag attribute label lines whose file's split is not the split the score files give the image."""
    v = labels.values
    their = v["image_id"].map(official)
    bad = v[(v["field"] != schema.SCORE_LABEL_FIELD) & their.notna() & (their != v["split"])]
    for r, split in zip(bad.itertuples(index=False), their[bad.index]):
        ledger.add("label", "flagged", "label_split_disagrees", file=r.file, row=r.row, column=r.field,
                   image_id=r.image_id, detail=f"listed in a {r.split} label file, but the score files put it in "
                                               f"{split} (the score files' split is used)")


def _flag_detail(flag: str, r) -> str:
    if flag == "exif_rotated":
        return f"EXIF orientation {r.exif_orientation}; width/height are of the upright image ({r.width}×{r.height})"
    return {"png_bytes": "PNG data behind a .jpg name; kept", "grayscale": "single-channel image; kept",
            "cmyk": "CMYK image; kept", "alpha": "image has an alpha channel; kept",
            "palette": "palette image; kept",
            "no_label": "in no score label file; split taken from its batch's labelled images",
            "label_mismatch": "label file disagrees with the raw ratings (see label entries)"}.get(flag, "kept")


def _build_report(release: Path, csv_rel: str, rkey: RaterKey, cols: _raw.AnswerColumns, on_bad_value: str,
                  strict: bool, rows: pd.DataFrame, answers: pd.DataFrame, slots: list[int], files: dict[str, str],
                  missing: list[str], corrupt: pd.DataFrame, images: pd.DataFrame, ratings: pd.DataFrame,
                  split_info: dict, ledger: Ledger) -> dict:
    n_rows = len(rows)
    row_reasons = rows["reason"].value_counts().to_dict()
    n_kept_rows = int(rows["kept"].sum())
    answer_reasons = answers["reason"].value_counts().to_dict()
    splits = {s: int((images["split"] == s).sum()) for s in schema.SPLITS}
    unrated = sorted(set(files) - set(images["image_id"]) - set(corrupt["image_id"]))
    image_status = {name: "excluded:missing_file" for name in missing}
    image_status.update({name: "excluded:corrupt_file" for name in corrupt["image_id"]})
    image_status.update({name: "reported:no_ratings" for name in unrated})
    for r in images.itertuples(index=False):
        image_status[r.image_id] = "kept" + (f":{r.flags}" if r.flags else "")
    acc = {
        "csv rows": _report.accounting(n_rows, {"kept": n_kept_rows, **{k: v for k, v in row_reasons.items()
                                                                          if k != "kept"}}),
        "answer slots of kept rows": _report.accounting(n_kept_rows * len(slots), answer_reasons),
        "ratings written": _report.accounting(answer_reasons.get("kept", 0), {"ratings.parquet rows": len(ratings)}),
        "image files": _report.accounting(len(files), {"kept": len(images), "corrupt": len(corrupt),
                                                       "no_ratings": len(unrated)}),
        "images referenced by usable answers": _report.accounting(
            len(images) + len(corrupt) + len(missing),
            {"kept": len(images), "corrupt": len(corrupt), "missing_file": len(missing)}),
        "ratings per image": _report.accounting(len(ratings), {"sum of images.n_ratings": int(images["n_ratings"].sum())}),
    }
    unbalanced = [k for k, v in acc.items() if not v["balanced"]]
    if unbalanced:  # a bug in the curator, not bad input: never write a report that does not add up
        raise RuntimeError(f"curation accounting does not add up for {unbalanced}: {acc}")
    findings = Counter((e["kind"], e["action"], e["reason"]) for e in ledger.entries)
    return {
        "format": _report.REPORT_FORMAT, "format_version": _report.REPORT_FORMAT_VERSION,
        "toolkit_version": __version__, "release_root": str(release),
        "key_fingerprint": rkey.fingerprint,
        "options": {"on_bad_value": on_bad_value, "strict_labels": strict, "answer_columns": cols.as_dict()},
        "summary": {"images": len(images), "ratings": len(ratings), "batches": int(ratings["batch_id"].nunique()),
                    "raters": int(ratings["rater_id"].nunique()), "splits": splits},
        "csv": {"file": csv_rel, "row_numbering": _raw.ROW_CONVENTION, "rows_total": n_rows,
                "rows_kept": n_kept_rows, "image_slots": slots,
                "rows_excluded": {k: int(v) for k, v in sorted(row_reasons.items()) if k != "kept"},
                "answers": {k: int(v) for k, v in sorted(answer_reasons.items())}},
        "images": {"files": len(files), "kept": len(images), "missing_file": len(missing), "corrupt": len(corrupt),
                   "no_ratings": len(unrated),
                   "flags": dict(sorted(Counter(f for fl in images["flags"] for f in fl.split(";") if f).items()))},
        "split": {**split_info, "counts": splits},
        "accounting": acc,
        "findings": [{"kind": k, "action": a, "reason": r, "count": n} for (k, a, r), n in sorted(findings.items())],
        "row_status": rows["reason"].tolist(),
        "image_status": dict(sorted(image_status.items())),
        "entries": ledger.entries,
    }


def _manifest(release: Path, csv_path: Path, rkey: RaterKey, cols: _raw.AnswerColumns, images: pd.DataFrame,
              ratings: pd.DataFrame, split_info: dict) -> dict:
    return {
        "format": schema.CURATED_FORMAT, "format_version": schema.CURATED_FORMAT_VERSION,
        "release_root": str(release), "toolkit": "aadb_toolkit", "toolkit_version": __version__,
        "raw_results_sha256": sha256_fingerprint(csv_path.read_bytes()),
        "counts": {"images": len(images), "ratings": len(ratings), "batches": int(ratings["batch_id"].nunique()),
                   "raters": int(ratings["rater_id"].nunique()),
                   "splits": {s: int((images["split"] == s).sum()) for s in schema.SPLITS}},
        "split_method": split_info["method"],
        "test_list": split_info["test_list"],
        "answer_columns": cols.as_dict(),
        "rater_id": "R + first 16 hex digits of HMAC-SHA256(key, WorkerId)",
        "key_fingerprint": rkey.fingerprint,
        "report": _report.REPORT_JSON,
    }


def _write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n",
                    encoding="utf-8")

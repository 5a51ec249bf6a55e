"""``simulate``: draw a synthetic AADB release and write it, with its planted truth beside it."""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from .. import schema
from .._atomic import atomic_dir, check_output_folder, write_json
from .._numbers import check_seed
from ..errors import InputError
from . import _quirks
from ._images import draw_photo, encode_jpeg, photo_size, sample_decoy_strengths, sample_image_latents
from ._model import Model, load_setting, rng
from ._raters import check_n_images, rate, sample_assignment_plan, sample_worker_traits
from ._release import (Draft, assignment_rows, batch_splits, csv_bytes, csv_frame,
                       flickr_names, hit_table, label_value_text)

TRUTH_SUFFIX = schema.SIMULATED_TRUTH_SUFFIX
#: The truth's record of the generator's setting (name, overrides, every parameter, sha256).
SETTING_FILE = schema.SIMULATED_SETTING_FILE
_CORRUPT = (b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>\n<body><h1>Not Found</h1>"
            b"<p>The requested photo is no longer available.</p></body></html>\n")


@dataclass(frozen=True)
class SimulationResult:
    """Where a synthetic release and its truth were written, and what they hold."""

    release_dir: Path
    truth_dir: Path
    n_images: int           # rated images (10 per HIT)
    n_image_files: int      # files written under datasetImages_originalSize/
    n_hits: int
    n_csv_rows: int         # assignments in AADB_AllinAll.csv (5 per HIT, plus quirk rows)
    n_valid_ratings: int    # ratings a correct curator keeps
    n_workers: int
    n_quirks: int
    seconds: float


#: Output-marker kinds of a synthetic release and of its planted truth (see :mod:`aadb_toolkit._atomic`).
RELEASE_KIND, TRUTH_KIND = schema.SIMULATED_RELEASE_KIND, "simulated_truth"


def truth_dir_for(release: str | Path) -> Path:
    """The planted-truth folder of a release: its sibling named ``<release>.truth``."""
    return schema.simulated_truth_dir(release)


def simulate(out: Path, *, n_images: int = 10_000, seed: int = 0, quirks: bool = False,
             random_rater_share: float = 0.0, image_size: tuple[int, int] = (128, 96),
             progress: bool | None = None, model: str | Path | None = None,
             overrides: Mapping[str, Any] | None = None) -> SimulationResult:
    """Write a synthetic AADB release in the real format to ``out`` and its planted truth to
    ``<out>.truth``; a test instrument for every stage, never AADB itself. ``progress``: show a bar
    while drawing images (None: on a terminal only). ``model`` names a setting of the generator
    (docs/synthetic.md, "Settings"; default: ``model.toml``) and ``overrides`` sets dotted
    parameters on top (``{"raters.taste_sd": 0.5}``); both are recorded in the truth's
    ``setting.json``, with ``quirks``, ``random_rater_share`` and ``image_size``
    (:func:`generation_options`), and its sha256 covers all of them."""
    started = time.perf_counter()
    setting = load_setting(model, overrides)
    out = Path(out)
    check_n_images(n_images)
    check_seed(seed)
    if not 0.0 <= random_rater_share <= 1.0:
        raise InputError(f"must be in [0, 1], got {random_rater_share}", field="random_rater_share")
    if len(image_size) != 2 or min(image_size) < 16 or max(image_size) > 4096:
        raise InputError(f"width and height must be in 16..4096, got {image_size}", field="image_size")
    out = check_output_folder(out, RELEASE_KIND)  # before the work: a real release is never replaced
    truth = truth_dir_for(out)
    check_output_folder(truth, TRUTH_KIND)
    draft = build_draft(n_images, seed, quirks, random_rater_share, image_size, setting)
    frame = csv_frame(draft)
    ratings = truth_ratings(draft, frame)
    labels, label_lines = label_files(draft, ratings)
    with atomic_dir(out, kind=RELEASE_KIND) as staging:
        n_files = write_images(draft, staging, image_size, progress, setting)
        (staging / schema.RELEASE_RAW_RESULTS).write_bytes(csv_bytes(frame, bom=draft.bom, crlf=draft.crlf))
        label_dir = staging / schema.RELEASE_LABEL_DIR
        label_dir.mkdir()
        for name, text in labels.items():
            (label_dir / name).write_text(text, encoding="utf-8", newline="\n")
        _locate_quirks(draft, frame, label_lines)
        # the truth is swapped in just before the release, so a failure leaves neither half-done
        with atomic_dir(truth, kind=TRUTH_KIND) as truth_staging:
            write_truth(draft, ratings, truth_staging, image_size, setting,
                        options=generation_options(quirks, random_rater_share, image_size))
    return SimulationResult(
        release_dir=out, truth_dir=truth, n_images=n_images, n_image_files=n_files,
        n_hits=len(draft.hits), n_csv_rows=len(frame), n_valid_ratings=int(ratings["is_valid"].sum()),
        n_workers=int((draft.workers["n_hits"] > 0).sum()), n_quirks=len(draft.quirks),
        seconds=time.perf_counter() - started)


def generation_options(quirks: bool, random_rater_share: float, image_size: tuple[int, int]) -> dict[str, Any]:
    """The options of :func:`simulate` besides seed and size that change a release's bytes, as the
    truth's ``setting.json`` records them (its sha256 covers them with the parameters)."""
    return {"quirks": bool(quirks), "random_rater_share": float(random_rater_share),
            "image_size": [int(image_size[0]), int(image_size[1])]}


def build_draft(n_images: int, seed: int, quirks: bool, random_rater_share: float,
                image_size: tuple[int, int], model: Model | None = None) -> Draft:
    """Sample everything (plan, workers, images, answers, quirks) without drawing pixels."""
    model = model or load_setting()
    plan = sample_assignment_plan(n_images, seed, model)
    workers = sample_worker_traits(plan, seed, random_rater_share, model.content_names, model)
    workers["role"] = "pool"
    latents, strengths = sample_image_latents(n_images, seed, model)
    names = flickr_names(n_images, seed)
    hits = hit_table(plan.n_hits, batch_splits(plan.n_hits, seed), seed)
    k = schema.IMAGES_PER_BATCH
    hit_of_image = np.arange(n_images) // k
    sizes = [photo_size(c, image_size) for c in latents["content_type"]]
    images = pd.concat([names, latents], axis=1)
    images.insert(1, "hit", hit_of_image)
    images.insert(2, "slot", np.arange(n_images) % k)
    images["hit_id"] = hits["hit_id"].to_numpy()[hit_of_image]
    images["split"] = hits["split"].to_numpy()[hit_of_image]
    images["width"] = [s[0] for s in sizes]
    images["height"] = [s[1] for s in sizes]
    rows = assignment_rows(plan.hit_workers, hits, list(workers["worker_id"]), seed,
                           model.raters["submitted_share"])
    scores, votes = rate(images, strengths, rows["hit"].to_numpy(), rows["worker"].to_numpy(), workers,
                         latents["content_index"].to_numpy(), seed, model,
                         decoy=sample_decoy_strengths(n_images, seed, model))
    draft = Draft(seed=seed, images=images, strengths=strengths, hits=hits, workers=workers, rows=rows,
                  scores=scores, votes=votes)
    if quirks:
        _quirks.inject(draft, model)
    return draft


def truth_ratings(d: Draft, frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (CSV row, image slot): the planted answer, where it sits, and whether a correct
    curator keeps it (``is_valid``) and why not (``invalid_reason``)."""
    k = schema.IMAGES_PER_BATCH
    csv_row = pd.Series(np.arange(len(frame)), index=frame["AssignmentId"].to_numpy())
    rows = d.rows
    n = len(rows)
    img = rows["hit"].to_numpy()[:, None] * k + np.arange(k)[None, :]
    row_reason = np.select([rows["kind"].to_numpy() == "rejected", rows["kind"].to_numpy() == "duplicate"],
                           ["rejected_assignment", "duplicate_submission"], "")
    out = pd.DataFrame({
        "csv_row": np.repeat(csv_row.loc[rows["assignment_id"]].to_numpy(), k),
        "hit_id": np.repeat(d.hits["hit_id"].to_numpy()[rows["hit"]], k),
        "assignment_id": np.repeat(rows["assignment_id"].to_numpy(), k),
        "assignment_status": np.repeat(rows["status"].to_numpy(), k),
        "worker_id": np.repeat(d.workers["worker_id"].to_numpy()[rows["worker"]], k),
        "slot": np.tile(np.arange(1, k + 1), n),
        "image_id": d.images["image_id"].to_numpy()[img].ravel(),
        "score": d.scores.ravel().astype("int8"),
    })
    for j, a in enumerate(schema.ATTRIBUTES):
        out[a] = d.votes[:, :, j].ravel().astype("int8")
    out["submit_time"] = pd.to_datetime(np.repeat(rows["submit"].to_numpy(), k), utc=True)
    reason = np.repeat(row_reason, k).astype(object)
    for (aid, slot), why in d.rating_reason.items():
        reason[(out["assignment_id"].to_numpy() == aid) & (out["slot"].to_numpy() == slot + 1)] = why
    out["answer_valid"] = reason == ""
    image_bad = {d.images["image_id"].iloc[i]: kind for i, kind in d.image_quirk.items()
                 if kind in _quirks.IMAGE_EXCLUSION}
    img_reason = np.array([image_bad.get(i, "") for i in out["image_id"]], dtype=object)
    reason = np.where((reason == "") & (img_reason != ""), img_reason, reason)
    out["is_valid"] = reason == ""
    out["invalid_reason"] = reason
    return out.sort_values(["csv_row", "slot"], kind="stable").reset_index(drop=True)


def _label_means(ratings: pd.DataFrame) -> pd.DataFrame:
    valid = ratings[ratings["answer_valid"]]
    means = valid.groupby("image_id")[["score"]].mean()
    # as the release's label files: the votes beside a blank score count (docs/curation.md)
    voted = ratings[ratings["answer_valid"] | (ratings["invalid_reason"] == "blank_score")]
    means[list(schema.ATTRIBUTES)] = voted.groupby("image_id")[list(schema.ATTRIBUTES)].mean()
    means[schema.SCORE_LABEL_FIELD] = schema.rescale_score(means["score"])
    return means


def label_files(d: Draft, ratings: pd.DataFrame) -> tuple[dict[str, str], dict[tuple[str, str], tuple[str, int]]]:
    """Label file texts (official names) and, per (image, field), the file and line it sits on.
    Values are means over the answers a curator can read (``answer_valid``), as in the release."""
    means = _label_means(ratings)
    split_of = dict(zip(d.images["image_id"], d.images["split"]))
    gen = rng(d.seed, "quirks", 1)
    extra = {}
    for image_id, split in d.label_only:
        extra[image_id] = split
        means.loc[image_id, schema.SCORE_LABEL_FIELD] = float(np.round(gen.uniform(0.2, 0.8) * 20) / 20)
        for a in schema.ATTRIBUTES:
            means.loc[image_id, a] = float(gen.integers(-5, 6) / 5)
    for (image_id, fld) in list(d.label_overrides):
        true = float(means.loc[image_id, fld])
        d.label_overrides[(image_id, fld)] = true + (0.25 if true <= 0.6 else -0.25)
    texts: dict[str, str] = {}
    where: dict[tuple[str, str], tuple[str, int]] = {}
    for split in schema.SPLITS:
        ids = sorted([i for i, s in split_of.items() if s == split and i not in d.unlabeled]
                     + [i for i, s in extra.items() if s == split])
        for fld in (schema.SCORE_LABEL_FIELD, *schema.ATTRIBUTES):
            name = schema.label_file_name(split, fld)
            values = means[fld].to_dict()
            values.update({i: v for (i, f), v in d.label_overrides.items() if f == fld})
            texts[name] = "".join(f"{i} {label_value_text(values[i])}\n" for i in ids)
            where.update({(i, fld): (name, n) for n, i in enumerate(ids, start=1)})
    return texts, where


def _image_bytes(pixels: np.ndarray, kind: str | None, orientation: int, quality: int) -> bytes | None:
    if kind == "missing_image":
        return None
    if kind == "corrupt_image":
        return _CORRUPT
    if kind == "truncated_image":
        data = encode_jpeg(pixels, quality)
        return data[: int(len(data) * 0.6)]
    im = Image.fromarray(pixels)
    buf = io.BytesIO()
    if kind == "grayscale":
        im.convert("L").save(buf, format="JPEG", quality=quality)
    elif kind == "cmyk":
        im.convert("CMYK").save(buf, format="JPEG", quality=quality)
    elif kind == "rgba":
        alpha = np.full(pixels.shape[:2], 255, np.uint8)
        alpha[:2], alpha[-2:], alpha[:, :2], alpha[:, -2:] = 0, 0, 0, 0
        rgba = np.dstack([pixels, alpha])
        Image.fromarray(rgba, mode="RGBA").save(buf, format="PNG")
    elif kind == "png_bytes":
        im.save(buf, format="PNG")
    elif kind == "exif_orientation":
        # stored = what exif_transpose undoes: 6 -> rotate 270 on display, so store rotated 90.
        stored = im.transpose({6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270,
                               3: Image.Transpose.ROTATE_180}[orientation])
        exif = Image.Exif()
        exif[0x0112] = orientation
        stored.save(buf, format="JPEG", quality=quality, exif=exif)
    else:
        return encode_jpeg(pixels, quality)
    return buf.getvalue()


def write_images(d: Draft, root: Path, image_size: tuple[int, int], progress: bool | None = None,
                 model: Model | None = None) -> int:
    """Draw and write every image file (with its quirk, if any); returns the number written."""
    model = model or load_setting()
    quality = int(model.images["jpeg_quality"])
    hue = {c.name: c.hue for c in model.content_types}
    folder = root / schema.RELEASE_IMAGE_DIR
    folder.mkdir(parents=True)
    jobs = [(d.images["image_id"].iloc[i], d.images["content_type"].iloc[i], d.strengths[i], (0, i),
             d.image_quirk.get(i), d.exif_orientation.get(i, 1)) for i in range(len(d.images))]
    if d.orphans is not None and len(d.orphans):
        lat, strength = sample_image_latents(len(d.orphans), d.seed, model, part=1)
        jobs += [(d.orphans["image_id"].iloc[j], lat["content_type"].iloc[j], strength[j], (1, j), None, 1)
                 for j in range(len(d.orphans))]
    written = 0
    for image_id, kind, s, key, quirk, orientation in tqdm(jobs, desc="drawing images", unit="img",
                                                          disable=None if progress is None else not progress,
                                                          leave=False):
        pixels = draw_photo(kind, s, hue[kind], rng(d.seed, "pixels", *key), photo_size(kind, image_size))
        data = _image_bytes(pixels, quirk, orientation, quality)
        if data is not None:
            (folder / image_id).write_bytes(data)
            written += 1
    return written


def _locate_quirks(d: Draft, frame: pd.DataFrame, label_lines: dict[tuple[str, str], tuple[str, int]]) -> None:
    """Fill in each quirk's CSV row (0-based data row) and line (1-based, header is line 1), or
    its label file and line."""
    row_of = dict(zip(frame["AssignmentId"], range(len(frame))))
    for rec in d.quirks:
        if "assignment_id" in rec:
            rec["row"] = row_of[rec["assignment_id"]]
            rec["line"] = rec["row"] + 2
        if "kept_assignment_id" in rec:
            rec["kept_row"] = row_of[rec["kept_assignment_id"]]
        if rec["kind"] == "label_mismatch":
            name, line = label_lines[(rec["image_id"], rec["field"])]
            rec["file"] = f"{schema.RELEASE_LABEL_DIR}/{name}"
            rec["line"] = line
            rec["label_value"] = round(d.label_overrides[(rec["image_id"], rec["field"])], 6)
        if rec["kind"] == "label_without_image":
            rec["files"] = [f"{schema.RELEASE_LABEL_DIR}/{schema.label_file_name(rec['split'], f)}"
                            for f in (schema.SCORE_LABEL_FIELD, *schema.ATTRIBUTES)]


def write_truth(d: Draft, ratings: pd.DataFrame, root: Path, image_size: tuple[int, int],
                model: Model, options: Mapping[str, Any]) -> None:
    """images.parquet, workers.parquet, ratings.parquet, quirks.json and setting.json (the
    generator's setting, its generation ``options`` — :func:`generation_options` — and every
    parameter) of the planted truth."""
    imgs = d.images
    kept_ratings = ratings[ratings["is_valid"]].groupby("image_id").size()
    quirk_of = {imgs["image_id"].iloc[i]: k for i, k in d.image_quirk.items()}
    quirk_of.update({i: "unlabeled_image" for i in d.unlabeled})
    for (image_id, _f) in d.label_overrides:
        quirk_of[image_id] = "label_mismatch"
    table = pd.DataFrame({
        "image_id": imgs["image_id"], "hit_id": imgs["hit_id"], "slot": imgs["slot"] + 1,
        "split": imgs["split"], "content_type": imgs["content_type"],
        "latent_quality": imgs["latent_quality"],
    })
    for j, a in enumerate(schema.ATTRIBUTES):
        table[f"planted_{a}"] = d.strengths[:, j]
    table["width"], table["height"] = imgs["width"], imgs["height"]
    table["source_url"] = imgs["source_url"]
    table["quirk"] = [quirk_of.get(i, "") for i in table["image_id"]]
    table["has_file"] = ~table["quirk"].isin(["missing_image"])
    table["kept"] = ~table["quirk"].isin(list(_quirks.IMAGE_EXCLUSION))
    table["n_valid_ratings"] = table["image_id"].map(kept_ratings).fillna(0).astype("int64")
    table["exif_orientation"] = [d.exif_orientation.get(i, 1) for i in range(len(imgs))]
    if d.orphans is not None and len(d.orphans):
        lat, strength = sample_image_latents(len(d.orphans), d.seed, model, part=1)
        extra = pd.DataFrame({"image_id": d.orphans["image_id"], "hit_id": None, "slot": 0, "split": "",
                              "content_type": lat["content_type"], "latent_quality": lat["latent_quality"]})
        for j, a in enumerate(schema.ATTRIBUTES):
            extra[f"planted_{a}"] = strength[:, j]
        sizes = [photo_size(c, image_size) for c in lat["content_type"]]
        extra["width"], extra["height"] = [s[0] for s in sizes], [s[1] for s in sizes]
        extra["source_url"] = d.orphans["source_url"]
        extra["quirk"], extra["has_file"], extra["kept"] = "image_without_ratings", True, False
        extra["n_valid_ratings"], extra["exif_orientation"] = 0, 1
        table = pd.concat([table, extra], ignore_index=True)
    table.to_parquet(root / "images.parquet", index=False)
    workers = d.workers.copy()
    for col in ("taste", "taste_attributes"):
        workers[col] = [list(map(float, t)) for t in workers[col]]
    valid = ratings[ratings["is_valid"]].groupby("worker_id").size()
    workers["n_valid_ratings"] = workers["worker_id"].map(valid).fillna(0).astype("int64")
    cols = ["worker_id", "role", "bias", "scale", "noise", "session_sd", "taste", "taste_attributes",
            "is_random", "is_careless",
            "n_hits", "n_images", "n_valid_ratings"]
    workers[cols].to_parquet(root / "workers.parquet", index=False)
    ratings.to_parquet(root / "ratings.parquet", index=False)
    write_json(root / SETTING_FILE, {"format": "aadb-synthetic-setting", "format_version": 2, **model.record(options)})
    write_json(root / "quirks.json", {
        "format": "aadb-synthetic-truth", "format_version": 1, "seed": d.seed,
        "content_types": list(model.content_names),
        "quirks": json.loads(json.dumps(d.quirks, default=_json_default)),
    })


def _json_default(x):
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")

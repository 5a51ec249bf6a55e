"""The mess of real releases (docs/curation.md, "Input: the release"), injected into a
:class:`~._release.Draft` on request.

Every quirk is recorded (kind, file, where, expected curator outcome) so that curation can be
tested against it; quirks touch disjoint assignments and images, so each expected outcome is
unambiguous. See docs/synthetic.md for the list.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from .. import schema
from ._model import Model, load_model, rng
from ._raters import amt_ids
from ._release import ATTRIBUTE_COLUMNS, SCORE_COLUMNS, Draft, flickr_names

CSV = schema.RELEASE_RAW_RESULTS
OUT_OF_RANGE = ("0", "6", "2.5", "abc")
BAD_VOTES = ("2", "-2", "x")
#: Image-level quirks in the order their images are drawn from one shuffled list.
IMAGE_KINDS = ("missing_image", "corrupt_image", "truncated_image", "grayscale", "cmyk", "rgba",
               "png_bytes", "exif_orientation", "label_mismatch", "unlabeled_image")
_IMAGE_RATE = {"missing_image": "missing_image_per_image", "corrupt_image": "corrupt_image_per_image",
               "truncated_image": "truncated_image_per_image", "grayscale": "grayscale_per_image",
               "cmyk": "cmyk_per_image", "rgba": "rgba_per_image", "png_bytes": "png_bytes_per_image",
               "exif_orientation": "exif_rotated_per_image", "label_mismatch": "label_mismatch_per_image",
               "unlabeled_image": "unlabeled_per_image"}
#: What a correct curator does with each kind (docs/synthetic.md explains each).
EXPECTED = {
    "rejected_assignment": "exclude_assignment",
    "duplicate_submission": "exclude_assignment",
    "blank_score": "exclude_rating",
    "out_of_range_score": "exclude_rating",
    "invalid_attribute": "exclude_rating",
    "missing_image": "exclude_image",
    "corrupt_image": "exclude_image",
    "truncated_image": "exclude_image",
    "grayscale": "keep_image_flagged",
    "cmyk": "keep_image_flagged",
    "rgba": "keep_image_flagged",
    "png_bytes": "keep_image_flagged",
    "exif_orientation": "keep_image_flagged",
    "label_mismatch": "report_label_mismatch",
    "unlabeled_image": "keep_image_flagged",
    "label_without_image": "report_label_without_image",
    "image_without_ratings": "report_image_without_ratings",
    "utf8_bom": "read_normally",
    "crlf_line_endings": "read_normally",
}
#: Ratings of images the curator must exclude are not kept either; their reasons.
IMAGE_EXCLUSION = {"missing_image", "corrupt_image", "truncated_image"}


def count(rate: float, n: int) -> int:
    """How many items a rate gives out of ``n``: at least one, so small releases show every quirk."""
    return max(1, int(round(rate * n)))


def inject(d: Draft, model: Model | None = None) -> None:
    """Add every quirk kind to the draft (in place) and record each in ``d.quirks``."""
    model = model or load_model()
    q = model.quirks
    gen = rng(d.seed, "quirks")
    n_hits, n_images = len(d.hits), len(d.images)
    hit_order = gen.permutation(n_hits)
    n_rej = min(count(q["rejected_per_hit"], n_hits), n_hits)
    n_dup = min(count(q["duplicate_per_hit"], n_hits), max(0, n_hits - n_rej))
    rejected_hits, dup_hits = hit_order[:n_rej], hit_order[n_rej:n_rej + n_dup]
    _rejected(d, rejected_hits, gen)
    _duplicates(d, dup_hits, gen)
    # image-level quirks: disjoint images
    img_order = list(gen.permutation(n_images))
    chosen: dict[str, list[int]] = {}
    for kind in IMAGE_KINDS:
        k = count(q[_IMAGE_RATE[kind]], n_images)
        chosen[kind], img_order = img_order[:k], img_order[k:]
    # cell quirks: one cell on each of some further images, in rows of untouched HITs
    busy = set(int(h) for h in np.concatenate([rejected_hits, dup_hits]))
    free_imgs = [i for i in img_order if i // schema.IMAGES_PER_BATCH not in busy]
    n_assign = int((d.rows["kind"] == "normal").sum())
    cell_kinds = [("blank_score", count(q["blank_score_per_assignment"], n_assign)),
                  ("out_of_range_score", count(q["out_of_range_per_assignment"], n_assign)),
                  ("invalid_attribute", count(q["invalid_attribute_per_assignment"], n_assign))]
    for kind, k in cell_kinds:
        targets, free_imgs = free_imgs[:k], free_imgs[k:]
        _cells(d, kind, targets, gen)
    for kind in IMAGE_KINDS:
        for j, i in enumerate(chosen[kind]):
            _image(d, kind, int(i), j, gen)
    _label_only(d, count(q["label_without_image_per_image"], n_images), gen)
    _orphans(d, count(q["orphan_image_per_image"], n_images))
    d.bom = d.crlf = True
    d.quirks.append({"kind": "utf8_bom", "file": CSV, "expected": EXPECTED["utf8_bom"],
                     "note": "the CSV starts with a UTF-8 byte-order mark; the first column is still HITId"})
    d.quirks.append({"kind": "crlf_line_endings", "file": CSV, "expected": EXPECTED["crlf_line_endings"],
                     "note": "every CSV line ends in CRLF"})


def _append_rows(d: Draft, new: pd.DataFrame, scores: np.ndarray, votes: np.ndarray) -> None:
    d.rows = pd.concat([d.rows, new], ignore_index=True)
    d.scores = np.concatenate([d.scores, scores])
    d.votes = np.concatenate([d.votes, votes])


def _rejected(d: Draft, hits: np.ndarray, gen: np.random.Generator) -> None:
    """An extra assignment by a spammer on each HIT, answered at random and rejected."""
    n_spam = max(1, len(hits) // 3)
    spam_ids = amt_ids(rng(d.seed, "ids", 5), n_spam + len(d.workers), 13, prefix="A")
    spam_ids = [s for s in spam_ids if s not in set(d.workers["worker_id"])][:n_spam]
    first = len(d.workers)
    d.workers = pd.concat([d.workers, pd.DataFrame({
        "worker_id": spam_ids, "n_hits": 0, "n_images": 0, "bias": 0.0, "scale": 0.0, "noise": 0.0,
        "session_sd": 0.0, "taste": [np.zeros(len(d.workers["taste"].iloc[0])) for _ in spam_ids],
        "taste_attributes": [np.zeros(len(schema.ATTRIBUTES)) for _ in spam_ids],
        "is_random": True, "is_careless": False, "role": "rejected_spammer"})], ignore_index=True)
    ids = amt_ids(rng(d.seed, "ids", 6), len(hits), 29, prefix="3")
    k = schema.IMAGES_PER_BATCH
    created = d.hits["creation"].to_numpy()[hits]
    accept = [c + timedelta(seconds=int(x)) for c, x in zip(created, gen.integers(60, 7200, len(hits)))]
    work = gen.integers(20, 60, len(hits))
    new = pd.DataFrame({
        "assignment_id": ids, "hit": hits, "worker": first + np.arange(len(hits)) % n_spam,
        "status": "Rejected", "accept": accept,
        "submit": [a + timedelta(seconds=int(w)) for a, w in zip(accept, work)], "work": work,
        "review": gen.uniform(0.5, 2.0, len(hits)) * 86400,
        "feedback": "Answers do not follow the instructions", "kind": "rejected"})
    _append_rows(d, new, gen.integers(1, 6, (len(hits), k)),
                 gen.integers(-1, 2, (len(hits), k, len(schema.ATTRIBUTES))))
    for aid, h in zip(ids, hits):
        d.quirks.append({"kind": "rejected_assignment", "file": CSV, "assignment_id": aid,
                         "hit_id": d.hits["hit_id"].iloc[h], "column": "AssignmentStatus",
                         "expected": EXPECTED["rejected_assignment"],
                         "note": "AssignmentStatus=Rejected: all 10 ratings of this row are excluded"})


def _duplicates(d: Draft, hits: np.ndarray, gen: np.random.Generator) -> None:
    """The same worker submitting the same HIT twice: a second row, same answers, later times."""
    rows = d.rows
    for h in hits:
        cand = np.flatnonzero((rows["hit"].to_numpy() == h) & (rows["kind"].to_numpy() == "normal"))
        src = int(gen.choice(cand))
        orig = rows.iloc[src]
        aid = amt_ids(rng(d.seed, "ids", 7, int(h)), 1, 29, prefix="3")[0]
        accept = orig["submit"] + timedelta(seconds=int(gen.integers(30, 600)))
        new = pd.DataFrame([{**orig.to_dict(), "assignment_id": aid, "accept": accept,
                             "submit": accept + timedelta(seconds=int(orig["work"])), "kind": "duplicate"}])
        _append_rows(d, new, d.scores[src:src + 1].copy(), d.votes[src:src + 1].copy())
        d.quirks.append({"kind": "duplicate_submission", "file": CSV, "assignment_id": aid,
                         "kept_assignment_id": orig["assignment_id"], "hit_id": d.hits["hit_id"].iloc[h],
                         "column": "WorkerId", "expected": EXPECTED["duplicate_submission"],
                         "note": "same worker, same HIT, submitted again later with the same answers: "
                                 "keep the earliest submission, exclude this one"})


def _cells(d: Draft, kind: str, images: list[int], gen: np.random.Generator) -> None:
    """Overwrite one answer cell of one normal row for each image."""
    k = schema.IMAGES_PER_BATCH
    rows = d.rows
    for j, i in enumerate(images):
        hit, slot = divmod(int(i), k)
        cand = np.flatnonzero((rows["hit"].to_numpy() == hit) & (rows["kind"].to_numpy() == "normal"))
        r = int(gen.choice(cand))
        aid = rows["assignment_id"].iloc[r]
        if kind == "blank_score":
            column, text = SCORE_COLUMNS[slot], ""
        elif kind == "out_of_range_score":
            column, text = SCORE_COLUMNS[slot], OUT_OF_RANGE[j % len(OUT_OF_RANGE)]
        else:
            attr = schema.ATTRIBUTES[int(gen.integers(len(schema.ATTRIBUTES)))]
            column, text = ATTRIBUTE_COLUMNS[attr][slot], BAD_VOTES[j % len(BAD_VOTES)]
        d.overrides[(aid, column)] = text
        d.rating_reason[(aid, slot)] = kind
        d.quirks.append({"kind": kind, "file": CSV, "assignment_id": aid, "column": column,
                         "value": text, "image_id": d.images["image_id"].iloc[i], "slot": slot + 1,
                         "expected": EXPECTED[kind],
                         "note": "exclude this one rating (row, image slot); the row's other 9 are kept"})


def _image(d: Draft, kind: str, i: int, j: int, gen: np.random.Generator) -> None:
    image_id = d.images["image_id"].iloc[i]
    rec = {"kind": kind, "image_id": image_id, "expected": EXPECTED[kind]}
    path = f"{schema.RELEASE_IMAGE_DIR}/{image_id}"
    if kind == "label_mismatch":
        d.label_overrides[(image_id, schema.SCORE_LABEL_FIELD)] = float("nan")  # filled when labels are made
        rec.update(file=None, field=schema.SCORE_LABEL_FIELD,
                   note="the score label disagrees with the mean of the raw ratings: report it; the raw "
                        "ratings win")
    elif kind == "unlabeled_image":
        d.unlabeled.add(image_id)
        rec.update(file=None, split=d.images["split"].iloc[i],
                   note="rated and present, but absent from every label file: keep it (split from its "
                        "batch) and report it")
    else:
        d.image_quirk[i] = kind
        rec["file"] = path
        if kind == "exif_orientation":
            d.exif_orientation[i] = (6, 8, 3)[j % 3]
            rec["orientation"] = d.exif_orientation[i]
            rec["note"] = "pixels stored rotated, EXIF Orientation tag restores them: keep, flag, transpose"
        else:
            rec["note"] = {
                "missing_image": "rated but no file: exclude the image and its ratings",
                "corrupt_image": "not an image at all (an HTML error page): exclude the image and its ratings",
                "truncated_image": "JPEG cut short: exclude the image and its ratings",
                "grayscale": "single-channel (L) JPEG: keep, flag, convert to RGB",
                "cmyk": "CMYK JPEG: keep, flag, convert to RGB",
                "rgba": "PNG with an alpha channel behind the .jpg name: keep, flag, convert to RGB",
                "png_bytes": "PNG bytes behind the .jpg name: keep, flag",
            }[kind]
    d.quirks.append(rec)


def _label_only(d: Draft, n: int, gen: np.random.Generator) -> None:
    """Label lines for images that have neither a file nor ratings."""
    names = flickr_names(n, d.seed, offset=1)
    for image_id in names["image_id"]:
        split = str(gen.choice(schema.SPLITS))
        d.label_only.append((image_id, split))
        d.quirks.append({"kind": "label_without_image", "image_id": image_id, "split": split,
                         "file": None, "expected": EXPECTED["label_without_image"],
                         "note": "listed in every label file of its split, but no file and no ratings: "
                                 "report and ignore"})


def _orphans(d: Draft, n: int) -> None:
    """Image files that no HIT shows (no ratings, no labels)."""
    d.orphans = flickr_names(n, d.seed, offset=2)
    for image_id in d.orphans["image_id"]:
        d.quirks.append({"kind": "image_without_ratings", "image_id": image_id,
                         "file": f"{schema.RELEASE_IMAGE_DIR}/{image_id}",
                         "expected": EXPECTED["image_without_ratings"],
                         "note": "an image file no HIT shows: report it; it has no score"})

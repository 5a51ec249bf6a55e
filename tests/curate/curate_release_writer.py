"""An independent writer of small raw AADB releases in the format of SPEC §2, for curation tests.

It deliberately does not use ``aadb_toolkit.simulate`` (or the curator's own helpers): the column
names, URL pattern, time format and label file names are written out here from the SPEC, so the
curator is tested against files made by a different hand. Tests build a :class:`Release`, mutate
its rows, images or label texts to plant a quirk, and write it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

#: From SPEC §2, in this order.
ATTR_STEMS = ["balancingElements", "colorHarmony", "content", "depthOfField", "light", "motionBlur", "object",
              "repetition", "ruleOfThirds", "symmetry", "vividColor"]
#: The toolkit's canonical attribute names, in the same order (SPEC §3 uses snake_case).
ATTRS = ["balancing_elements", "color_harmony", "content", "depth_of_field", "light", "motion_blur", "object",
         "repetition", "rule_of_thirds", "symmetry", "vivid_color"]
LABEL_ATTRS = ["BalacingElements", "ColorHarmony", "Content", "DoF", "Light", "MotionBlur", "Object", "Repetition",
               "RuleOfThirds", "Symmetry", "VividColor"]
LABEL_SPLITS = {"train": "Train", "validation": "Validation", "test": "TestNew"}
AMT_COLUMNS = ["HITId", "HITTypeId", "Title", "Description", "Reward", "CreationTime", "MaxAssignments",
               "AssignmentId", "WorkerId", "AssignmentStatus", "AcceptTime", "SubmitTime", "AutoApprovalTime",
               "ApprovalTime", "RejectionTime", "WorkTimeInSeconds", "LifetimeApprovalRate"]
WORKERS = ["A1QX7RZ3KD0V2M", "A2BH5N8YTPLW3C", "A3KJ9D2XQ4ZR7E", "A14GZQ8V3LMN0P", "AX9TR2KB7WQ5SD",
           "A2ZM6LQ0PNHJ4Y", "A1CVB7XN3QWE8R"]
IMAGE_DIR = "datasetImages_originalSize"
LABEL_DIR = "imgListFiles_label"


def image_name(b: int, i: int) -> tuple[str, str]:
    """(release image name, Flickr URL) of slot i of batch b."""
    farm, server, photo, secret = 1 + b % 5, 4000 + b, 10_000_000_000 + 100 * b + i, f"{(100 * b + i) * 7919:010x}"
    return (f"farm{farm}_{server}_{photo}_{secret}_b.jpg",
            f"https://farm{farm}.staticflickr.com/{server}/{photo}_{secret}_b.jpg")


def amt_time(t: dt.datetime) -> str:
    """AMT's submit-time text, in Pacific daylight time."""
    return t.strftime("%a %b %d %H:%M:%S PDT %Y")


def jpeg(w: int, h: int, colour=(120, 80, 40), mode: str = "RGB", fmt: str = "JPEG", exif=None) -> bytes:
    im = Image.new(mode, (w, h), colour if mode != "L" else colour[0])
    buf = io.BytesIO()
    kw = {"exif": exif} if exif is not None else {}
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


@dataclass
class Release:
    """A raw release in memory: CSV rows (column → text), image files and label files."""

    columns: list[str]
    rows: list[dict[str, str]]
    images: dict[str, bytes]
    labels: dict[str, str] = field(default_factory=dict)
    n_slots: int = 10

    def write(self, root: Path, *, bom: bool = False, crlf: bool = False) -> Path:
        """Write the release under ``root`` and return ``root``."""
        root.mkdir(parents=True, exist_ok=True)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.columns, lineterminator="\r\n" if crlf else "\n",
                                quoting=csv.QUOTE_ALL, extrasaction="ignore")
        writer.writeheader()
        for r in self.rows:
            writer.writerow(r)
        (root / "AADB_AllinAll.csv").write_bytes((b"\xef\xbb\xbf" if bom else b"") + buf.getvalue().encode("utf-8"))
        (root / IMAGE_DIR).mkdir(exist_ok=True)
        for name, data in self.images.items():
            (root / IMAGE_DIR / name).write_bytes(data)
        if self.labels:
            (root / LABEL_DIR).mkdir(exist_ok=True)
            for name, text in self.labels.items():
                (root / LABEL_DIR / name).write_text(text, encoding="utf-8")
        return root

    def slot(self, row: int, i: int, stem: str = "overallScore") -> str:
        """Column name of slot i's answer (1-based)."""
        return f"Answer.{stem}{i}"


def score_of(b: int, j: int, i: int) -> int:
    return 1 + (3 * b + i + j * (i % 3)) % 5


def vote_of(b: int, j: int, i: int, k: int) -> int:
    return (b + j + i + k) % 3 - 1


def build_release(n_batches: int = 3, *, n_workers_per_batch: int = 5, n_slots: int = 10,
                  label_splits: list[str] | None = None, labels: bool = True) -> Release:
    """A clean release: batch b's worker j gives slot i the score ``score_of(b, j, i)`` and votes
    ``vote_of(b, j, i, k)``. Label files hold the exact means (4 decimals), batch b in
    ``label_splits[b]`` (default train, validation, test, train, ...)."""
    columns = AMT_COLUMNS + [f"Input.image_url{i}" for i in range(1, n_slots + 1)] + \
        [f"Answer.overallScore{i}" for i in range(1, n_slots + 1)] + \
        [f"Answer.{s}{i}" for s in ATTR_STEMS for i in range(1, n_slots + 1)] + ["Approve", "Reject"]
    rows, images = [], {}
    t0 = dt.datetime(2015, 6, 1, 10, 0, 0)
    for b in range(n_batches):
        for j in range(n_workers_per_batch):
            t = t0 + dt.timedelta(hours=b, minutes=7 * j, seconds=j)
            row = {"HITId": f"3HIT{b:04d}QZ", "HITTypeId": "3TYPE", "Title": "Rate photos, aesthetically",
                   "Description": "Rate 10 photos, then answer: \"why?\"", "Reward": "$0.10",
                   "CreationTime": amt_time(t0), "MaxAssignments": "5", "AssignmentId": f"3ASG{b:04d}X{j}",
                   "WorkerId": WORKERS[(2 * b + j) % len(WORKERS)], "AssignmentStatus": "Approved",
                   "AcceptTime": amt_time(t - dt.timedelta(minutes=3)), "SubmitTime": amt_time(t),
                   "AutoApprovalTime": "", "ApprovalTime": amt_time(t + dt.timedelta(days=1)), "RejectionTime": "",
                   "WorkTimeInSeconds": "180", "LifetimeApprovalRate": "100% (12/12)", "Approve": "", "Reject": ""}
            for i in range(1, n_slots + 1):
                name, url = image_name(b, i)
                row[f"Input.image_url{i}"] = url
                row[f"Answer.overallScore{i}"] = str(score_of(b, j, i))
                for k, s in enumerate(ATTR_STEMS):
                    row[f"Answer.{s}{i}"] = str(vote_of(b, j, i, k))
                if j == 0:
                    images[name] = jpeg(20 + i, 16, colour=(10 * i, 200 - 10 * b, 90))
            rows.append(row)
    rel = Release(columns, rows, images, n_slots=n_slots)
    if labels:
        rel.labels = exact_labels(n_batches, n_workers_per_batch, n_slots, label_splits)
    return rel


def exact_labels(n_batches: int, n_workers: int, n_slots: int, label_splits: list[str] | None = None) -> dict:
    """Label files holding the true means (score rescaled to [0, 1]), 4 decimals."""
    splits = label_splits or [("train", "validation", "test")[b % 3] for b in range(n_batches)]
    files: dict[str, list[str]] = {}
    for b in range(n_batches):
        for i in range(1, n_slots + 1):
            name, _ = image_name(b, i)
            mean = sum(score_of(b, j, i) for j in range(n_workers)) / n_workers
            sp = LABEL_SPLITS[splits[b]]
            files.setdefault(f"imgList{sp}Regression_score.txt", []).append(f"{name} {(mean - 1) / 4:.4f}")
            for k, la in enumerate(LABEL_ATTRS):
                att = sum(vote_of(b, j, i, k) for j in range(n_workers)) / n_workers
                files.setdefault(f"imgList{sp}Regression_{la}.txt", []).append(f"{name} {att:.4f}")
    return {n: "\n".join(v) + "\n" for n, v in files.items()}

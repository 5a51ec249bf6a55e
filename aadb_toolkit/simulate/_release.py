"""The release in the real AADB format (docs/curation.md, "Input: the release"): Flickr-style names, the AMT batch-results CSV
and the label files, built from a :class:`Draft` that holds every planted answer."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd

from .. import schema
from ._model import rng
from ._raters import amt_ids

PDT = timezone(timedelta(hours=-7), "PDT")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
#: All HITs are created from this moment on (a fixed date: releases never read the clock).
EPOCH = datetime(2015, 6, 1, 9, 0, 0, tzinfo=PDT)

HIT_COLUMNS = (
    "HITId", "HITTypeId", "Title", "Description", "Keywords", "Reward", "CreationTime",
    "MaxAssignments", "RequesterAnnotation", "AssignmentDurationInSeconds",
    "AutoApprovalDelayInSeconds", "Expiration", "NumberOfSimilarHITs", "LifetimeInSeconds",
    "AssignmentId", "WorkerId", "AssignmentStatus", "AcceptTime", "SubmitTime",
    "AutoApprovalTime", "ApprovalTime", "RejectionTime", "RequesterFeedback",
    "WorkTimeInSeconds", "LifetimeApprovalRate", "Last30DaysApprovalRate", "Last7DaysApprovalRate",
)
K = schema.IMAGES_PER_BATCH
URL_COLUMNS = tuple(f"Input.image_url{i}" for i in range(1, K + 1))
SCORE_COLUMNS = tuple(f"Answer.overallScore{i}" for i in range(1, K + 1))
ATTRIBUTE_COLUMNS = {a: tuple(f"Answer.{schema.AMT_ATTRIBUTE_ANSWER_STEMS[a]}{i}" for i in range(1, K + 1))
                     for a in schema.ATTRIBUTES}
CSV_COLUMNS = (*HIT_COLUMNS, *URL_COLUMNS, *SCORE_COLUMNS,
               *(c for a in schema.ATTRIBUTES for c in ATTRIBUTE_COLUMNS[a]), "Approve", "Reject")


def amt_time(t: datetime) -> str:
    """AMT's text timestamp, e.g. ``Mon Jun 01 10:23:45 PDT 2015`` (locale-independent)."""
    t = t.astimezone(PDT)
    return f"{_DAYS[t.weekday()]} {_MONTHS[t.month - 1]} {t:%d %H:%M:%S} PDT {t.year}"


def flickr_names(n: int, seed: int, offset: int = 0) -> pd.DataFrame:
    """``n`` distinct Flickr-style photos: farm, server, photo id, secret, file name and URL."""
    gen = rng(seed, "ids", 3, offset)
    farm = gen.integers(1, 10, n)
    server = gen.integers(1000, 10000, n)
    photoid = 10_000_000_000 + offset * 20_000_000_000 + np.cumsum(gen.integers(1, 100_000, n))
    photoid = gen.permutation(photoid)
    secret = ["".join(f"{b:02x}" for b in row)[:10] for row in gen.integers(0, 256, (n, 5))]
    stem = [f"{p}_{s}_b.jpg" for p, s in zip(photoid, secret)]
    return pd.DataFrame({
        "image_id": [f"farm{f}_{sv}_{st}" for f, sv, st in zip(farm, server, stem)],
        "source_url": [f"https://farm{f}.staticflickr.com/{sv}/{st}" for f, sv, st in zip(farm, server, stem)],
    })


def batch_splits(n_hits: int, seed: int) -> np.ndarray:
    """Split of every HIT: whole batches in the paper's proportions (8,500/500/1,000 of 10,000),
    rounded half up per split, at least one validation and one test HIT when there are ≥ 3."""
    total = sum(schema.PAPER_SPLIT_SIZES.values())
    out = np.full(n_hits, "train", dtype=object)
    if n_hits >= 3:
        n_val = max(1, int(np.floor(n_hits * schema.PAPER_SPLIT_SIZES["validation"] / total + 0.5)))
        n_test = max(1, int(np.floor(n_hits * schema.PAPER_SPLIT_SIZES["test"] / total + 0.5)))
        order = rng(seed, "splits").permutation(n_hits)
        out[order[:n_val]] = "validation"
        out[order[n_val:n_val + n_test]] = "test"
    return out


@dataclass
class Draft:
    """Everything the release will contain, before it is written: one row per CSV row in
    ``rows`` (with the intended answers in ``scores``/``votes``), and the quirks to apply."""

    seed: int
    images: pd.DataFrame            # rated images, ordered by HIT then slot
    strengths: np.ndarray           # (n_images, 11)
    hits: pd.DataFrame              # hit_id, split, creation (datetime)
    workers: pd.DataFrame
    rows: pd.DataFrame              # assignment rows (meta)
    scores: np.ndarray              # (n_rows, 10) intended scores
    votes: np.ndarray               # (n_rows, 10, 11) intended votes
    overrides: dict[tuple[str, str], str] = field(default_factory=dict)   # (assignment, column) -> text
    rating_reason: dict[tuple[str, int], str] = field(default_factory=dict)  # (assignment, slot) -> reason
    image_quirk: dict[int, str] = field(default_factory=dict)              # image index -> kind
    exif_orientation: dict[int, int] = field(default_factory=dict)
    label_overrides: dict[tuple[str, str], float] = field(default_factory=dict)
    unlabeled: set[str] = field(default_factory=set)
    label_only: list[tuple[str, str]] = field(default_factory=list)         # (image_id, split)
    orphans: pd.DataFrame | None = None                                     # image_id, source_url
    bom: bool = False
    crlf: bool = False
    quirks: list[dict] = field(default_factory=list)


def assignment_rows(hit_workers: np.ndarray, hits: pd.DataFrame, worker_ids: list[str], seed: int,
                    submitted_share: float) -> pd.DataFrame:
    """One approved (or not yet reviewed) assignment per (HIT, worker), with AMT-style times."""
    n_hits, r = hit_workers.shape
    gen = rng(seed, "times", 1)
    hit = np.repeat(np.arange(n_hits), r)
    worker = hit_workers.ravel()
    n = len(hit)
    accept_delay = gen.exponential(4 * 3600, n)
    work = np.rint(np.exp(gen.normal(np.log(420), 0.5, n))).astype(int) + 30
    review = gen.uniform(0.5, 3.0, n) * 86400
    status = np.where(gen.random(n) < submitted_share, "Submitted", "Approved")
    ids = amt_ids(rng(seed, "ids", 2), n, 29, prefix="3")
    created = hits["creation"].to_numpy()[hit]
    accept = [c + timedelta(seconds=int(d)) for c, d in zip(created, accept_delay)]
    return pd.DataFrame({
        "assignment_id": ids, "hit": hit, "worker": worker, "status": status, "accept": accept,
        "submit": [a + timedelta(seconds=int(w)) for a, w in zip(accept, work)], "work": work,
        "review": review, "feedback": "", "kind": "normal",
    })


def hit_table(n_hits: int, splits: np.ndarray, seed: int) -> pd.DataFrame:
    """HIT ids (AMT style) and creation times spread over six weeks from :data:`EPOCH`."""
    gen = rng(seed, "times", 0)
    offsets = np.sort(gen.uniform(0, 42 * 86400, n_hits))
    return pd.DataFrame({
        "hit_id": amt_ids(rng(seed, "ids", 1), n_hits, 29, prefix="3"),
        "split": splits,
        "creation": [EPOCH + timedelta(seconds=int(s)) for s in offsets],
    })


def csv_frame(d: Draft) -> pd.DataFrame:
    """The AMT batch-results table (all cells text), sorted by HITId, SubmitTime, AssignmentId,
    with the hidden sort keys ``_row_key`` (assignment id) kept for the truth."""
    rows, hits = d.rows, d.hits
    hid = hits["hit_id"].to_numpy()[rows["hit"]]
    created = hits["creation"].to_numpy()[rows["hit"]]
    hit_type = amt_ids(rng(d.seed, "ids", 4), 1, 29, prefix="3")[0]
    status = rows["status"].to_numpy()
    submit = rows["submit"].to_numpy()
    review = [timedelta(seconds=int(x)) for x in rows["review"]]
    out: dict[str, object] = {
        "HITId": hid,
        "HITTypeId": hit_type,
        "Title": "Rate the aesthetics of 10 photos",
        "Description": "Give each photo an overall aesthetic score (1-5) and judge 11 photographic attributes.",
        "Keywords": "image, photo, aesthetics, rating",
        "Reward": "$0.20",
        "CreationTime": [amt_time(c) for c in created],
        "MaxAssignments": str(schema.RATERS_PER_BATCH),
        "RequesterAnnotation": "BatchId:2015601;",
        "AssignmentDurationInSeconds": "3600",
        "AutoApprovalDelayInSeconds": "259200",
        "Expiration": [amt_time(c + timedelta(days=14)) for c in created],
        "NumberOfSimilarHITs": "",
        "LifetimeInSeconds": "",
        "AssignmentId": rows["assignment_id"].to_numpy(),
        "WorkerId": d.workers["worker_id"].to_numpy()[rows["worker"]],
        "AssignmentStatus": status,
        "AcceptTime": [amt_time(a) for a in rows["accept"]],
        "SubmitTime": [amt_time(s) for s in submit],
        "AutoApprovalTime": [amt_time(s + timedelta(days=3)) for s in submit],
        "ApprovalTime": [amt_time(s + r) if st == "Approved" else "" for s, r, st in zip(submit, review, status)],
        "RejectionTime": [amt_time(s + r) if st == "Rejected" else "" for s, r, st in zip(submit, review, status)],
        "RequesterFeedback": rows["feedback"].to_numpy(),
        "WorkTimeInSeconds": rows["work"].astype(str).to_numpy(),
        "LifetimeApprovalRate": "0% (0/0)",
        "Last30DaysApprovalRate": "0% (0/0)",
        "Last7DaysApprovalRate": "0% (0/0)",
    }
    img = rows["hit"].to_numpy()[:, None] * K + np.arange(K)[None, :]
    urls = d.images["source_url"].to_numpy()[img]
    for i in range(K):
        out[URL_COLUMNS[i]] = urls[:, i]
        out[SCORE_COLUMNS[i]] = d.scores[:, i].astype(str)
    for j, a in enumerate(schema.ATTRIBUTES):
        for i in range(K):
            out[ATTRIBUTE_COLUMNS[a][i]] = d.votes[:, i, j].astype(str)
    out["Approve"] = ""
    out["Reject"] = ""
    frame = pd.DataFrame(out, columns=list(CSV_COLUMNS))
    aid = frame["AssignmentId"]
    for (assignment, column), text in d.overrides.items():
        frame.loc[aid == assignment, column] = text
    frame["_submit"] = submit
    frame = frame.sort_values(["HITId", "_submit", "AssignmentId"], kind="stable").reset_index(drop=True)
    return frame.drop(columns="_submit")


def csv_bytes(frame: pd.DataFrame, *, bom: bool, crlf: bool) -> bytes:
    """The CSV as AMT writes it: every field quoted; optional UTF-8 BOM and CRLF line endings."""
    buf = io.StringIO()
    writer = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\r\n" if crlf else "\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(frame[list(CSV_COLUMNS)].itertuples(index=False, name=None))
    return (b"\xef\xbb\xbf" if bom else b"") + buf.getvalue().encode("utf-8")


def label_value_text(v: float) -> str:
    """How a label value is printed: rounded to 6 decimals, shortest form (``0.35``, ``-0.2``)."""
    return repr(round(float(v), 6) + 0.0)

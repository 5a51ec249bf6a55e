"""A release written by a third party's generator (this file's own writer, made from SPEC §2 and
AMT's batch-results conventions, sharing no code with the simulator, the curator or the other
curation tests' writer) curates correctly, with everything a real file may legitimately vary:
column order, extra AMT columns, every cell quoted, BOM, CRLF, no trailing newline, padded cells,
"4.0" scores and "+1" votes, http/https/query-string URLs, many image encodings and all 8 EXIF
orientations, broken and missing files, repeated submissions, HITs with 4 or 6 assignments,
and label files that round, use scientific notation or disagree.

The expected tables are computed here from the plan, independently of the curator."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import json
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from aadb_toolkit.curate import curate

KEY = b"third-party-key-0123456789abcdef"
CSV_NAME = "AADB_AllinAll.csv"
IMG_DIR = "datasetImages_originalSize"
LBL_DIR = "imgListFiles_label"
# SPEC §2 spellings, written out here on purpose (not imported from the toolkit).
STEMS = ["balancingElements", "colorHarmony", "content", "depthOfField", "light", "motionBlur", "object",
         "repetition", "ruleOfThirds", "symmetry", "vividColor"]
ATTRS = ["balancing_elements", "color_harmony", "content", "depth_of_field", "light", "motion_blur", "object",
         "repetition", "rule_of_thirds", "symmetry", "vivid_color"]
LABEL_NAMES = ["BalacingElements", "ColorHarmony", "Content", "DoF", "Light", "MotionBlur", "Object",
               "Repetition", "RuleOfThirds", "Symmetry", "VividColor"]
AMT_STANDARD = ["HITId", "HITTypeId", "Title", "Description", "Keywords", "Reward", "CreationTime",
                "MaxAssignments", "RequesterAnnotation", "AssignmentDurationInSeconds",
                "AutoApprovalDelayInSeconds", "Expiration", "NumberOfSimilarHITs", "LifetimeInSeconds",
                "AssignmentId", "WorkerId", "AssignmentStatus", "AcceptTime", "SubmitTime", "AutoApprovalTime",
                "ApprovalTime", "RejectionTime", "RequesterFeedback", "WorkTimeInSeconds", "LifetimeApprovalRate",
                "Last30DaysApprovalRate", "Last7DaysApprovalRate"]
TRAILING = ["Approve", "Reject"]
WORKERS = ["A3UV7PLO2KQ9XR", "A1B2C3D4E5F6G7", "AQ9ZX8CV7BN6M5", "A2LKJHGFDSAPOI", "A39WEO2IRU4TYQ",
           "AZ0XC9VB8NM7LK", "A1POIUYTREWQ12", "A3MNBVCXZLKJH4", "A2QWERTYUIOPAS"]
PACIFIC = dt.timedelta(hours=-7)  # PDT, as AMT writes it


# --------------------------------------------------------------------------------------------
# The writer
# --------------------------------------------------------------------------------------------
@dataclass
class Assignment:
    hit: str
    worker: str
    status: str
    submit_utc: dt.datetime
    urls: list[str]
    scores: list[str]                 # cell texts as written
    votes: list[list[str]]            # [slot][attr] cell texts as written


def amt_time(utc: dt.datetime) -> str:
    return (utc + PACIFIC).strftime("%a %b %d %H:%M:%S PDT %Y")


def quote_all(cells: list[str]) -> str:
    return ",".join('"' + c.replace('"', '""') + '"' for c in cells)


def write_csv(path: Path, columns: list[str], rows: list[dict[str, str]], *, bom: bool, eol: str,
              trailing_newline: bool) -> None:
    lines = [quote_all(columns)] + [quote_all([r.get(c, "") for c in columns]) for r in rows]
    text = eol.join(lines) + (eol if trailing_newline else "")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))


def encode(mode: str, size: tuple[int, int], fmt: str, *, orientation: int | None = None,
           progressive: bool = False) -> bytes:
    colour = {"RGB": (200, 40, 90), "L": 128, "CMYK": (10, 200, 30, 5), "RGBA": (9, 90, 200, 100),
              "I;16": 40000, "P": 3}[mode]
    im = Image.new(mode, size, colour)
    buf = io.BytesIO()
    kw = {}
    if fmt == "MPO":   # a JPEG with a second picture appended, as stereo cameras and many phones write
        kw.update(save_all=True, append_images=[Image.new(mode, size, (0, 0, 0))])
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kw["exif"] = exif.tobytes()
    if progressive:
        kw.update(progressive=True, quality=90)
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def rater(worker: str) -> str:
    """SPEC §3 / docs: "R" + first 16 hex digits of HMAC-SHA256(key, WorkerId)."""
    return "R" + hmac.new(KEY, worker.encode(), hashlib.sha256).hexdigest()[:16]


# --------------------------------------------------------------------------------------------
# The release: 7 HITs of 10 images
# --------------------------------------------------------------------------------------------
N_HITS = 7
SPLIT_OF_HIT = ["train", "train", "train", "train", "validation", "test", "test"]


def photo(h: int, i: int) -> tuple[str, int, int, str]:
    return 1 + (h + i) % 9, 7000 + 13 * h, 20_000_000_000 + 1000 * h + i, f"{(h * 31 + i) * 104729:010x}"


def image_name(h: int, i: int) -> str:
    farm, server, pid, secret = photo(h, i)
    return f"farm{farm}_{server}_{pid}_{secret}_b.jpg"


def image_url(h: int, i: int) -> str:
    """http or https, some with a query string; in HIT 4 the other forms of a Flickr static URL of
    the same photo: another size suffix, none, the c<n> CDN host, the farm-less live host, no scheme."""
    farm, server, pid, secret = photo(h, i)
    scheme = "http" if (h + i) % 2 else "https"
    query = "?zz=1" if i % 4 == 0 else ""
    variants = {1: f"https://farm{farm}.staticflickr.com/{server}/{pid}_{secret}_z.jpg",
                2: f"https://farm{farm}.staticflickr.com/{server}/{pid}_{secret}.jpg?zz=1",
                3: f"https://c1.staticflickr.com/{farm}/{server}/{pid}_{secret}_b.jpg",
                5: f"https://live.staticflickr.com/{server}/{pid}_{secret}_b.jpg",
                6: f"//farm{farm}.staticflickr.com/{server}/{pid}_{secret}_b.jpg"}
    if h == 4 and i in variants:
        return variants[i]
    return f"{scheme}://farm{farm}.staticflickr.com/{server}/{pid}_{secret}_b.jpg{query}"


@dataclass
class Plan:
    rows: list[Assignment]
    images: dict[str, bytes]
    expect_flags: dict[str, set[str]]
    expect_size: dict[str, tuple[int, int, int]]   # upright width, height, exif orientation
    missing: set[str]
    corrupt: set[str]
    unrated: set[str]
    rejected_rows: list[int]
    duplicate_rows: dict[int, int]                 # excluded row → kept row
    kept_rows: list[int]


def make_plan(seed: int = 7) -> Plan:
    rng = random.Random(seed)
    rows: list[Assignment] = []
    t0 = dt.datetime(2015, 6, 1, 17, 0, 0)
    score_fmt = [lambda s: str(s), lambda s: f"{s}.0", lambda s: f" {s} ", lambda s: f"{s}.00"]
    vote_fmt = {-1: ["-1", " -1", "-1.0"], 0: ["0", "0.0", " 0 "], 1: ["1", "+1", "1.0", " 1"]}
    rejected_rows, duplicate_rows = [], {}
    for h in range(N_HITS):
        hit = f"3{h}XK9RZQ2T8VB{h:03d}"
        n_assign = {2: 4, 3: 6}.get(h, 5)                       # HIT 2: only 4; HIT 3: 6 approved
        workers = [WORKERS[(h + j) % len(WORKERS)] for j in range(n_assign)]
        for j, w in enumerate(workers):
            scores, votes = [], []
            for i in range(1, 11):
                s = rng.randint(1, 5)
                scores.append(rng.choice(score_fmt)(s))
                vs = []
                for k in range(11):
                    v = rng.choice((-1, 0, 0, 1))
                    text = rng.choice(vote_fmt[v])
                    if (h, j, i, k) in {(0, 1, 3, 4), (5, 2, 7, 0), (5, 3, 7, 0), (5, 4, 7, 0), (5, 0, 7, 0),
                                        (5, 1, 7, 0)}:
                        text = ""                                  # blank vote (all of slot 7's in HIT 5)
                    vs.append(text)
                votes.append(vs)
            status = ("Approved", "Submitted")[(h + j) % 2]
            rows.append(Assignment(hit, w, status, t0 + dt.timedelta(hours=h, minutes=5 * j),
                                   [image_url(h, i) for i in range(1, 11)], scores, votes))
        if h in (1, 4):                                          # a rejected extra assignment full of junk
            junk = Assignment(hit, WORKERS[(h + 6) % len(WORKERS)], "Rejected", t0 + dt.timedelta(hours=h, minutes=40),
                              [image_url(h, i) for i in range(1, 11)], ["9"] * 10, [["7"] * 11 for _ in range(10)])
            rows.append(junk)
            rejected_rows.append(len(rows))
        if h == 0:                                               # the same worker submits HIT 0 twice, later
            again = Assignment(hit, workers[2], "Submitted", t0 + dt.timedelta(hours=3),
                               [image_url(h, i) for i in range(1, 11)], ["1"] * 10, [["0"] * 11 for _ in range(10)])
            rows.append(again)
            duplicate_rows[len(rows)] = 3
    # HIT 6 twice by one worker, the later row being the EARLIER submission: that one is kept.
    first6 = next(k for k, r in enumerate(rows, start=1) if r.hit.endswith("006"))
    earlier = Assignment(rows[first6 - 1].hit, rows[first6 - 1].worker, "Approved",
                         rows[first6 - 1].submit_utc - dt.timedelta(minutes=30),
                         list(rows[first6 - 1].urls), ["5"] * 10, [["1"] * 11 for _ in range(10)])
    rows.append(earlier)
    duplicate_rows[first6] = len(rows)
    excluded = set(rejected_rows) | set(duplicate_rows)
    kept_rows = [k for k in range(1, len(rows) + 1) if k not in excluded]

    images, flags, sizes = {}, {}, {}
    special = {
        (0, 1): ("RGB", "JPEG", {"progressive": True}, set()),
        (0, 2): ("CMYK", "JPEG", {}, {"cmyk"}),
        (0, 3): ("L", "JPEG", {}, {"grayscale"}),
        (0, 4): ("RGB", "PNG", {}, {"png_bytes"}),
        (0, 5): ("RGBA", "PNG", {}, {"alpha", "png_bytes"}),
        (0, 6): ("I;16", "PNG", {}, {"grayscale", "png_bytes"}),
        (0, 7): ("P", "PNG", {}, {"palette", "png_bytes"}),
        (0, 8): ("RGB", "MPO", {}, set()),                      # JPEG data, so no *_bytes flag
    }
    for o in range(1, 9):
        special[(1, o)] = ("RGB", "JPEG", {"orientation": o}, {"exif_rotated"} if o != 1 else set())
    for h in range(N_HITS):
        for i in range(1, 11):
            name = image_name(h, i)
            w, ht = 24 + i, 12 + h
            mode, fmt, kw, fl = special.get((h, i), ("RGB", "JPEG", {}, set()))
            images[name] = encode(mode, (w, ht), fmt, **kw)
            flags[name] = set(fl)
            o = kw.get("orientation", 1)
            sizes[name] = (ht, w, o) if o in (5, 6, 7, 8) else (w, ht, o)
    missing = {image_name(2, 5)}
    del images[image_name(2, 5)]
    good = encode("RGB", (64, 48), "JPEG")
    images[image_name(2, 6)] = good[: len(good) * 2 // 3]         # truncated
    images[image_name(2, 7)] = b""                                # zero bytes
    images[image_name(2, 8)] = b"<html>404 Not Found</html>"      # not an image at all
    corrupt = {image_name(2, 6), image_name(2, 7), image_name(2, 8)}
    unrated = {"farm3_1234_99999999999_deadbeef00_b.jpg", "farm4_77_12345_cafe_b.jpg"}
    for name in unrated:
        images[name] = encode("RGB", (10, 10), "JPEG")
    return Plan(rows, images, flags, sizes, missing, corrupt, unrated, rejected_rows, duplicate_rows, kept_rows)


def csv_rows(plan: Plan) -> list[dict[str, str]]:
    out = []
    for k, a in enumerate(plan.rows, start=1):
        r = {
            "HITId": a.hit, "HITTypeId": "3AESTHETICTYPE00", "Title": "Rate the aesthetics of 10 photos",
            "Description": 'Rate 10 photos, then say why: "light", "colour",\nor "content"',
            "Keywords": "image, rating",
            "Reward": "$0.10", "CreationTime": amt_time(dt.datetime(2015, 6, 1, 16, 0)), "MaxAssignments": "5",
            "RequesterAnnotation": "BatchId:2044917;", "AssignmentDurationInSeconds": "3600",
            "AutoApprovalDelayInSeconds": "259200", "Expiration": amt_time(dt.datetime(2015, 6, 8, 16, 0)),
            "NumberOfSimilarHITs": "", "LifetimeInSeconds": "", "AssignmentId": f"3ASSIGN{k:05d}ZZ",
            "WorkerId": (" " + a.worker if k % 5 == 0 else a.worker), "AssignmentStatus": a.status,
            "AcceptTime": amt_time(a.submit_utc - dt.timedelta(minutes=4)), "SubmitTime": amt_time(a.submit_utc),
            "AutoApprovalTime": amt_time(a.submit_utc + dt.timedelta(days=3)),
            "ApprovalTime": amt_time(a.submit_utc + dt.timedelta(days=1)) if a.status == "Approved" else "",
            "RejectionTime": amt_time(a.submit_utc + dt.timedelta(days=1)) if a.status == "Rejected" else "",
            "RequesterFeedback": "random answers" if a.status == "Rejected" else "", "WorkTimeInSeconds": "241",
            "LifetimeApprovalRate": "98% (49/50)", "Last30DaysApprovalRate": "100% (10/10)",
            "Last7DaysApprovalRate": "0% (0/0)", "Approve": "", "Reject": "",
        }
        for i in range(1, 11):
            r[f"Input.image_url{i}"] = a.urls[i - 1]
            r[f"Answer.overallScore{i}"] = a.scores[i - 1]
            for s, v in zip(STEMS, a.votes[i - 1]):
                r[f"Answer.{s}{i}"] = v
        out.append(r)
    return out


def columns(seed: int) -> list[str]:
    rng = random.Random(seed)
    answers = [f"Input.image_url{i}" for i in range(1, 11)] + [f"Answer.overallScore{i}" for i in range(1, 11)] + \
        [f"Answer.{s}{i}" for s in STEMS for i in range(1, 11)]
    cols = AMT_STANDARD + answers
    rng.shuffle(cols)
    return cols + TRAILING


def num(text: str) -> int:
    return int(float(text.strip()))


def expected_ratings(plan: Plan) -> pd.DataFrame:
    recs = []
    for k in plan.kept_rows:
        a = plan.rows[k - 1]
        for i in range(1, 11):
            name = image_name(int(a.hit[1]), i)
            if name in plan.missing or name in plan.corrupt:
                continue
            rec = {"image_id": name, "rater_id": rater(a.worker), "batch_id": a.hit, "score": num(a.scores[i - 1])}
            for attr, v in zip(ATTRS, a.votes[i - 1]):
                rec[attr] = num(v) if v.strip() else None
            rec["submit_time"] = pd.Timestamp(a.submit_utc)
            recs.append(rec)
    return pd.DataFrame(recs)


MOVED = image_name(0, 9)   # a train image whose Light label sits in the TestNew Light file


def write_labels(root: Path, exp_images: pd.DataFrame, *, drop: str, disagree: str) -> dict[str, tuple[str, int]]:
    """Label files from the expected means, in varied number formats and line endings; ``drop`` is
    in no label file; ``disagree``'s score label is wrong. Returns where the wrong line is."""
    (root / LBL_DIR).mkdir()
    formats = ["{:.6f}", "{:.3f}", "{:.4e}", "{:.5f}"]
    where = {}
    for split, sname in (("train", "Train"), ("validation", "Validation"), ("test", "TestNew")):
        part = exp_images[(exp_images["split"] == split) & (exp_images["image_id"] != drop)]
        for f, (col, lname) in enumerate([("score", "score"), *zip(ATTRS, LABEL_NAMES)]):
            fmt = formats[f % len(formats)]
            lines = []
            for r in part.itertuples(index=False):
                v = getattr(r, col)
                if np.isnan(v):
                    continue                     # nobody voted: no mean to publish
                if col == "light" and r.image_id == MOVED:
                    continue                     # written into the test split's Light file below
                if col == "score" and r.image_id == disagree:
                    v = min(1.0, v + 0.25)
                    where["line"] = (f"{LBL_DIR}/imgList{sname}Regression_score.txt", len(lines) + 1)
                lines.append(f"{r.image_id} {fmt.format(v)}" + ("  " if f % 3 == 0 else ""))
            if col == "light" and split == "test":
                v = exp_images.loc[exp_images["image_id"] == MOVED, "light"].item()
                lines.append(f"{MOVED} {fmt.format(v)}")
                where["moved"] = (f"{LBL_DIR}/imgList{sname}Regression_Light.txt", len(lines))
            if col == "score" and split == "train":
                lines.append("farm8_1_424242_0badc0ffee_b.jpg 0.5")   # a label for an image with no file
                where["nofile"] = (f"{LBL_DIR}/imgList{sname}Regression_score.txt", len(lines))
            eol = "\r\n" if f % 2 else "\n"
            text = eol.join(lines) + (eol if f % 4 != 3 else "")
            (root / LBL_DIR / f"imgList{sname}Regression_{lname}.txt").write_bytes(text.encode())
    return where


def expected_images(ratings: pd.DataFrame) -> pd.DataFrame:
    g = ratings.groupby("image_id")
    exp = pd.DataFrame({"score_mean": g["score"].mean(), "n_ratings": g.size()})
    for a in ATTRS:
        exp[a] = g[a].apply(lambda s: s.dropna().astype(float).mean() if s.notna().any() else np.nan)
    exp["score"] = (exp["score_mean"] - 1) / 4
    exp = exp.reset_index()
    hit_of = ratings.drop_duplicates("image_id").set_index("image_id")["batch_id"]
    order = sorted(ratings["batch_id"].unique())
    exp["split"] = [SPLIT_OF_HIT[order.index(hit_of[n])] for n in exp["image_id"]]
    return exp


@pytest.fixture(scope="module")
def third_party(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("third_party")
    plan = make_plan()
    root = tmp / "release"
    (root / IMG_DIR).mkdir(parents=True)
    write_csv(root / CSV_NAME, columns(3), csv_rows(plan), bom=True, eol="\r\n", trailing_newline=False)
    for name, data in plan.images.items():
        (root / IMG_DIR / name).write_bytes(data)
    ratings = expected_ratings(plan)
    exp = expected_images(ratings)
    drop, disagree = image_name(3, 2), image_name(5, 4)
    where = write_labels(root, exp, drop=drop, disagree=disagree)
    out = tmp / "curated"
    curate(root, out, key=KEY, workers=2, progress=False)            # default: on_bad_value="error"
    report = json.loads((out / "curation_report.json").read_text())
    got_r = pd.read_parquet(out / "ratings.parquet")
    got_i = pd.read_parquet(out / "images.parquet").set_index("image_id")
    return dict(plan=plan, root=root, out=out, report=report, ratings=got_r, images=got_i, exp_r=ratings,
                exp_i=exp.set_index("image_id"), drop=drop, disagree=disagree, where=where)


def _entries(report, reason, **match):
    return [e for e in report["entries"] if e["reason"] == reason and all(e[k] == v for k, v in match.items())]


def test_kept_ratings_are_exactly_the_usable_ones(third_party):
    got, exp = third_party["ratings"], third_party["exp_r"]
    key = ["image_id", "rater_id"]
    got = got.sort_values(key).reset_index(drop=True)
    exp = exp.sort_values(key).reset_index(drop=True)
    assert len(got) == len(exp) == 35 * 10 - 4 * 4   # 35 kept rows; HIT 2 (4 raters) has 1 missing + 3 corrupt images
    assert got[["image_id", "rater_id", "batch_id"]].equals(exp[["image_id", "rater_id", "batch_id"]])
    assert (got["score"].to_numpy() == exp["score"].to_numpy()).all()
    for a in ATTRS:
        g = got[a].astype("float").to_numpy()
        e = exp[a].astype("float").to_numpy()
        assert np.array_equal(np.isnan(g), np.isnan(e)), a
        assert np.array_equal(g[~np.isnan(g)], e[~np.isnan(e)]), a
    assert (got["submit_time"].to_numpy() == exp["submit_time"].to_numpy()).all()
    # The same worker across several HITs keeps one rater ID.
    w = WORKERS[3]
    assert got.loc[got["rater_id"] == rater(w), "batch_id"].nunique() >= 3


def test_image_table_values(third_party):
    got, exp, plan = third_party["images"], third_party["exp_i"], third_party["plan"]
    assert sorted(got.index) == sorted(exp.index)
    e = exp.loc[got.index]
    assert np.allclose(got["score_mean"], e["score_mean"], rtol=0, atol=1e-12)
    assert np.allclose(got["score"], e["score"], rtol=0, atol=1e-12)
    assert (got["n_ratings"] == e["n_ratings"]).all()
    for a in ATTRS:
        assert np.allclose(got[a].astype(float), e[a].astype(float), rtol=0, atol=1e-12, equal_nan=True), a
    assert np.isnan(got.loc[image_name(5, 7), "balancing_elements"])     # every vote blank: no mean
    assert (got["split"] == e["split"]).all()
    for name in got.index:
        w, h, o = plan.expect_size[name]
        assert (got.loc[name, "width"], got.loc[name, "height"], got.loc[name, "exif_orientation"]) == (w, h, o), name
        flags = set(filter(None, got.loc[name, "flags"].split(";")))
        want = set(plan.expect_flags[name])
        if name == third_party["drop"]:
            want.add("no_label")
        if name == third_party["disagree"]:
            want.add("label_mismatch")
        assert flags == want, name
    h, i = 0, 4
    assert got.loc[image_name(h, i), "source_url"] == image_url(h, i)
    assert got.loc[image_name(h, i), "path"] == f"{IMG_DIR}/{image_name(h, i)}"


def test_rows_excluded_with_location(third_party):
    report, plan = third_party["report"], third_party["plan"]
    status = report["row_status"]
    assert len(status) == len(plan.rows)
    for k in plan.rejected_rows:
        assert status[k - 1] == "rejected"
        assert _entries(report, "rejected", row=k, column="AssignmentStatus", file=CSV_NAME)
    for k, kept in plan.duplicate_rows.items():
        assert status[k - 1] == "duplicate_submission"
        (e,) = _entries(report, "duplicate_submission", row=k)
        assert f"row {kept}" in e["detail"]
        assert status[kept - 1] == "kept"
    assert [k for k, s in enumerate(status, start=1) if s == "kept"] == plan.kept_rows
    # The junk answers of rejected rows are not bad values (the run used the default error mode).
    assert not _entries(report, "score_out_of_range") and not _entries(report, "invalid_vote")


def test_other_forms_of_a_flickr_url_find_the_release_file(third_party):
    report, got = third_party["report"], third_party["images"]
    for i in (1, 2, 3, 5, 6):
        name = image_name(4, i)
        assert got.loc[name, "n_ratings"] == 5 and got.loc[name, "source_url"] == image_url(4, i), i
    mapped = {e["image_id"]: e for e in _entries(report, "url_variant")}
    assert set(mapped) == {image_name(4, i) for i in (1, 2, 5)}      # the others map by name already
    e = mapped[image_name(4, 5)]
    assert (e["file"], e["row"], e["column"]) == (CSV_NAME, 23, "Input.image_url5")
    assert image_url(4, 5).startswith(e["value"].rstrip("…"))    # values are shortened to 60 characters


def test_images_missing_corrupt_unrated_reported(third_party):
    report, plan = third_party["report"], third_party["plan"]
    for name in plan.missing:
        assert _entries(report, "missing_file", image_id=name)
        assert report["image_status"][name] == "excluded:missing_file"
        n_kept_rows_hit2 = 4
        assert len(_entries(report, "image_missing", image_id=name)) == n_kept_rows_hit2
    for name in plan.corrupt:
        (e,) = _entries(report, "corrupt_file", image_id=name)
        assert e["file"] == f"{IMG_DIR}/{name}" and e["detail"]
        assert report["image_status"][name] == "excluded:corrupt_file"
    for name in plan.unrated:
        assert _entries(report, "no_ratings", image_id=name)
        assert report["image_status"][name] == "reported:no_ratings"
    imgs = report["images"]
    assert imgs["files"] == len(plan.images) == imgs["kept"] + imgs["corrupt"] + imgs["no_ratings"]
    assert (imgs["kept"], imgs["missing_file"], imgs["corrupt"], imgs["no_ratings"]) == (66, 1, 3, 2)


def test_label_findings(third_party):
    report, where = third_party["report"], third_party["where"]
    file, row = where["line"]
    (e,) = _entries(report, "label_disagrees")
    assert (e["file"], e["row"], e["image_id"], e["column"]) == (file, row, third_party["disagree"], "score")
    file, row = where["nofile"]
    (e,) = _entries(report, "label_without_image")
    assert (e["file"], e["row"], e["image_id"]) == (file, row, "farm8_1_424242_0badc0ffee_b.jpg")
    assert not _entries(report, "malformed_label_line")
    file, row = where["moved"]
    (e,) = _entries(report, "label_split_disagrees")
    assert (e["file"], e["row"], e["image_id"], e["column"]) == (file, row, MOVED, "light")
    assert third_party["images"].loc[MOVED, "split"] == "train"
    # Rounded, scientific and padded labels of every other image agree with the ratings.
    assert not [x for x in report["entries"] if x["reason"] == "label_disagrees" and x["image_id"] !=
                third_party["disagree"]]


def test_counts_add_up(third_party):
    report, plan = third_party["report"], third_party["plan"]
    assert all(a["balanced"] for a in report["accounting"].values())
    csv = report["csv"]
    assert csv["rows_total"] == len(plan.rows)
    assert csv["rows_kept"] == len(plan.kept_rows)
    assert csv["rows_excluded"] == {"duplicate_submission": 2, "rejected": 2}
    assert csv["answers"]["kept"] == len(third_party["ratings"])
    assert sum(csv["answers"].values()) == 10 * len(plan.kept_rows)
    assert report["summary"]["batches"] == N_HITS
    odd = {e["value"]: e for e in _entries(report, "unusual_rater_count")}
    assert sorted(odd) == [plan.rows[12].hit, plan.rows[16].hit]       # HIT 2 (4 raters), HIT 3 (6)
    assert "4 distinct raters" in odd[plan.rows[12].hit]["detail"] and odd[plan.rows[12].hit]["row"] == 13
    assert "6 distinct raters" in odd[plan.rows[16].hit]["detail"]
    assert report["summary"]["raters"] == third_party["ratings"]["rater_id"].nunique() == len(WORKERS)


def test_no_worker_id_or_key_in_any_output_byte(third_party):
    out = third_party["out"]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"images.parquet", "ratings.parquet", "manifest.json",
                                       "curation_report.json", "curation_report.md"}
    for p in files:
        data = p.read_bytes()
        assert KEY not in data and KEY.hex().encode() not in data, p
        for w in WORKERS:
            assert w.encode() not in data, (p, w)
        assert b"3ASSIGN" not in data, p


# --------------------------------------------------------------------------------------------
# Format variants of the CSV that must not change the result
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bom,eol,trailing,seed", [(False, "\n", True, 11), (True, "\n", False, 12),
                                                  (False, "\r\n", True, 13)])
def test_csv_encoding_variants_give_the_same_tables(third_party, tmp_path, bom, eol, trailing, seed):
    plan = third_party["plan"]
    root = tmp_path / "release"
    (root / IMG_DIR).mkdir(parents=True)
    write_csv(root / CSV_NAME, columns(seed), csv_rows(plan), bom=bom, eol=eol, trailing_newline=trailing)
    for name, data in plan.images.items():
        (root / IMG_DIR / name).write_bytes(data)
    res = curate(root, tmp_path / "out", key=KEY, workers=1, progress=False)
    got = pd.read_parquet(tmp_path / "out" / "ratings.parquet")
    ref = third_party["ratings"]
    k = ["image_id", "rater_id"]
    pd.testing.assert_frame_equal(got.sort_values(k).reset_index(drop=True), ref.sort_values(k).reset_index(drop=True))
    assert res.split_method == "batch_hash" and res.n_images == 66


# --------------------------------------------------------------------------------------------
# Bad values: error (default) through the CLI, exclude on request
# --------------------------------------------------------------------------------------------
def _small_release(root: Path, edit) -> tuple[Path, Plan]:
    plan = make_plan(seed=5)
    plan.rows = plan.rows[:5]                      # HIT 0 only
    edit(plan.rows)
    (root / IMG_DIR).mkdir(parents=True)
    write_csv(root / CSV_NAME, columns(1), csv_rows(plan), bom=True, eol="\r\n", trailing_newline=True)
    for i in range(1, 11):
        (root / IMG_DIR / image_name(0, i)).write_bytes(plan.images[image_name(0, i)])
    return root, plan


def _cli(*args, key_file: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aadb_toolkit", "curate", *map(str, args), "--key-file",
                           str(key_file), "--no-progress", "--workers", "1"], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("cell,value,what", [
    ("Answer.overallScore4", "6", "out of range"),
    ("Answer.overallScore4", "four", "not a number"),
    ("Answer.overallScore4", "3.5", "out of range"),
    ("Answer.light4", "2", "not -1, 0 or +1"),
    ("Answer.light4", "yes", "not -1, 0 or +1"),
])
def test_cli_bad_value_one_line_error_no_output(tmp_path, cell, value, what):
    def edit(rows):
        slot = int(cell[-1]) - 1
        if "overallScore" in cell:
            rows[2].scores[slot] = value
        else:
            rows[2].votes[slot][STEMS.index("light")] = value
    root, plan = _small_release(tmp_path / "release", edit)
    out = tmp_path / "curated"
    proc = _cli("--release", root, "--out", out, key_file=tmp_path / "k.key")
    assert proc.returncode == 1, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert CSV_NAME in lines[0] and "row 3" in lines[0] and repr(cell) in lines[0] and what in lines[0], lines[0]
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["release"]   # no output, and no key created
    for w in WORKERS:
        assert w not in proc.stderr


def test_cli_missing_column_and_older_output_kept(tmp_path):
    root, plan = _small_release(tmp_path / "release", lambda rows: None)
    out = tmp_path / "curated"
    ok = _cli("--release", root, "--out", out, key_file=tmp_path / "k.key")
    assert ok.returncode == 0, ok.stderr
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    text = (root / CSV_NAME).read_bytes().decode("utf-8-sig")
    (root / CSV_NAME).write_text(text.replace('"Answer.symmetry7"', '"Answer.symetry7"'), encoding="utf-8")
    proc = _cli("--release", root, "--out", out, key_file=tmp_path / "k.key")
    assert proc.returncode == 1
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "row 0" in lines[0] and "'Answer.symmetry7'" in lines[0], proc.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not [p for p in tmp_path.iterdir() if p.name not in {"release", "curated", "k.key"}]


def test_cli_row_with_too_few_fields_is_an_error(tmp_path):
    """pandas would pad the short row with blanks, which would read as empty image slots."""
    root, plan = _small_release(tmp_path / "release", lambda rows: None)
    lines = (root / CSV_NAME).read_bytes().split(b"\r\n")
    lines[4] = lines[4].rsplit(b",", 30)[0]                       # row 4 loses its last 30 fields
    (root / CSV_NAME).write_bytes(b"\r\n".join(lines))
    proc = _cli("--release", root, "--out", tmp_path / "curated", key_file=tmp_path / "k.key")
    assert proc.returncode == 1
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and CSV_NAME in lines[0] and "row 4" in lines[0] and "fields" in lines[0], proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["release"]


def test_exclude_mode_keeps_the_rest_exactly(tmp_path):
    def edit(rows):
        rows[1].scores[0] = "0"
        rows[3].votes[9][10] = "+2"
        rows[4].scores[5] = "n/a"
    root, plan = _small_release(tmp_path / "release", edit)
    res = curate(root, tmp_path / "out", key=KEY, workers=1, progress=False, on_bad_value="exclude")
    got = pd.read_parquet(tmp_path / "out" / "ratings.parquet")
    assert len(got) == 50 - 3 == res.n_ratings
    bad = {(rater(plan.rows[1].worker), image_name(0, 1)), (rater(plan.rows[3].worker), image_name(0, 10)),
           (rater(plan.rows[4].worker), image_name(0, 6))}
    assert not bad & set(zip(got["rater_id"], got["image_id"]))
    (e,) = _entries(res.report, "score_out_of_range")
    assert (e["row"], e["column"], e["value"]) == (2, "Answer.overallScore1", "0")
    (e,) = _entries(res.report, "invalid_vote")
    assert (e["row"], e["column"], e["value"]) == (4, "Answer.vividColor10", "+2")
    (e,) = _entries(res.report, "non_numeric_score")
    assert (e["row"], e["column"], e["value"]) == (5, "Answer.overallScore6", "n/a")


def test_two_url_forms_of_one_photo_in_one_assignment(tmp_path):
    def edit(rows):
        farm, server, pid, secret = photo(0, 1)
        rows[1].urls[1] = f"https://farm{farm}.staticflickr.com/{server}/{pid}_{secret}_z.jpg"
    root, plan = _small_release(tmp_path / "release", edit)
    res = curate(root, tmp_path / "out", key=KEY, workers=1, progress=False)
    got = pd.read_parquet(tmp_path / "out" / "ratings.parquet")
    assert len(got) == 49 and not got.duplicated(["image_id", "rater_id"]).any()
    (e,) = _entries(res.report, "duplicate_image_in_assignment")
    assert (e["row"], e["column"], e["image_id"]) == (2, "Input.image_url2", image_name(0, 1))
    assert got.loc[(got["rater_id"] == rater(plan.rows[1].worker)) & (got["image_id"] == image_name(0, 1)),
                   "score"].tolist() == [num(plan.rows[1].scores[0])]


def test_concatenated_batch_files_repeat_the_header(tmp_path):
    """Two AMT batch-results downloads pasted into one file: the second header line is a row that
    is excluded and reported, not a bad value (the default error mode must not stop on it)."""
    root, plan = _small_release(tmp_path / "release", lambda rows: None)
    lines = (root / CSV_NAME).read_bytes().split(b"\r\n")
    lines.insert(4, lines[0].removeprefix(b"\xef\xbb\xbf"))                    # becomes row 4
    lines.insert(2, b"   ")              # a whitespace-only line is no row (pandas skips it, so must the count)
    (root / CSV_NAME).write_bytes(b"\r\n".join(lines))
    res = curate(root, tmp_path / "out", key=KEY, workers=1, progress=False)
    assert res.n_ratings == 50
    assert res.report["row_status"][3] == "repeated_header"
    assert _entries(res.report, "repeated_header", row=4, column="HITId")
    assert res.report["csv"]["rows_total"] == 6 and res.report["csv"]["rows_kept"] == 5


def test_cli_exclude_mode_curates_and_prints_a_summary(tmp_path):
    def edit(rows):
        rows[2].scores[3] = "6"
    root, plan = _small_release(tmp_path / "release", edit)
    proc = _cli("--release", root, "--out", tmp_path / "curated", "--on-bad-value", "exclude",
                key_file=tmp_path / "k.key")
    assert proc.returncode == 0, proc.stderr
    assert "curated 10 images, 49 ratings, 1 batches, 5 raters" in proc.stdout
    assert len(pd.read_parquet(tmp_path / "curated" / "ratings.parquet")) == 49
    assert not [w for w in WORKERS if w in proc.stdout + proc.stderr]

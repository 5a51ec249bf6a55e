"""Benchmark: curation of a full-size release (10,000 images, 50,000 ratings).

Measures, in one run on the same release:
  1. the whole ``curate`` (CSV, image decoding in worker processes, labels, report, writing);
  2. the CSV stage (read → validate → wide-to-long answers) of the vectorised curator against a
     naive row-by-row pandas baseline (``DataFrame.iterrows`` with per-cell parsing) that computes
     the same kept answers; the ratio baseline / vectorised is the figure of merit;
  3. the image checks with 1 worker against the default number of workers.

The release is written by ``aadb_toolkit.simulate`` (a synthetic release in the real format) and
reused when it already exists.

    python benchmarks/bench_curate.py                   # full size
    python benchmarks/bench_curate.py --images 1000     # quick
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

from aadb_toolkit import schema
from aadb_toolkit.curate import curate
from aadb_toolkit.curate import _images, _raw
from aadb_toolkit.curate._ledger import Ledger

_FLICKR = re.compile(r"^https?://farm(\d+)\.static\.?flickr\.com/([^/?#]+)/([^/?#]+)")


def naive_answers(csv_path: Path, cols: _raw.AnswerColumns) -> pd.DataFrame:
    """The baseline: the same validation, row by row with ``iterrows`` and per-cell Python parsing."""
    df = pd.read_csv(csv_path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    slots = sorted(int(c[len("Input.image_url"):]) for c in df.columns if c.startswith("Input.image_url"))
    first_submit: dict[tuple[str, str], tuple[pd.Timestamp, int]] = {}
    rows = []
    for idx, row in df.iterrows():
        worker, hit = row["WorkerId"].strip(), row["HITId"].strip()
        if not worker or not hit or row["AssignmentStatus"].strip().lower() == "rejected":
            continue
        t = _raw._parse_time(row["SubmitTime"])
        rows.append((idx, worker, hit, t))
    order = sorted(rows, key=lambda r: (r[3] if r[3] is not None else pd.Timestamp.max, r[0]))
    for idx, worker, hit, t in order:
        first_submit.setdefault((worker, hit), (t, idx))
    keep = {v[1] for v in first_submit.values()}
    out = []
    for idx, row in df.iterrows():
        if idx not in keep:
            continue
        for i in slots:
            url = row[f"Input.image_url{i}"].strip()
            text = row[f"{cols.score_prefix}{i}"].strip()
            if not url:
                continue
            try:
                score = float(text)
            except ValueError:
                continue
            if score != int(score) or not schema.SCORE_MIN <= score <= schema.SCORE_MAX:
                continue
            votes, bad = {}, False
            for a, prefix in cols.attribute_prefixes.items():
                v = row[f"{prefix}{i}"].strip()
                if v == "":
                    votes[a] = None
                    continue
                try:
                    x = float(v)
                except ValueError:
                    bad = True
                    break
                if x not in (-1.0, 0.0, 1.0):
                    bad = True
                    break
                votes[a] = int(x)
            if bad:
                continue
            m = _FLICKR.match(url)
            name = f"farm{m.group(1)}_{m.group(2)}_{m.group(3)}" if m else url.rsplit("/", 1)[-1]
            out.append({"row": idx + 1, "slot": i, "image_id": name, "score": int(score), **votes})
    return pd.DataFrame(out)


def vectorised_answers(csv_path: Path, cols: _raw.AnswerColumns) -> pd.DataFrame:
    """The curator's CSV stage (the same calls ``curate`` makes)."""
    ledger = Ledger()
    df = _raw.read_results_csv(csv_path)
    slots = _raw.find_slots(df, cols, str(csv_path))
    ledger.redact = set(df["WorkerId"].str.strip())
    rows = _raw.assignment_rows(df, csv_path.name, ledger)
    ans = _raw.answer_cells(df, rows, slots, cols, csv_path.name, "exclude", ledger)
    return ans[ans["reason"] == "kept"]


def timed(fn, *args, **kw):
    t = time.perf_counter()
    value = fn(*args, **kw)
    return value, time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "aadb_bench_curate")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    release = args.workdir / f"release_{args.images}_{args.seed}"
    if not (release / schema.RELEASE_RAW_RESULTS).is_file():
        from aadb_toolkit.simulate import simulate

        print(f"writing a synthetic release of {args.images} images to {release} ...", flush=True)
        _, t_sim = timed(simulate, release, n_images=args.images, seed=args.seed)
        print(f"  simulate: {t_sim:.1f} s")
    out = args.workdir / "curated"
    if out.exists():
        shutil.rmtree(out)
    key = b"benchmark-key-not-a-secret-0123"

    result, t_full = timed(curate, release, out, key=key, workers=args.workers, progress=False)
    cols = _raw.AnswerColumns.from_mapping(None)
    csv_path = release / schema.RELEASE_RAW_RESULTS
    fast, t_fast = timed(vectorised_answers, csv_path, cols)
    slow, t_slow = timed(naive_answers, csv_path, cols)
    same = (len(fast) == len(slow)
            and fast[["row", "slot", "score"]].astype(int).sort_values(["row", "slot"]).to_numpy().tolist()
            == slow[["row", "slot", "score"]].astype(int).sort_values(["row", "slot"]).to_numpy().tolist())
    files, _ = _images.list_image_files(release)
    _, t_img1 = timed(_images.check_images, release, files, workers=1, progress=False)
    nw = args.workers or _images.default_workers()
    _, t_imgn = timed(_images.check_images, release, files, workers=nw, progress=False)

    figures = {
        "images": result.n_images, "ratings": result.n_ratings, "csv_rows": result.report["csv"]["rows_total"],
        "cpu_count": os.cpu_count(), "workers": nw,
        "curate_total_s": round(t_full, 2),
        "csv_stage_vectorised_s": round(t_fast, 3), "csv_stage_naive_iterrows_s": round(t_slow, 3),
        "csv_stage_speedup": round(t_slow / t_fast, 1), "same_answers": bool(same),
        "image_checks_1_worker_s": round(t_img1, 2), f"image_checks_{nw}_workers_s": round(t_imgn, 2),
        "image_checks_speedup": round(t_img1 / t_imgn, 2),
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    if not same:
        raise SystemExit("the baseline and the curator disagree on the kept answers")


if __name__ == "__main__":
    main()

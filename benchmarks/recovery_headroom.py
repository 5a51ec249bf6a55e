"""Headroom of the recovery suite's branch rows: how much *any* head on the suite's frozen
features could gain from the attribute labels or from the content type, measured with closed-form
ridge fits on the releases and runs a recovery run kept (``recovery.py --work DIR``).

For every (setting, seed) of the attribute and interaction settings it reads the release and the
Reg+Rank run the suite trained on it, takes the run's features of every image, and fits ridges on
the training split (penalty by 5-fold cross-validation), scored by Spearman's ρ against the
planted quality of the test images:

    scores         the mean scores on the features (what Reg can reach at best)
    via_attributes the attribute labels on the features, then the scores on those 11 predictions
    truth          the planted quality itself on the features (the ceiling of any head on them)
    per_content    scores on the features, plus a per-content-type ridge of the residuals, with
                   the true content labels (the ceiling of a content branch's gate)

A mechanism can only show where ``truth`` (or ``per_content``) is well above ``scores``.

    python benchmarks/recovery.py --quick --seed 300 --work DIR --only attribute_branch content_branch
    python benchmarks/recovery_headroom.py --work DIR --seeds 300 301 302 303 304 305
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from aadb_toolkit import schema, sources
from aadb_toolkit._ranks import spearman
from aadb_toolkit.data import AADBData
from aadb_toolkit.models.predict import predict_features

SETTINGS = ("planted_attributes", "null_attributes", "planted_interaction", "null_interaction")
ALPHAS = (1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0, 1000.0)


def _recovery():
    """benchmarks/recovery.py as a module (its release split and truth paths)."""
    spec = importlib.util.spec_from_file_location("recovery", Path(__file__).with_name("recovery.py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("recovery", mod)
    spec.loader.exec_module(mod)
    return mod


def ridge(x: np.ndarray, y: np.ndarray, alpha: float):
    """Centred ridge with penalty ``alpha`` × the features' mean centred square norm; returns a
    predictor. Solved in the dual (n × n) form: the suite's features are wider than its splits."""
    mu, my = x.mean(0), y.mean(0)
    xc = x - mu
    lam = alpha * float((xc ** 2).sum(1).mean())
    w = xc.T @ np.linalg.solve(xc @ xc.T + lam * np.eye(len(x)), y - my)
    return lambda z: (z - mu) @ w + my


def cv_ridge(x: np.ndarray, y: np.ndarray, folds: int = 5):
    """The ridge whose penalty (of ALPHAS) has the least 5-fold cross-validated squared error."""
    fold = np.arange(len(x)) % folds

    def error(a: float) -> float:
        return sum(float(((ridge(x[fold != k], y[fold != k], a)(x[fold == k]) - y[fold == k]) ** 2).sum())
                   for k in range(folds))
    return ridge(x, y, min(ALPHAS, key=error))


def unit_release(work: Path, setting: str, seed: int, recovery) -> tuple[AADBData, pd.DataFrame]:
    """The curated release of (setting, seed) a recovery run kept, with the suite's split, and its truth."""
    truth = pd.read_parquet(recovery.truth_dir_for(work / f"{setting}_s{seed}") / "images.parquet").set_index("image_id")
    return recovery.with_suite_split(sources.load(work / f"{setting}_s{seed}_curated"), truth, seed), truth


def headroom(features: np.ndarray, images: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float]:
    """ρ on the test images of each ridge of the module docstring (rows of ``features`` = ``images``)."""
    ids = images["image_id"].to_numpy()
    tr, te = (images["split"] == "train").to_numpy(), (images["split"] == "test").to_numpy()
    f, y, q = features.astype(np.float64), images["score"].to_numpy(float), truth.loc[ids, "latent_quality"].to_numpy()
    att = images[list(schema.ATTRIBUTES)].to_numpy(float)
    base = cv_ridge(f[tr], y[tr])(f)
    read = cv_ridge(f[tr], att[tr])(f)
    per_content = base.copy()
    content = truth.loc[ids, "content_type"].to_numpy()
    for c in np.unique(content):
        m = content == c
        if (m & tr).sum() >= 10:  # five folds of at least two images
            per_content[m] += cv_ridge(f[m & tr], y[m & tr] - base[m & tr])(f[m])
    fits = {"scores": base, "via_attributes": cv_ridge(read[tr], y[tr])(read),
            "truth": cv_ridge(f[tr], q[tr])(f), "per_content": per_content}
    return {name: spearman(p[te], q[te])[0] for name, p in fits.items()}


def report(table: pd.DataFrame, data_note: str) -> str:
    """The mean ρ per setting as a Markdown table, each setting's per-seed gain of the mechanism's
    fit (via attributes, or per content) over the scores' ridge, and what the data are."""
    means = table.groupby("setting", sort=False).mean(numeric_only=True).drop(columns="seed")
    lines = ["| setting | seeds | " + " | ".join(means.columns) + " |", "|---|---|" + "---|" * len(means.columns)]
    for setting, row in means.iterrows():
        n = int((table["setting"] == setting).sum())
        lines.append(f"| {setting} | {n} | " + " | ".join(f"{v:.3f}" for v in row) + " |")
    for setting, part in table.groupby("setting", sort=False):
        gain = part["via_attributes" if "attributes" in setting else "per_content"] - part["scores"]
        lines.append(f"{setting}: per-seed gain over the scores' ridge {np.round(gain.to_numpy(), 3).tolist()}")
    return "\n".join([*lines, f"Data: {data_note}."])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, required=True, help="the --work folder of a recovery run")
    ap.add_argument("--seeds", type=int, nargs="+", required=True, help="the seeds that run used")
    args = ap.parse_args(argv)
    recovery, rows = _recovery(), []
    for setting in SETTINGS:
        for seed in args.seeds:
            run = args.work / f"{setting}_s{seed}_reg_rank"
            if not run.is_dir():
                print(f"skipped {setting} seed {seed}: no Reg+Rank run in {args.work}", file=sys.stderr)
                continue
            data, truth = unit_release(args.work, setting, seed, recovery)
            ids = list(data.images["image_id"])
            _, feats = predict_features(run, data, ids, progress=False)
            rows.append({"setting": setting, "seed": seed, **headroom(feats, data.images, truth)})
    if not rows:
        print(f"no recovery run of the attribute or interaction settings in {args.work}", file=sys.stderr)
        return 1
    print(report(pd.DataFrame(rows), recovery.DATA_NOTE))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

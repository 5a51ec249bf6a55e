"""Headroom of the recovery suite's branch rows: how much *any* head on the suite's frozen
features could gain from the attribute labels or from the content type, measured with closed-form
ridge fits on the releases and runs a recovery run kept (``recovery.py --work DIR``).

For every (setting, seed) of the attribute and interaction settings it reads the release and the
ablation's run the suite trained on it (Reg+Rank, or Reg+Rank+Att for the content row), takes the
run's features of every image (the frozen backbone's), and fits ridges on
the training split (penalty by 5-fold cross-validation), scored by Spearman's ρ against the
planted quality of the test images:

    scores         the mean scores on the features (what Reg can reach at best)
    via_attributes the attribute labels on the features, then the scores on those 11 predictions
    truth          the planted quality itself on the features (the ceiling of any head on them)
    per_content    scores on the features, plus a per-content-type ridge of the residuals, with
                   the true content labels (the ceiling of a content branch's gate)

and ``readability``, how well the features show what the photos show: the mean over the 11
attributes of Pearson's r between a ridge's reading of the planted strength and the strength
itself, on the test images. Both branches can only use what the features show.

A mechanism can only show where ``truth`` (or ``per_content``) is well above ``scores``.
Since the attribute row fine-tunes its backbone (recovery.ATTRIBUTE_ROW_RECIPE), its ablation's
features are the fine-tuned Reg+Rank's fc7, not the frozen backbone's: its headroom then describes
what that run learned.

    python benchmarks/recovery.py --quick --seed 300 --work DIR --only attribute_branch content_branch
    python benchmarks/recovery_headroom.py --work DIR --seeds 300 301 302 303 304 305

``--known-features`` asks the converse without any network: on pixel-free releases of N images
(``recovery.draft_release``, the suite's split) with features whose content is known
(:func:`known_features`: the planted strengths plus noise of a given size, the content type and
nuisance dimensions), how large is each branch's headroom, by release size and readability?

    python benchmarks/recovery_headroom.py --known-features --images 800 3200 --noise 0.3 1.0 --seeds 80 81 82
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from aadb_toolkit import schema, sources
from aadb_toolkit._ranks import spearman
from aadb_toolkit.data import AADBData
from aadb_toolkit.models.predict import predict_features

sys.path.insert(0, str(Path(__file__).parent))  # the sibling script, run or loaded by tests
import recovery  # its release split, truth paths and drafts

SETTINGS = ("planted_attributes", "null_attributes", "planted_interaction", "null_interaction")
#: The smallest draft release of --known-features: drafts have no pixels to train a network on,
#: so they may be smaller than the suite's own releases (recovery.MIN_IMAGES).
DRAFT_MIN_IMAGES = 100
ALPHAS = (1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0, 1000.0)


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


def ablation_arm(setting: str, recovery) -> str:
    """The arm whose kept run gives a setting's features: its mechanism's ablation (every arm of a
    release trains on the same frozen backbone features)."""
    return next(m.ablation for m in recovery.MECHANISMS if setting in (m.planted, m.null))


def unit_release(work: Path, setting: str, seed: int, recovery) -> tuple[AADBData, pd.DataFrame]:
    """The curated release of (setting, seed) a recovery run kept, with the suite's split, and its truth."""
    truth = pd.read_parquet(recovery.truth_dir_for(work / f"{setting}_s{seed}") / "images.parquet").set_index("image_id")
    return recovery.with_suite_split(sources.load(work / f"{setting}_s{seed}_curated"), truth, seed), truth


def headroom(features: np.ndarray, images: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float]:
    """ρ on the test images of each ridge of the module docstring, and the features'
    ``readability`` (rows of ``features`` = ``images``)."""
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
    strengths = truth.loc[ids, [f"planted_{a}" for a in schema.ATTRIBUTES]].to_numpy(float)
    seen = cv_ridge(f[tr], strengths[tr])(f[te])
    readability = np.mean([np.corrcoef(seen[:, j], strengths[te, j])[0, 1] for j in range(strengths.shape[1])])
    return {**{name: spearman(p[te], q[te])[0] for name, p in fits.items()}, "readability": float(readability)}


def known_features(rel, seed: int, noise: float, nuisance: int = 40) -> np.ndarray:
    """What a backbone might see of a (draft) release, in its images table's row order: the
    planted strengths plus Gaussian noise of sd ``noise`` (0: perfectly readable), the content type
    as a one-hot, and ``nuisance`` dimensions of pure noise."""
    rng = np.random.default_rng(seed)
    truth = rel.images.loc[rel.data.images["image_id"]]
    strengths = truth[[f"planted_{a}" for a in schema.ATTRIBUTES]].to_numpy()
    content = truth["content_type"].to_numpy()
    onehot = (content[:, None] == np.unique(content)[None, :]).astype(float)
    return np.hstack([strengths + noise * rng.normal(size=strengths.shape), onehot,
                      rng.normal(size=(len(truth), nuisance))])


def known_feature_curve(images: list[int], noises: list[float], seeds: list[int],
                        settings: tuple[str, ...] = SETTINGS) -> pd.DataFrame:
    """:func:`headroom` on draft releases of each size in ``images`` with :func:`known_features`
    of each ``noises`` level, one row per (images, noise, setting, seed), with ``gain``: the
    setting's mechanism fit (via attributes, or per content) minus the scores' ridge."""
    rows = []
    for n in images:
        for setting in settings:
            for seed in seeds:
                rel = recovery.draft_release(setting, seed, n)
                for noise in noises:
                    rho = headroom(known_features(rel, seed, noise), rel.data.images, rel.images)
                    gain = rho["via_attributes" if "attributes" in setting else "per_content"] - rho["scores"]
                    rows.append({"images": n, "noise": noise, "setting": setting, "seed": seed, **rho, "gain": gain})
    return pd.DataFrame(rows)


def curve_report(table: pd.DataFrame, data_note: str) -> str:
    """The mean gain of each setting's mechanism fit by release size and feature noise, beside the
    features' mean readability, as a Markdown table, and what the data are."""
    settings = list(dict.fromkeys(table["setting"]))
    lines = ["| images | noise | readability | " + " | ".join(settings) + " |", "|---|---|---|" + "---|" * len(settings)]
    for (n, noise), part in table.groupby(["images", "noise"], sort=True):
        gains = part.groupby("setting")["gain"].mean()
        lines.append(f"| {n} | {noise:g} | {part['readability'].mean():.2f} | "
                     + " | ".join(f"{gains[s]:+.3f}" for s in settings) + " |")
    seeds = sorted(set(table["seed"]))
    return "\n".join([*lines, f"Gain: the mechanism's fit minus the scores' ridge, mean over seeds {seeds}.",
                      f"Data: {data_note}; features made from the planted truth (known_features)."])


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
    ap.add_argument("--work", type=Path, help="the --work folder of a recovery run")
    ap.add_argument("--seeds", type=int, nargs="+", required=True, help="the seeds that run used "
                    "(with --known-features: the seeds of the draft releases)")
    ap.add_argument("--known-features", action="store_true", help="no run: the headroom on draft releases with "
                    "features made from the planted truth, by --images and --noise")
    ap.add_argument("--images", type=int, nargs="+", default=[800], help="release sizes (--known-features)")
    ap.add_argument("--noise", type=float, nargs="+", default=[0.3, 1.0], help="feature noise sd (--known-features)")
    args = ap.parse_args(argv)
    rows = []
    if args.known_features:
        problem = next(filter(None, (recovery.release_size_problem(n, DRAFT_MIN_IMAGES) for n in args.images)), None)
        if problem or any(not x >= 0 for x in args.noise):
            ap.error(problem or "--noise must be at least 0")
        print(curve_report(known_feature_curve(args.images, args.noise, args.seeds), recovery.DATA_NOTE))
        return 0
    if args.work is None:
        ap.error("--work is required (or --known-features)")
    for setting in SETTINGS:
        arm = ablation_arm(setting, recovery)
        for seed in args.seeds:
            run = args.work / f"{setting}_s{seed}_{arm}"
            if not run.is_dir():
                print(f"skipped {setting} seed {seed}: no {arm} run in {args.work}", file=sys.stderr)
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

"""Human consistency (paper §5.4, Table 6, Fig. 6): how well each worker's ratings rank the
images like the per-image mean score, and how a model's predictions compare.

For each worker, Spearman's ρ between the worker's scores and the per-image mean score over the
worker's images in the *scope* split (default: test). As in the paper the worker's own rating is
part of the mean; ``leave_one_out=True`` uses the mean of the other raters instead. Workers are
grouped by the number of images they rated, counted over *count_scope* (default: all splits —
the test split alone holds too few ratings for the paper's ">100" and ">200" groups).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from . import __version__, _atomic, paper, schema
from ._csvcells import table_csv
from ._numbers import check_seed
from ._paths import input_folders
from ._ranks import MIN_ITEMS_FOR_RHO, spearman
from .data import AADBData, leave_one_out_mean, provenance_fields, rater_image_scores
from .errors import InputError, quote

#: The paper's thresholds: a worker is in a group when n_images > threshold.
PAPER_THRESHOLDS: tuple[int, ...] = tuple(sorted(paper.TABLE6_HUMAN))
SCOPES: tuple[str, ...] = (*schema.SPLITS, "all")
#: ρ needs at least this many images (the toolkit's one rule, :data:`aadb_toolkit._ranks.MIN_ITEMS_FOR_RHO`).
MIN_IMAGES_FOR_RHO = MIN_ITEMS_FOR_RHO
#: Why a worker's ρ is undefined.
RHO_STATUSES: tuple[str, ...] = ("ok", "no_scope_images", "too_few_images", "constant_worker", "constant_mean")
_STATUS_FROM_SPEARMAN = {"ok": "ok", "too_few": "too_few_images", "constant_x": "constant_worker",
                         "constant_y": "constant_mean"}

WORKER_COLUMNS: tuple[str, ...] = ("rater_id", "n_images", "n_scope", "n_used", "rho", "rho_status")
OUTPUT_FILES: dict[str, str] = {"summary": "human_consistency.json", "workers": "human_workers.csv"}


def _check_scope(name: str, value: str, allowed: Iterable[str]) -> None:
    allowed = tuple(allowed)
    if value not in allowed:
        raise InputError(f"{name} must be one of {list(allowed)}, got {value!r}", field=name)


def _clean_ratings(ratings: pd.DataFrame, images: pd.DataFrame) -> pd.DataFrame:
    for col in ("image_id", "split"):
        if col not in images.columns:
            raise InputError(f"images table lacks column {col!r}", field=col)
    df = rater_image_scores(ratings)  # a worker who met an image in two batches counts it once
    split = images.assign(image_id=images["image_id"].astype(str)).set_index("image_id")["split"]
    df["split"] = df["image_id"].map(split)
    unknown = df["split"].isna().to_numpy()
    if unknown.any():
        row = int(np.argmax(unknown))
        raise InputError(f"image {quote(df['image_id'].iloc[row])} ({int(unknown.sum())} rating(s) in all) is not in "
                         "the images table", field="image_id")
    return df


def _in_scope(split: pd.Series, scope: str) -> np.ndarray:
    return np.ones(len(split), bool) if scope == "all" else (split == scope).to_numpy()


def worker_table(ratings: pd.DataFrame, images: pd.DataFrame, *, scope: str = "test", count_scope: str = "all",
                 leave_one_out: bool = False, predictions: pd.Series | None = None) -> pd.DataFrame:
    """One row per worker: images rated (``n_images`` over ``count_scope``, ``n_scope`` in ``scope``),
    Spearman ρ against the per-image mean on the worker's scope images (``rho``, with ``rho_status``),
    and, given ``predictions`` (indexed by image_id), the model's ρ on the same images (``model_rho``)."""
    _check_scope("scope", scope, SCOPES)
    _check_scope("count_scope", count_scope, (*SCOPES, "scope"))
    df = _clean_ratings(ratings, images)
    if leave_one_out:
        df["target"] = leave_one_out_mean(df["image_id"], df["score"].to_numpy())
    else:
        grouped = df.groupby("image_id")["score"]
        df["target"] = grouped.transform("sum").to_numpy() / grouped.transform("count").to_numpy()
    counted = df[_in_scope(df["split"], scope if count_scope == "scope" else count_scope)]
    n_images = counted.groupby("rater_id")["image_id"].nunique()
    scoped = df[_in_scope(df["split"], scope)]
    if predictions is not None:
        predictions = _check_predictions(predictions, scoped["image_id"].unique())
    rows = []
    by_worker = dict(tuple(scoped.groupby("rater_id", sort=False)))
    for rater in sorted(df["rater_id"].unique()):
        part = by_worker.get(rater)
        n_scope = 0 if part is None else len(part)
        row: dict[str, Any] = {"rater_id": rater, "n_images": int(n_images.get(rater, 0)), "n_scope": n_scope}
        if part is None:
            row.update(n_used=0, rho=math.nan, rho_status="no_scope_images")
            if predictions is not None:
                row["model_rho"] = math.nan
            rows.append(row)
            continue
        used = part[part["target"].notna()]
        rho, st = spearman(used["score"].to_numpy(), used["target"].to_numpy(), min_n=MIN_IMAGES_FOR_RHO)
        row.update(n_used=len(used), rho=rho, rho_status=_STATUS_FROM_SPEARMAN[st])
        if predictions is not None:
            mrho, _ = spearman(predictions.loc[used["image_id"]].to_numpy(), used["target"].to_numpy(),
                                 min_n=MIN_IMAGES_FOR_RHO)
            row["model_rho"] = mrho
        rows.append(row)
    cols = list(WORKER_COLUMNS) + (["model_rho"] if predictions is not None else [])
    table = pd.DataFrame(rows, columns=cols)
    table = table.sort_values(["n_images", "rater_id"], ascending=[False, True], kind="stable").reset_index(drop=True)
    return table.astype({"n_images": "int64", "n_scope": "int64", "n_used": "int64", "rho": "float64"})


def _check_predictions(predictions: pd.Series, needed: np.ndarray) -> pd.Series:
    pred = pd.to_numeric(pd.Series(predictions), errors="coerce")
    pred.index = pred.index.astype(str)
    if pred.index.duplicated().any():
        raise InputError(f"predictions list image {pred.index[pred.index.duplicated()][0]!r} more than once",
                         field="image_id")
    missing = pd.Index(needed).difference(pred.index)
    if len(missing):
        raise InputError(f"predictions lack {len(missing)} scope image(s), e.g. {missing[0]!r}", field="image_id")
    bad = ~np.isfinite(pred.loc[needed].to_numpy(dtype=float, na_value=np.nan))
    if bad.any():
        raise InputError(f"prediction for image {needed[int(np.argmax(bad))]!r} is not a finite number", field="score")
    return pred


def threshold_summary(table: pd.DataFrame, thresholds: Iterable[int] = PAPER_THRESHOLDS, *, n_boot: int = 1000,
                      seed: int = 0) -> pd.DataFrame:
    """Table 6: per threshold (workers with ``n_images > min_images``), the number of workers with a
    defined ρ, their mean ρ with a percentile bootstrap 95% interval over workers, and the mean
    model ρ on the same workers' images when the table has ``model_rho``. ``seed``: every command's
    range (:func:`~aadb_toolkit._numbers.check_seed`)."""
    rng = np.random.default_rng(check_seed(seed))
    has_model = "model_rho" in table.columns
    rows = []
    for t in thresholds:
        sel = table[table["n_images"] > int(t)]
        ok = sel[sel["rho"].notna()]
        rho = ok["rho"].to_numpy()
        row: dict[str, Any] = {"min_images": int(t), "n_workers": len(ok), "n_workers_undefined": len(sel) - len(ok)}
        boot = rng.integers(0, len(rho), size=(n_boot, len(rho))) if len(rho) and n_boot > 0 else None
        row.update(_mean_ci(rho, boot))
        if has_model:
            m = _mean_ci(ok["model_rho"].to_numpy(dtype=float), boot)
            row.update(mean_model_rho=m["mean_rho"], model_ci_low=m["ci_low"], model_ci_high=m["ci_high"])
        rows.append(row)
    return pd.DataFrame(rows)


def _mean_ci(values: np.ndarray, boot: np.ndarray | None) -> dict[str, float]:
    if len(values) == 0 or np.isnan(values).all():
        return {"mean_rho": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    mean = float(np.nanmean(values))
    if boot is None:
        return {"mean_rho": mean, "ci_low": math.nan, "ci_high": math.nan}
    means = np.nanmean(values[boot], axis=1)
    lo, hi = np.nanpercentile(means, [2.5, 97.5])
    return {"mean_rho": mean, "ci_low": float(lo), "ci_high": float(hi)}


def model_rho_overall(ratings: pd.DataFrame, images: pd.DataFrame, predictions: pd.Series, *,
                      scope: str = "test") -> float:
    """The model's Spearman ρ against the per-image mean score over all scope images (Fig. 6's line)."""
    df = _clean_ratings(ratings, images)
    df = df[_in_scope(df["split"], scope)]
    means = df.groupby("image_id")["score"].mean()
    pred = _check_predictions(predictions, means.index.to_numpy())
    rho, _ = spearman(pred.loc[means.index].to_numpy(), means.to_numpy())
    return rho


def human_consistency(data: Any, *, thresholds: Iterable[int] = PAPER_THRESHOLDS, leave_one_out: bool = False,
                      scope: str = "test", count_scope: str = "all", predictions: pd.Series | None = None,
                      n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Table 6 as a JSON-ready dict (per threshold: ``min_images``, ``n_workers``, ``mean_rho``, CI),
    computed from an :class:`~aadb_toolkit.sources.AADBData`."""
    table = worker_table(data.ratings, data.images, scope=scope, count_scope=count_scope,
                         leave_one_out=leave_one_out, predictions=predictions)
    return summarize(table, data, thresholds=thresholds, leave_one_out=leave_one_out, scope=scope,
                     count_scope=count_scope, predictions=predictions, n_boot=n_boot, seed=seed)


def summarize(table: pd.DataFrame, data: Any, *, thresholds: Iterable[int], leave_one_out: bool, scope: str,
              count_scope: str, predictions: pd.Series | None, n_boot: int, seed: int) -> dict[str, Any]:
    """The JSON document of :func:`human_consistency` from an already computed worker table; it
    names a synthetic source synthetic (``dataset``, ``synthetic``, ``synthetic_setting``:
    :func:`~aadb_toolkit.data.provenance_fields`)."""
    summary = threshold_summary(table, thresholds, n_boot=n_boot, seed=seed)
    out: dict[str, Any] = {
        "scope": scope, "count_scope": count_scope, "leave_one_out": bool(leave_one_out),
        "threshold_rule": "n_images > min_images", "n_boot": int(n_boot), "seed": int(seed), "confidence": 0.95,
        "n_workers_total": int(len(table)),
        "rho_status_counts": {s: int((table["rho_status"] == s).sum()) for s in RHO_STATUSES},
        "thresholds": [{k: _json(v) for k, v in row.items()} for row in summary.to_dict("records")],
        "paper": {str(k): {"n_workers": n, "mean_rho": r} for k, (n, r) in paper.TABLE6_HUMAN.items()},
        "source": getattr(data, "origin", None), "toolkit_version": __version__,
        **provenance_fields(getattr(data, "provenance", None)),
    }
    if scope != "all" and hasattr(data, "fingerprint"):
        out["fingerprint"] = data.fingerprint(scope)
    if predictions is not None:
        out["model_rho_overall"] = _json(model_rho_overall(data.ratings, data.images, predictions, scope=scope))
    return out


def _json(v: Any) -> Any:
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return None if not np.isfinite(v) else float(v)
    return v


def write_outputs(result: dict[str, Any], table: pd.DataFrame, out_dir: str | Path) -> dict[str, Path]:
    """Write ``human_consistency.json`` and the per-worker table ``human_workers.csv`` atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {role: out / name for role, name in OUTPUT_FILES.items()}
    _atomic.write_text(paths["workers"], table_csv(table))
    _atomic.write_json(paths["summary"], result)
    return paths


def run_human_consistency(data: AADBData, out_dir: str | Path, *, thresholds: Iterable[int] = PAPER_THRESHOLDS,
                          leave_one_out: bool = False, scope: str = "test", count_scope: str = "all",
                          predictions: pd.Series | None = None, n_boot: int = 1000,
                          seed: int = 0) -> dict[str, Any]:
    """Compute Table 6 from loaded ``data`` and write ``human_consistency.json`` and
    ``human_workers.csv`` into the folder ``out_dir`` (built aside, swapped in whole); returns the
    JSON document."""
    inputs = input_folders(data)
    _atomic.check_output_folder(out_dir, "report", inputs=inputs)
    table = worker_table(data.ratings, data.images, scope=scope, count_scope=count_scope,
                         leave_one_out=leave_one_out, predictions=predictions)
    result = summarize(table, data, thresholds=tuple(thresholds), leave_one_out=leave_one_out, scope=scope,
                       count_scope=count_scope, predictions=predictions, n_boot=n_boot, seed=seed)
    with _atomic.atomic_dir(out_dir, kind="report", inputs=inputs) as stage:
        write_outputs(result, table, stage)
    return result

"""Inter-rater reliability beyond the paper: Krippendorff's α for AADB's sparse design, and a
per-rater table that flags raters whose agreement with the others is indistinguishable from chance.

Krippendorff's α (the ``krippendorff`` package) needs only, per image, how many raters gave each
score, so it applies to AADB's design (5 raters per image out of a large pool). Intraclass
correlation routines assume every rater rated every image (complete, balanced data) and do not
apply. The per-rater test: Spearman's ρ between a rater's scores and the mean of the *other*
raters on the same images, with a one-sided permutation p-value (the rater's scores shuffled over
their images) and Benjamini–Hochberg across raters.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from . import paper
from ._multitest import benjamini_hochberg
from ._numbers import check_seed
from ._ranks import centered_ranks, draw_permutations, spearman
from .data import Provenance, leave_one_out_mean, provenance_fields, rater_image_scores
from .errors import InputError

LEVELS: tuple[str, ...] = ("ordinal", "interval")
DEFAULT_RATER_N_PERM = 2000
RATER_STATUSES: tuple[str, ...] = ("tested", "too_few_images", "constant_rater", "constant_others")
ICC_NOTE = ("Intraclass correlation (ICC) routines need complete, balanced data — every rater rating "
            "every image. AADB's design is sparse (each image is rated by 5 workers out of a pool of "
            "about 190, most of whom rated few images), so ICC does not apply; Krippendorff's α does.")
_CHUNK = 1 << 22


def _ratings(ratings: pd.DataFrame) -> pd.DataFrame:
    """One score per rater and image (:func:`~aadb_toolkit.data.rater_image_scores`)."""
    return rater_image_scores(ratings)


def value_counts_matrix(ratings: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per image (rows), how many raters gave each score value (columns); and the sorted values."""
    df = _ratings(ratings)
    img, _ = pd.factorize(df["image_id"], sort=True)  # by id, so bootstrap draws ignore row order
    values, val = np.unique(df["score"].to_numpy(), return_inverse=True)
    counts = np.zeros((img.max() + 1, len(values)), np.int64)
    np.add.at(counts, (img, val), 1)
    return counts, values


def krippendorff_alpha(ratings: pd.DataFrame, *, level: str = "ordinal", n_boot: int = 200,
                       seed: int = 0) -> dict[str, Any]:
    """Krippendorff's α of the scores at ``level`` (ordinal or interval), with a percentile
    bootstrap 95% interval over images (``n_boot`` resamples; 0 for none; ``seed`` in every
    command's range, :func:`~aadb_toolkit._numbers.check_seed`)."""
    import krippendorff

    check_seed(seed)
    if level not in LEVELS:
        raise InputError(f"level must be one of {list(LEVELS)}, got {level!r}", field="level")
    counts, values = value_counts_matrix(ratings)
    pairable = counts.sum(1) >= 2
    counts = counts[pairable]
    out: dict[str, Any] = {"level": level, "n_images": int(len(pairable)), "n_pairable_images": int(pairable.sum()),
                           "n_values": int(counts.sum()), "alpha": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                           "n_boot": int(n_boot)}
    if len(counts) < 2 or len(values) < 2:
        return out

    def alpha(c: np.ndarray) -> float:
        return float(krippendorff.alpha(value_counts=c, value_domain=values, level_of_measurement=level))

    out["alpha"] = alpha(counts)
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        boots = [alpha(counts[rng.integers(0, len(counts), len(counts))]) for _ in range(n_boot)]
        out["ci_low"], out["ci_high"] = (float(x) for x in np.nanpercentile(boots, [2.5, 97.5]))
    return out


#: A rater's status from the status of their Spearman ρ (:func:`aadb_toolkit._ranks.spearman`).
_STATUS = {"ok": "tested", "too_few": "too_few_images", "constant_x": "constant_rater", "constant_y": "constant_others"}


def rater_reliability(ratings: pd.DataFrame, *, n_perm: int = DEFAULT_RATER_N_PERM, q: float = paper.CONSISTENCY_FDR_Q,
                      seed: int = 0) -> pd.DataFrame:
    """One row per rater: Spearman ρ with the leave-one-out mean of the other raters over the rater's
    images, permutation p-value, BH-adjusted p-value, and ``chance_like`` (tested and not
    significant at FDR ``q``: agreement indistinguishable from chance)."""
    if n_perm < 1:
        raise InputError(f"n_perm must be a positive integer, got {n_perm!r}", field="n_perm")
    rng = np.random.default_rng(check_seed(seed))
    df = _ratings(ratings)
    df["others"] = leave_one_out_mean(df["image_id"], df["score"].to_numpy())
    rows = []
    df = df.sort_values(["rater_id", "image_id"], kind="stable")  # permutations act on id order, not row order
    for rater, part in df.groupby("rater_id", sort=True):
        used = part[part["others"].notna()]
        row: dict[str, Any] = {"rater_id": rater, "n_images": len(part), "n_used": len(used), "rho": math.nan,
                               "p_value": math.nan}
        rho, status = spearman(used["score"].to_numpy(), used["others"].to_numpy())
        row["status"] = _STATUS[status]
        if status == "ok":
            cr = centered_ranks(used["score"].to_numpy())
            cm = centered_ranks(used["others"].to_numpy())
            row["rho"] = rho
            row["p_value"] = (1 + _exceedances(cr, cm, int(cr @ cm), n_perm, rng)) / (1 + n_perm)
        rows.append(row)
    table = pd.DataFrame(rows, columns=["rater_id", "n_images", "n_used", "rho", "p_value", "status"])
    tested = (table["status"] == "tested").to_numpy()
    table["p_adjusted"] = np.nan
    table["significant"] = False
    if tested.any():
        reject, p_adj = benjamini_hochberg(table.loc[tested, "p_value"].to_numpy(), q)
        table.loc[tested, "p_adjusted"] = p_adj
        table.loc[tested, "significant"] = reject
    table["chance_like"] = tested & ~table["significant"].to_numpy(dtype=bool)
    return table.sort_values(["n_images", "rater_id"], ascending=[False, True], kind="stable").reset_index(drop=True)


def _exceedances(cr: np.ndarray, cm: np.ndarray, d_obs: int, n_perm: int, rng: np.random.Generator) -> int:
    """#{permutations π : cr[π]·cm ≥ d_obs}, exact integer comparison, in memory-bounded blocks."""
    n = len(cr)
    block = max(1, min(n_perm, _CHUNK // n))
    hits = 0
    for p0 in range(0, n_perm, block):
        perm = draw_permutations(rng, (min(block, n_perm - p0),), n)
        hits += int((cr[perm.astype(np.intp)] @ cm >= d_obs).sum())
    return hits


def reliability_summary(ratings: pd.DataFrame, *, n_perm: int = DEFAULT_RATER_N_PERM, q: float = paper.CONSISTENCY_FDR_Q,
                        n_boot: int = 200, seed: int = 0,
                        provenance: Provenance | None = None) -> tuple[dict[str, Any], pd.DataFrame]:
    """Krippendorff's α at both levels, the ICC note, and the per-rater table with its counts; the
    data's ``provenance`` names a synthetic source synthetic (``dataset``, ``synthetic``,
    ``synthetic_setting``: :func:`~aadb_toolkit.data.provenance_fields`)."""
    table = rater_reliability(ratings, n_perm=n_perm, q=q, seed=seed)
    doc = {
        **provenance_fields(provenance),
        "krippendorff_alpha": {lvl: _jsonable(krippendorff_alpha(ratings, level=lvl, n_boot=n_boot, seed=seed))
                               for lvl in LEVELS},
        "icc_note": ICC_NOTE,
        "raters": {"n_raters": int(len(table)), "n_perm": int(n_perm), "q": float(q), "seed": int(seed),
                   "status_counts": {s: int((table["status"] == s).sum()) for s in RATER_STATUSES},
                   "n_significant": int(table["significant"].sum()), "n_chance_like": int(table["chance_like"].sum())},
    }
    return doc, table


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}

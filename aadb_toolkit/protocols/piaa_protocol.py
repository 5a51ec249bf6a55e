"""The ``piaa`` protocol: personalized k-shot aesthetics on AADB's rater ids (docs/protocols.md).

A submission scores every query row of every episode (:mod:`aadb_toolkit.piaa.episodes`):
``rater_id,k,episode,image_id,score``. Per episode, Spearman's ρ between the submission and the
rater's *own* scores on the episode's queries; per rater, the mean over episodes; per k, the mean
over raters with a percentile bootstrap CI over raters. Episodes whose own scores are constant have
no ranking and are left out for every method; a method that predicts a constant within an
episode gets ρ = 0 there (it ranks nothing). The same statistic is computed on the same queries
for three references: the submitter's generic (unpersonalized) prediction when given, the mean of
the image's other raters (leave-one-out), and the rater's own consistency as in Table 6 (ρ with
the mean of all the image's raters, the rater's own rating included).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._ranks import spearman
from ..data import AADBData, leave_one_out_mean, sha256_fingerprint
from ..errors import InputError
from ..piaa import episodes as ep
from ..submissions import HEADER as IMAGE_HEADER
from ..submissions import Submission, accept, read_submission
from . import PROTOCOLS, layout_hints
from .results import Metric, Result, make_result

#: The columns of a piaa submission (and of a generic file in the same layout).
HEADER: tuple[str, ...] = PROTOCOLS["piaa"].header
assert HEADER == (*ep.KEY_COLUMNS, "score"), "the piaa declaration's header is the episodes' key and a score"
#: The references computed on the same queries as the submission (name → what it is).
REFERENCES: dict[str, str] = {
    "generic": "the submitter's unpersonalized prediction (--generic)",
    "loo": "mean score of the image's other raters (leave-one-out)",
    "consistency": "the rater's own consistency: ρ with the mean of all the image's raters (Table 6)",
}


def query_truth(data: AADBData, episodes: pd.DataFrame) -> pd.DataFrame:
    """The query rows with the rater's own score (``own``), the leave-one-out mean of the other
    raters (``loo``) and the mean of all raters (``mean``) of each image."""
    rated = ep.non_train_ratings(data)
    rated = rated.assign(loo=leave_one_out_mean(rated["image_id"], rated["score"].to_numpy()),
                         mean=rated.groupby("image_id")["score"].transform("mean").to_numpy())
    q = ep.queries(episodes)
    truth = rated.set_index(["rater_id", "image_id"])[["score", "loo", "mean"]]
    keys = pd.MultiIndex.from_arrays([q["rater_id"].astype(str), q["image_id"].astype(str)])
    if not keys.isin(truth.index).all():
        raise InputError("an episode query is not a validation/test image its rater rated; the episodes do not "
                         "belong to this data", field="episodes")
    found = truth.reindex(keys)
    return q[["rater_id", "k", "episode", "image_id"]].assign(
        own=found["score"].to_numpy(), loo=found["loo"].to_numpy(), mean=found["mean"].to_numpy())


def episode_rhos(queries: pd.DataFrame, values: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row per (k, rater, episode): ρ of each method in ``values`` (arrays aligned with the
    query rows) against the rater's own scores; NaN for every method where the own scores are
    constant, 0 for a method constant in the episode (NaN-valued queries are left out). The rows
    may come in any order: they are grouped by (k, rater, episode) first (a stable sort), so an
    episodes file scores the same however its rows are ordered."""
    order = np.lexsort((queries["episode"].to_numpy(), queries["rater_id"].astype(str).to_numpy(),
                        queries["k"].to_numpy()))
    queries = queries.iloc[order]
    values = {name: np.asarray(v)[order] for name, v in values.items()}
    own = queries["own"].to_numpy(dtype=float)
    keys = queries[["k", "rater_id", "episode"]]
    starts = np.flatnonzero(np.r_[True, (keys.iloc[1:].to_numpy() != keys.iloc[:-1].to_numpy()).any(axis=1)])
    ends = np.r_[starts[1:], len(queries)]
    rows = []
    for a, b in zip(starts, ends):
        row: dict[str, Any] = {"k": int(keys["k"].iat[a]), "rater_id": keys["rater_id"].iat[a],
                               "episode": int(keys["episode"].iat[a]), "n_queries": int(b - a)}
        truth_ok = np.unique(own[a:b]).size > 1
        for name, v in values.items():
            x, y = v[a:b], own[a:b]
            keep = np.isfinite(x)
            rho, status = spearman(x[keep], y[keep])
            row[name] = (0.0 if status == "constant_x" else rho) if truth_ok else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def rater_table(per_episode: pd.DataFrame, methods: list[str]) -> pd.DataFrame:
    """Per (k, rater): episodes with a defined ρ and the mean ρ over them for each method."""
    g = per_episode.groupby(["k", "rater_id"], sort=True)
    out = g[methods].mean()
    out["n_episodes"] = g[methods[0]].count()
    out["n_queries"] = g["n_queries"].first()
    return out.reset_index()


def _boot_means(values: np.ndarray, n_boot: int, seed: int) -> np.ndarray | None:
    """Means of ``n_boot`` resamples of ``values`` (over raters), or None when no interval applies."""
    if n_boot <= 0 or values.size < 2:
        return None
    return values[np.random.default_rng(seed).integers(0, values.size, (n_boot, values.size))].mean(axis=1)


def _mean_ci(per_k: list[np.ndarray], n_boot: int, seed: int) -> Metric:
    """The mean over k of the mean over raters, with a percentile bootstrap 95% interval that
    resamples the raters of each k (one k: the plain mean over raters and its interval)."""
    per_k = [v[np.isfinite(v)] for v in per_k]
    per_k = [v for v in per_k if v.size]
    if not per_k:
        return Metric(None)
    value = float(np.mean([v.mean() for v in per_k]))
    boots = [_boot_means(v, n_boot, seed) for v in per_k]
    if any(b is None for b in boots):
        return Metric(value)
    lo, hi = np.percentile(np.mean(boots, axis=0), [2.5, 97.5])
    return Metric(value, float(lo), float(hi), 0.95)


def evaluate(data: AADBData, predictions: Any, *, episodes: pd.DataFrame | None = None, generic: Any = None,
             n_boot: int = 1000, seed: int = 0, progress: bool = False) -> Result:
    """Score predictions of every query row of ``episodes`` (default: the protocol's episodes of
    ``data``): a DataFrame ``rater_id,k,episode,image_id,score``, an array aligned with the query
    rows, or a checked submission. ``generic`` (optional) is the same, or ``image_id,score`` for
    the query images."""
    p = PROTOCOLS["piaa"]
    episodes = default_episodes(data) if episodes is None else episodes
    sub = accept(predictions, **_checks(episodes))
    gen = None if generic is None else _generic(generic, episodes)
    q = query_truth(data, episodes)
    values = {"rho": sub.scores.to_numpy(dtype=float), "loo_rho": q["loo"].to_numpy(dtype=float),
              "consistency_rho": q["mean"].to_numpy(dtype=float)}
    if gen is not None:
        values["generic_rho"] = gen
    methods = list(values)
    table = rater_table(episode_rhos(q, values), methods)
    metrics: dict[str, Metric] = {}
    ks = sorted(int(k) for k in table["k"].unique())
    own: list[np.ndarray] = []
    for k in ks:
        t = table[(table["k"] == k) & (table["n_episodes"] > 0)]
        own.append(t["rho"].to_numpy(dtype=float))
        for m in methods:
            metrics[f"{m}_k{k}"] = _mean_ci([t[m].to_numpy(dtype=float)], n_boot, seed)
        if gen is not None:
            both = t[["rho", "generic_rho"]].dropna()
            metrics[f"share_beats_generic_k{k}"] = Metric(float((both["rho"] > both["generic_rho"]).mean())
                                                          if len(both) else None)
        metrics[f"n_raters_k{k}"] = Metric(float(len(t)))
    metrics = {p.main_metric: _mean_ci(own, n_boot, seed), **metrics}
    raters = [{key: (v.item() if hasattr(v, "item") else v) for key, v in rec.items()}
              for rec in table.to_dict("records")]
    return make_result(protocol=p.name, protocol_version=p.version, main_metric=p.main_metric, metrics=metrics,
                       data_fingerprint=fingerprint(data, episodes), submission_sha256=sub.sha256,
                       n_images=int(q["image_id"].nunique()), seed=seed, n_boot=n_boot, dataset="aadb",
                       split=ep.EPISODE_SPLIT_NAME, provenance=data.provenance,
                       details={"ks": ks, "n_query_rows": int(len(q)), "episodes": ep.fingerprint(episodes),
                                "references": {k: v for k, v in REFERENCES.items()
                                               if k != "generic" or gen is not None},
                                "main_metric_rule": "mean over k of the per-k mean over raters of rho",
                                "raters": raters})


def default_episodes(data: AADBData) -> pd.DataFrame:
    """The protocol's episodes of ``data`` (its defaults); an error when no rater qualifies."""
    episodes = ep.make_episodes(data)
    if ep.queries(episodes).empty:
        raise InputError("no rater qualifies for any episode: the piaa protocol has nothing to score", field="episodes")
    return episodes


def _checks(episodes: pd.DataFrame, generic: bool = False) -> dict[str, Any]:
    """What predictions of the episodes' query rows are checked against (a file or in memory)."""
    return dict(expected_ids=ep.query_keys(episodes), split_name="piaa episodes' queries", header=HEADER,
                unit="query row", other_layouts={} if generic else layout_hints("piaa"))


def _image_checks(episodes: pd.DataFrame) -> dict[str, Any]:
    """What a generic prediction in the ``image_id,score`` layout is checked against: the query images."""
    ids = sorted(ep.queries(episodes)["image_id"].astype(str).unique())
    return dict(expected_ids=ids, split_name="episodes' query images")


def _generic(generic: Any, episodes: pd.DataFrame) -> np.ndarray:
    """Generic predictions aligned with the query rows, from the piaa layout or ``image_id,score``."""
    image_layout = (isinstance(generic, Submission) and generic.scores.index.name == IMAGE_HEADER[0]) or (
        isinstance(generic, (pd.DataFrame, pd.Series)) and not set(HEADER[:-1]) <= {
            *getattr(generic, "columns", ()), *generic.index.names})
    if not image_layout:
        return accept(generic, **_checks(episodes, generic=True)).scores.to_numpy(dtype=float)
    sub = accept(generic, **_image_checks(episodes))
    return sub.scores.reindex(ep.queries(episodes)["image_id"].astype(str)).to_numpy(dtype=float)


def fingerprint(data: AADBData, episodes: pd.DataFrame) -> str:
    """Fingerprint of what the protocol reads: the episodes and every rating of a validation or
    test image (the own scores and the references' means)."""
    rows = ep.non_train_ratings(data).itertuples(index=False, name=None)
    return sha256_fingerprint([f"piaa\n{ep.fingerprint(episodes)}\n",
                               *(f"{image_id}\t{rater_id}\t{s:.9f}\n" for rater_id, image_id, s in rows)])


def read_files(data: AADBData, submission: Path, *, episodes: Path | None = None, generic: Path | None = None,
               max_bytes: int) -> dict[str, Any]:
    """The episodes file (default: the protocol's episodes of the data), the submission and the
    generic predictions (piaa layout, or ``image_id,score`` for the query images), read and checked."""
    table = ep.read_episodes(episodes, data) if episodes is not None else default_episodes(data)
    if ep.queries(table).empty:
        raise InputError("no rater qualifies for any episode: the piaa protocol has nothing to score", field="episodes")
    out: dict[str, Any] = {"episodes": table,
                           "predictions": read_submission(submission, max_bytes=max_bytes, **_checks(table))}
    if generic is not None:
        checks = _image_checks(table) if _first_line(generic) == ",".join(IMAGE_HEADER) else _checks(table, True)
        out["generic"] = read_submission(generic, max_bytes=max_bytes, **checks)
    return out


def _first_line(path: str | Path) -> str:
    try:
        with open(path, "rb") as f:
            return f.readline(256).decode("utf-8", "replace").lstrip("\ufeff").strip()
    except OSError:
        return ""

"""The personalized (PIAA) k-shot episodes of AADB, defined once.

A rater qualifies at shot count ``k`` when the rater rated at least ``k + MIN_QUERIES`` images
outside the train split (validation and test). For each qualifying rater, ``repeats`` seeded
episodes each draw ``k`` of those images as the *support* set (with the rater's own scores, to
adapt on) and keep all the rater's other non-train images as *queries* (to predict). Generic
models train on the train split only, so no episode image was seen in generic training.

Each rater's draws come from a generator seeded by (seed, k, a hash of the rater id), so adding
or removing a rater leaves every other rater's episodes unchanged, and the same data gives the
same episodes from a curated folder or a published one.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .. import schema
from .._atomic import write_text
from ..data import rater_image_scores, sha256_fingerprint
from .._keyguard import ONE_LINE_NOT_QUOTED, refuse_key_file
from .._numbers import MAX_COUNT, check_seed
from ..errors import InputError, quote

#: Shot counts of the protocol (support images per episode).
DEFAULT_K: tuple[int, ...] = (10, 100)
#: Seeded episodes per rater and k.
DEFAULT_REPEATS: int = 10
#: At most this many episodes per rater and k (100 × the protocol's): each repeat adds one row per
#: non-train rating of every qualifying rater (for AADB some 10,000 rows per repeat and k), so the
#: cap keeps the table to a few GB; 1e8 repeats would need terabytes and be killed for memory.
MAX_REPEATS: int = 1000
DEFAULT_SEED: int = 0
#: A rater needs at least this many non-train images beyond the k support images.
MIN_QUERIES: int = 10
#: Splits episodes draw from (never train: generic models are trained there).
EPISODE_SPLITS: tuple[str, ...] = tuple(s for s in schema.SPLITS if s != "train")
#: The split name of what the episodes' queries span ("validation+test"), as results and sidecars give it.
EPISODE_SPLIT_NAME: str = "+".join(EPISODE_SPLITS)
#: Columns of the episodes table; ``score`` is the rater's own score on support rows, NaN on queries.
COLUMNS: tuple[str, ...] = ("rater_id", "k", "episode", "image_id", "role", "score")
ROLES: tuple[str, str] = ("support", "query")
#: The key of one query row in a submission (the rows a submission scores).
KEY_COLUMNS: tuple[str, ...] = ("rater_id", "k", "episode", "image_id")


def own_scores(ratings: pd.DataFrame) -> pd.DataFrame:
    """Each rater's one score per image (:func:`~aadb_toolkit.data.rater_image_scores`: a worker who
    met the same photo in two batches counts it once, with the mean of those scores)."""
    return rater_image_scores(ratings)


def non_train_ratings(data) -> pd.DataFrame:
    """The raters' scores of validation and test images (:func:`own_scores`: one per rater and
    image, sorted by rater and image)."""
    images, ratings = data.images, data.ratings  # AADBData has checked that every rated image is known
    split = pd.Series(images["split"].to_numpy(), index=images["image_id"].astype(str))
    keep = ratings["image_id"].astype(str).map(split).isin(EPISODE_SPLITS).to_numpy()
    return own_scores(ratings[keep])


def qualifying_raters(data, k: int) -> pd.Series:
    """rater_id → number of non-train images, for the raters with at least ``k + MIN_QUERIES``."""
    counts = non_train_ratings(data).groupby("rater_id").size()
    return counts[counts >= k + MIN_QUERIES]


def _rater_seed(rater_id: str) -> int:
    return int.from_bytes(hashlib.sha256(rater_id.encode("utf-8")).digest()[:8], "little")


def check_params(ks: Sequence[int], repeats: int, seed: int = DEFAULT_SEED) -> tuple[int, ...]:
    """The shot counts, sorted; refuses k that are not distinct positive integers, a number of
    repeats outside 1..:data:`MAX_REPEATS` (the table grows with repeats × ratings) and a seed
    outside every command's range (:func:`~aadb_toolkit._numbers.check_seed`)."""
    check_seed(seed)
    ks = tuple(int(k) for k in ks)
    if not ks or any(k < 1 for k in ks) or len(set(ks)) != len(ks):
        raise InputError(f"k must be distinct positive integers, got {list(ks)[:10]}", field="k")
    if not 1 <= int(repeats) <= MAX_REPEATS:
        raise InputError(f"repeats must be an integer from 1 to {MAX_REPEATS:,} (the protocol uses "
                         f"{DEFAULT_REPEATS}; each repeat adds a row per rating of every qualifying rater), "
                         f"got {repeats}", field="repeats")
    return tuple(sorted(ks))


def make_episodes(data, *, ks: Sequence[int] = DEFAULT_K, repeats: int = DEFAULT_REPEATS,
                  seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """The episodes table (:data:`COLUMNS`) of an :class:`~aadb_toolkit.sources.AADBData`: for
    each k, each qualifying rater and each of ``repeats`` episodes, the k support rows then the
    query rows, each in image-id order."""
    return draw_episodes(non_train_ratings(data), ks=check_params(ks, repeats, seed), repeats=repeats, seed=seed)


def draw_episodes(ratings: pd.DataFrame, *, ks: Sequence[int], repeats: int, seed: int,
                  query_scores: bool = False) -> pd.DataFrame:
    """Episodes (:data:`COLUMNS`) drawn from a ratings table (``rater_id, image_id, score``, one
    row per rating, sorted by rater and image) as the protocol draws them: :func:`make_episodes`
    on the non-train ratings; the reference personalizers on the train split's, where they choose
    their penalty (no episode image is read there) and keep the queries' scores
    (``query_scores``; the protocol's table leaves them empty)."""
    raters = [(str(r), own["image_id"].to_numpy(dtype=object), own["score"].to_numpy(dtype=float))
              for r, own in ratings.groupby("rater_id", sort=True)]
    parts = [_rater_episodes(rater_id, ids, scores, int(k), repeats, seed, query_scores)
             for k in ks for rater_id, ids, scores in raters if len(ids) >= k + MIN_QUERIES]
    return pd.concat(parts, ignore_index=True) if parts else empty_episodes()


def _rater_episodes(rater_id: str, ids: np.ndarray, scores: np.ndarray, k: int, repeats: int,
                    seed: int, query_scores: bool = False) -> pd.DataFrame:
    """One rater's ``repeats`` episodes at shot count ``k`` (ids sorted, scores aligned)."""
    n = len(ids)
    rng = np.random.default_rng([int(seed), int(k), _rater_seed(rater_id)])
    order = np.argsort(rng.random((repeats, n)), axis=1)  # one uniform permutation per episode
    support = np.zeros((repeats, n), bool)
    np.put_along_axis(support, order[:, :k], True, axis=1)
    ep, pos = np.nonzero(support)  # row-major: episode by episode, image order within each
    qe, qpos = np.nonzero(~support)
    e_all, p_all = np.concatenate([ep, qe]), np.concatenate([pos, qpos])
    is_support = np.arange(e_all.size) < ep.size
    idx = np.argsort(e_all, kind="stable")  # each episode: its support rows, then its queries
    return pd.DataFrame({
        "rater_id": rater_id, "k": np.int64(k), "episode": e_all[idx].astype(np.int64),
        "image_id": ids[p_all[idx]], "role": np.where(is_support[idx], ROLES[0], ROLES[1]).astype(object),
        "score": np.where(is_support[idx] | query_scores, scores[p_all[idx]], np.nan)})


def empty_episodes() -> pd.DataFrame:
    """An episodes table without rows (no rater qualifies)."""
    return pd.DataFrame({"rater_id": pd.Series([], dtype=object), "k": pd.Series([], dtype="int64"),
                         "episode": pd.Series([], dtype="int64"), "image_id": pd.Series([], dtype=object),
                         "role": pd.Series([], dtype=object), "score": pd.Series([], dtype=float)})


def summarize(episodes: pd.DataFrame) -> pd.DataFrame:
    """Per k: qualifying raters, episodes, support rows and query rows (one row per k)."""
    rows = []
    for k, part in episodes.groupby("k", sort=True):
        q = part["role"] == ROLES[1]
        rows.append({"k": int(k), "n_raters": int(part["rater_id"].nunique()),
                     "n_episodes": int(part[["rater_id", "episode"]].drop_duplicates().shape[0]),
                     "n_support_rows": int((~q).sum()), "n_query_rows": int(q.sum())})
    return pd.DataFrame(rows, columns=["k", "n_raters", "n_episodes", "n_support_rows", "n_query_rows"])


def queries(episodes: pd.DataFrame) -> pd.DataFrame:
    """The query rows of an episodes table, in table order (the rows a submission must score)."""
    return episodes[episodes["role"] == ROLES[1]].reset_index(drop=True)


def query_keys(episodes: pd.DataFrame) -> list[str]:
    """The submission key ``rater_id,k,episode,image_id`` of every query row, in table order."""
    q = queries(episodes)
    return (q["rater_id"].astype(str) + "," + q["k"].astype(str) + "," + q["episode"].astype(str) + ","
            + q["image_id"].astype(str)).tolist()


def fingerprint(episodes: pd.DataFrame) -> str:
    """sha256 over the episodes' rows (support scores printed to 1e-9), in table order."""
    score = ["" if not np.isfinite(s) else f"{s:.9f}" for s in episodes["score"].to_numpy(dtype=float)]
    rows = zip(episodes["rater_id"].astype(str), episodes["k"].astype(str), episodes["episode"].astype(str),
               episodes["image_id"].astype(str), episodes["role"].astype(str), score)
    return sha256_fingerprint(["aadb-piaa-episodes\n", *("\t".join(row) + "\n" for row in rows)])


def write_episodes(episodes: pd.DataFrame, path: str | Path) -> Path:
    """Write the episodes table as CSV (support scores at full precision; queries blank), atomically."""
    buf = io.StringIO()
    episodes[list(COLUMNS)].to_csv(buf, index=False, lineterminator="\n", float_format="%.17g")
    write_text(path, buf.getvalue())
    return Path(path)


def read_episodes(path: str | Path, data=None) -> pd.DataFrame:
    """Read an episodes CSV written by :func:`write_episodes`; with ``data``, check every row
    against it (non-train images the rater rated, the rater's own support scores)."""
    path = Path(path)
    refuse_key_file(path, field="episodes")  # never read, let alone quoted
    try:
        df = pd.read_csv(path, dtype={"rater_id": str, "k": str, "episode": str, "image_id": str, "role": str},
                         keep_default_na=False, na_values={"score": [""]})
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"cannot read the episodes file: {exc}", file=str(path)) from exc
    if tuple(df.columns) != COLUMNS:
        shown = (f"the file has one line, not the header ({ONE_LINE_NOT_QUOTED})" if df.empty else
                 f"header is {quote(','.join(map(str, df.columns)))}")
        raise InputError(f"{shown}, expected {','.join(COLUMNS)!r}", file=str(path), row=1)
    for col in ("k", "episode"):
        df[col] = _count_column(df[col], col, path)
    bad_role = ~df["role"].isin(ROLES).to_numpy()
    if bad_role.any():
        raise InputError(f"role {quote(df['role'].iloc[int(np.argmax(bad_role))])} is not one of {list(ROLES)}",
                         file=str(path), row=int(np.argmax(bad_role)) + 2, field="role")
    df["score"] = pd.to_numeric(df["score"], errors="coerce").astype(float)
    if data is not None:
        check_episodes(df, data, file=str(path))
    return df


def _count_column(column: pd.Series, name: str, path: Path) -> pd.Series:
    """``k`` or ``episode`` of an episodes file as int64: whole numbers in the toolkit's count range
    (0 to :data:`~aadb_toolkit._numbers.MAX_COUNT`), checked before the cast, which would wrap a
    larger one (1e30 became -9223372036854775808) into a misleading error or a silent value."""
    values = pd.to_numeric(column, errors="coerce")
    bad = (values.isna() | (values % 1 != 0)).to_numpy()
    if bad.any():
        raise InputError(f"{name} is not an integer", file=str(path), row=int(np.argmax(bad)) + 2, field=name)
    arr = values.to_numpy()  # int64, uint64 (2^63 and above) or float64 (1e30): compared exactly
    out = (arr < 0) | ((arr >= 2.0**63) if arr.dtype.kind == "f" else (arr > MAX_COUNT))
    if out.any():
        row = int(np.argmax(out))
        raise InputError(f"{name} is out of range ({quote(column.iloc[row])}; a whole number from 0 to {MAX_COUNT:,})",
                         file=str(path), row=row + 2, field=name)
    return values.astype("int64")


def check_episodes(episodes: pd.DataFrame, data, *, file: str | None = None) -> None:
    """Raise :class:`InputError` unless every episode row is a non-train image its rater rated,
    support rows carry the rater's own score, and support and queries of an episode are disjoint."""
    rated = non_train_ratings(data).set_index(["rater_id", "image_id"])["score"]
    keys = pd.MultiIndex.from_arrays([episodes["rater_id"].astype(str), episodes["image_id"].astype(str)])
    known = keys.isin(rated.index)
    if not known.all():
        row = int(np.argmax(~known))
        raise InputError(f"rater {quote(episodes['rater_id'].iloc[row])} has no rating of a validation/test image "
                         f"{quote(episodes['image_id'].iloc[row])}", file=file, row=row + 2, field="image_id")
    own = rated.reindex(keys).to_numpy(dtype=float)
    support = (episodes["role"] == ROLES[0]).to_numpy()
    wrong = support & ~np.isclose(episodes["score"].to_numpy(dtype=float), own)
    if wrong.any():
        raise InputError("support score differs from the rater's own score", file=file,
                         row=int(np.argmax(wrong)) + 2, field="score")
    dup = episodes.duplicated(["rater_id", "k", "episode", "image_id"]).to_numpy()
    if dup.any():
        raise InputError("an image appears twice in one episode (support and query must be disjoint)", file=file,
                         row=int(np.argmax(dup)) + 2, field="image_id")
    _check_episode_sizes(episodes, file)


def _check_episode_sizes(episodes: pd.DataFrame, file: str | None) -> None:
    """Raise unless k ≥ 1 and every episode has exactly k support rows and at least one query
    (an episode with more would be fitted on some of them only, one without a query scores nothing)."""
    k = episodes["k"].to_numpy()
    if (k < 1).any():
        row = int(np.argmax(k < 1))
        raise InputError(f"k must be a positive integer, got {k[row]}", file=file, row=row + 2, field="k")
    support = (episodes["role"] == ROLES[0]).to_numpy()
    key = episode_codes(episodes)
    n_support = np.bincount(key, weights=support, minlength=key.max(initial=-1) + 1)[key]
    n_query = np.bincount(key, weights=~support, minlength=key.max(initial=-1) + 1)[key]
    for bad, what in ((n_support != k, lambda i: f"{int(n_support[i])} support rows, expected k = {k[i]}"),
                      (n_query < 1, lambda i: "no query row")):
        if bad.any():
            i = int(np.argmax(bad))
            raise InputError(f"episode {episodes['episode'].iloc[i]} of rater {quote(episodes['rater_id'].iloc[i])} "
                             f"at k = {k[i]} has {what(i)}", file=file, row=i + 2, field="role")



def episode_codes(table: pd.DataFrame) -> np.ndarray:
    """One integer per row of an episodes table (or of its queries): the same for the rows of one
    episode (k, rater, episode number), numbered in order of first appearance."""
    return pd.factorize(table["k"].astype(str) + "\t" + table["rater_id"].astype(str) + "\t"
                        + table["episode"].astype(str))[0]


def published_table(data) -> tuple[pd.DataFrame, str]:
    """The episodes every publish adds as the ``piaa`` config (drawn with the protocol's defaults),
    in the published columns, and the card's note about them."""
    table = make_episodes(data)
    return table[list(COLUMNS)], published_note(table)


def published_note(episodes: pd.DataFrame) -> str:
    """What the dataset card says about the published ``piaa`` config of these episodes."""
    summary = summarize(episodes)
    raters = dict(zip(summary["k"], summary["n_raters"]))
    counts = ", ".join(f"{raters.get(k, 0)} raters at k = {k}" for k in DEFAULT_K)
    return (f"the personalized k-shot episodes of the piaa protocol ({DEFAULT_REPEATS} per rater, seed "
            f"{DEFAULT_SEED}, k = {', '.join(map(str, DEFAULT_K))}; {counts}), episodes "
            f"fingerprint {fingerprint(episodes)}; the score column holds the rater's own score on support rows only")

"""What both reference personalizers read from an episodes table (:mod:`.personalize`, the ridge,
and :mod:`.finetune`, the rank fine-tune): its support and query rows laid out per episode, the
generic score on the raters' scale, the query scores of per-episode linear corrections, and the
train split's own episodes with the one rule by which each personalizer chooses its penalty there."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from .. import schema
from ..errors import InputError, quote
from . import episodes as ep

log = logging.getLogger(__name__)


def episode_layout(episodes: pd.DataFrame, image_index: pd.Index):
    """Episode numbers, per k the (episode numbers, support image rows (E, k), own targets (E, k)),
    and for the query rows (image rows, episode numbers)."""
    ep_id = ep.episode_codes(episodes)
    rows = feature_rows(image_index, episodes["image_id"], "episode")
    support = (episodes["role"] == ep.ROLES[0]).to_numpy()
    target = schema.rescale_score(episodes["score"].to_numpy(dtype=float))
    supp: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for k in sorted(episodes["k"].unique()):
        sel = support & (episodes["k"] == k).to_numpy()
        order = np.argsort(ep_id[sel], kind="stable")
        e = ep_id[sel][order]
        if e.size % int(k):
            raise InputError(f"an episode at k = {k} does not have exactly {k} support rows", field="role")
        eps = e.reshape(-1, int(k))
        if (eps != eps[:, :1]).any():
            raise InputError(f"an episode at k = {k} does not have exactly {k} support rows", field="role")
        supp[int(k)] = (eps[:, 0], rows[sel][order].reshape(-1, int(k)), target[sel][order].reshape(-1, int(k)))
    return ep_id, supp, (rows[~support], ep_id[~support])


def feature_rows(image_index: pd.Index, image_ids: pd.Series, what: str) -> np.ndarray:
    """The rows of ``image_ids`` in ``image_index`` (the images a personalizer has features of);
    an image without features is an error naming it (``what``: episode or train)."""
    rows = image_index.get_indexer(image_ids.astype(str))
    if (rows < 0).any():
        raise InputError(f"no features for {what} image {quote(image_ids.iloc[int(np.argmax(rows < 0))])}",
                         field="image_id")
    return rows


def on_rater_scale(generic: np.ndarray, scale: float) -> np.ndarray:
    """The generic scores times ``scale`` (their slope onto the raters' scale), in float64."""
    if not (np.isfinite(scale) and scale >= 0):
        raise InputError(f"scale must be a finite number ≥ 0, got {scale}", field="scale")
    return scale * np.asarray(generic, dtype=np.float64)


def corrected_queries(features: np.ndarray, generic: np.ndarray, weights: np.ndarray, centre: np.ndarray,
                      offset: np.ndarray, queries: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Each query row's score ``generic[i] + weights[e]·(features[i] − centre[e]) + offset[e]``
    (``queries``: image rows i and episode numbers e, as :func:`episode_layout` gives them): the
    distinct query images' features times every episode's weights, then gathered, so no (query
    rows × features) array is built (train episodes can have hundreds of queries each)."""
    q_img, q_ep = queries
    uniq, inv = np.unique(q_img, return_inverse=True)
    fitted = features[uniq].astype(np.float64) @ weights.T  # (n_query_images, n_episodes)
    bias = offset - np.einsum("ed,ed->e", centre, weights)
    return generic[q_img] + fitted[inv, q_ep] + bias[q_ep]


#: Episodes drawn per train rater where a personalizer chooses its penalty on the train split ...
CHOICE_DRAWS: int = 20
#: ... and at most this many support images in all (fewer episodes per rater where many raters
#: qualify or k is large: the fine-tune holds every support image's features several times over).
MAX_CHOICE_SUPPORT: int = 10_000


def train_episodes(train_ratings: pd.DataFrame | None, image_index: pd.Index, k: int, *,
                   draws: int = CHOICE_DRAWS, seed: int = 0) -> pd.DataFrame:
    """Episodes of k support images drawn from the train split's ratings (``rater_id, image_id,
    score``), as the protocol draws its own from the other splits: where a reference personalizer
    chooses its penalty. The generic run was fitted on these images, so they may be read; the
    protocol's other episodes may not (their supports overlap an episode's queries). Where no
    rater has k + MIN_QUERIES train ratings, the largest k some rater allows (at least 3)."""
    if train_ratings is None or train_ratings.empty:
        raise InputError("choosing the penalty needs the train split's ratings (none given); pass a number "
                         "instead", field="train_ratings")
    feature_rows(image_index, train_ratings["image_id"], "train")
    ratings = train_ratings.sort_values(["rater_id", "image_id"], kind="stable")
    counts = ratings.groupby("rater_id").size() - ep.MIN_QUERIES  # the largest k each rater allows
    if counts.max() < 3:
        raise InputError(f"choosing the penalty needs a rater with at least {3 + ep.MIN_QUERIES} train "
                         "ratings; pass a number instead", field="train_ratings")
    k = min(int(k), int(counts.max()))
    repeats = max(1, min(draws, MAX_CHOICE_SUPPORT // (k * int((counts >= k).sum()))))
    return ep.draw_episodes(ratings, ks=(k,), repeats=repeats, seed=seed, query_scores=True)


def best_penalty(grid, goodness, *, what: str, table: pd.DataFrame) -> float:
    """The best of the penalties ``grid``, listed from weakest to strongest (``goodness``: higher
    is better); a weaker penalty must be strictly better than every stronger one, so ties go to the
    stronger (the simpler model, closer to the generic ranking). The choice is logged (``what``,
    the train episodes ``table`` it was made on), so a user sees which penalty was used."""
    best = len(goodness) - 1
    for i in range(len(goodness) - 2, -1, -1):
        if goodness[i] > goodness[best]:
            best = i
    chosen = grid[best]
    log.info("%s chosen on the train split at k = %d: %s (from %s; %d episodes of %d train raters)", what,
             int(table["k"].iloc[0]), "no correction" if np.isinf(chosen) else f"{chosen:g}",
             ", ".join("∞" if np.isinf(g) else f"{g:g}" for g in grid),
             table[["rater_id", "episode"]].drop_duplicates().shape[0], table["rater_id"].nunique())
    return chosen


def mean_episode_rho(episodes: pd.DataFrame, scores: np.ndarray) -> float:
    """Mean over the episodes of Spearman's ρ between ``scores`` (one per query row, in order) and
    the rater's own scores of those queries (a table of :func:`train_episodes`, which keeps them;
    episodes where they are all equal have no ρ and are skipped)."""
    from .._ranks import spearman

    q = ep.queries(episodes)
    key = ep.episode_codes(q)
    own = q["score"].to_numpy(dtype=float)
    rhos = [spearman(scores[i], own[i])[0] for i in pd.Series(np.arange(len(key))).groupby(key).indices.values()]
    return float(np.nanmean(rhos)) if rhos else float("nan")

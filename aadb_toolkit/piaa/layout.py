"""What both reference personalizers read from an episodes table (:mod:`.personalize`, the ridge,
and :mod:`.finetune`, the rank fine-tune): its support and query rows laid out per episode, and
the generic score on the raters' scale."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import schema
from ..errors import InputError
from . import episodes as ep


def episode_layout(episodes: pd.DataFrame, image_index: pd.Index):
    """Episode numbers, per k the (episode numbers, support image rows (E, k), own targets (E, k)),
    and for the query rows (image rows, episode numbers)."""
    key = episodes["k"].astype(str) + "\t" + episodes["rater_id"].astype(str) + "\t" + episodes["episode"].astype(str)
    ep_id, _ = pd.factorize(key)
    rows = image_index.get_indexer(episodes["image_id"].astype(str))
    if (rows < 0).any():
        missing = episodes["image_id"].iloc[int(np.argmax(rows < 0))]
        raise InputError(f"no features for episode image {missing!r}", field="image_id")
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


def on_rater_scale(generic: np.ndarray, scale: float) -> np.ndarray:
    """The generic scores times ``scale`` (their slope onto the raters' scale), in float64."""
    if not (np.isfinite(scale) and scale >= 0):
        raise InputError(f"scale must be a finite number ≥ 0, got {scale}", field="scale")
    return scale * np.asarray(generic, dtype=np.float64)

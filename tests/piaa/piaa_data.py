"""Hand-made rating tables for the piaa tests: every rater's images and scores are chosen by the
test, so eligibility and ρ values can be computed by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd

from aadb_toolkit.sources import AADBData


def make_data(ratings: list[tuple[str, str, float]], splits: dict[str, str]) -> AADBData:
    """An AADBData from (rater_id, image_id, score) triples and image_id → split."""
    images = pd.DataFrame({"image_id": list(splits), "split": list(splits.values())})
    r = pd.DataFrame(ratings, columns=["rater_id", "image_id", "score"])
    r.insert(0, "batch_id", "B" + r["image_id"])  # one batch per image: enough for the key columns
    means = r.groupby("image_id")["score"].mean()
    images["score_mean"] = images["image_id"].map(means).astype(float)
    images["score"] = (images["score_mean"] - 1) / 4

    def read(image_id: str) -> bytes:
        raise KeyError(image_id)

    return AADBData(images=images, ratings=r, origin="hand-made", read_image_bytes=read)


def workload_data(counts: dict[str, tuple[int, int]]) -> AADBData:
    """Raters with (n train images, n validation/test images) each; scores cycle 1..5."""
    ratings, splits = [], {}
    for rater, (n_train, n_other) in counts.items():
        for i in range(n_train + n_other):
            image = f"{rater}_img{i:04d}"
            splits[image] = "train" if i < n_train else ("validation" if i % 2 else "test")
            ratings.append((rater, image, float(1 + (i * 7 + len(rater)) % 5)))
    return make_data(ratings, splits)


def planted_taste(n_images: int = 120, d: int = 6, seed: int = 0):
    """Images with features; rater Rx likes feature 0, rater Ry dislikes it; the generic score is
    feature 1 only. Own scores on 1..5 follow generic ± taste. Returns ``(data, index, features,
    generic)``, shared by the tests of both reference personalizers."""
    rng = np.random.default_rng(seed)
    ids = [f"img{i:04d}" for i in range(n_images)]
    feats = rng.normal(size=(n_images, d)).astype(np.float32)
    generic = 0.5 + 0.1 * feats[:, 1]
    ratings = []
    for rater, taste in (("Rx", 1.0), ("Ry", -1.0)):
        latent = feats[:, 1] + 2.0 * taste * feats[:, 0]
        own = np.clip(np.rint(3 + latent * 0.8), 1, 5)
        ratings += [(rater, i, float(s)) for i, s in zip(ids, own)]
    data = make_data(ratings, {i: ("validation" if j % 3 == 0 else "test") for j, i in enumerate(ids)})
    return data, pd.Index(ids), feats, generic


def no_taste_data(seed: int = 2):
    """150 images with 40 features; three raters score the generic model's own feature 1 with
    rating noise and no taste of their own: the generic ranking is every rater's best guess.
    Returns ``(data, index, features, generic)``."""
    rng = np.random.default_rng(seed)
    ids = [f"img{i:04d}" for i in range(150)]
    feats = rng.normal(size=(150, 40)).astype(np.float32)
    generic = 0.5 + 0.2 * feats[:, 1]  # on the raters' [0, 1] scale: (3 + 0.8 f − 1) / 4
    ratings = [(r, i, float(np.clip(np.rint(3 + 0.8 * feats[j, 1] + rng.normal(0, 0.7)), 1, 5)))
               for r in ("Ra", "Rb", "Rc") for j, i in enumerate(ids)]
    data = make_data(ratings, {i: ("validation" if j % 3 == 0 else "test") for j, i in enumerate(ids)})
    return data, pd.Index(ids), feats, generic


def taste_with_train_split(taste: float, d: int = 60, n_images: int = 400, seed: int = 0):
    """``n_images`` images with ``d`` features, half of them in the train split; six raters score
    feature 1 (the generic model's) plus ± ``taste`` × feature 0, with rating noise; features 2..d
    show nothing a rater cares about (as most of fc7 does). Returns ``(data, index, features,
    generic, utility)``, utility: rater_id → each image's noise-free value for that rater."""
    rng = np.random.default_rng(seed)
    ids = [f"img{i:04d}" for i in range(n_images)]
    feats = rng.normal(size=(n_images, d)).astype(np.float32)
    generic = 0.5 + 0.2 * feats[:, 1]  # on the raters' [0, 1] scale: (3 + 0.8 f − 1) / 4
    ratings, utility = [], {}
    for j, rater in enumerate(("Ra", "Rb", "Rc", "Rd", "Re", "Rf")):
        utility[rater] = feats[:, 1] + (taste if j % 2 else -taste) * feats[:, 0]
        own = np.clip(np.rint(3 + 0.8 * utility[rater] + rng.normal(0, 0.5, n_images)), 1, 5)
        ratings += [(rater, i, float(s)) for i, s in zip(ids, own)]
    splits = {i: ("train" if j % 2 == 0 else "validation" if j % 4 == 1 else "test") for j, i in enumerate(ids)}
    return make_data(ratings, splits), pd.Index(ids), feats, generic, utility


def train_ratings(data: AADBData) -> pd.DataFrame:
    """The ratings of the train split's images (what ``aadb personalize`` chooses α from)."""
    train = set(data.split("train")["image_id"])
    return data.ratings[data.ratings["image_id"].isin(train)][["rater_id", "image_id", "score"]]


def mean_episode_rho(table: pd.DataFrame, index: pd.Index, scores: np.ndarray, truth) -> float:
    """Mean over the episodes of ``table`` of Spearman's ρ between ``scores`` (one per query row)
    and the truth of the query images: ``truth`` is one value per image (aligned with ``index``)
    or a mapping rater_id → such values (each rater's own truth)."""
    from aadb_toolkit._ranks import spearman
    from aadb_toolkit.piaa import episodes as ep

    q = ep.queries(table)
    key = (q["rater_id"] + "\t" + q["episode"].astype(str)).to_numpy()
    rows = index.get_indexer(q["image_id"])
    if isinstance(truth, dict):
        values = np.array([truth[r][i] for r, i in zip(q["rater_id"], rows)])
    else:
        values = np.asarray(truth)[rows]
    return float(np.mean([spearman(scores[key == e], values[key == e])[0] for e in np.unique(key)]))

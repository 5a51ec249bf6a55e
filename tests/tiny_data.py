"""A hand-built curated folder in the canonical format (SPEC §3), made without ``simulate`` or
``curate`` so that each stage's tests stay independent of the others and fast."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from aadb_toolkit import schema
from aadb_toolkit._atomic import write_marker
from aadb_toolkit.data import sha256_fingerprint


def make_tiny_curated(root: Path, *, n_batches: int = 20, seed: int = 0, image_size: int = 48,
                      noise_raters: float = 0.0) -> Path:
    """Write a curated folder with ``n_batches`` × 10 images and 5 raters per batch.

    Planted truth: image brightness and saturation encode a latent quality ``q`` that drives
    every rater's score (with per-rater bias and noise); ``noise_raters`` is the share of raters
    who answer uniformly at random. Returns the curated folder; the release (images) sits beside it.
    """
    rng = np.random.default_rng(seed)
    release = root / "release"
    img_dir = release / schema.RELEASE_IMAGE_DIR
    img_dir.mkdir(parents=True, exist_ok=True)
    n_raters = max(8, n_batches)
    workload = rng.zipf(1.6, size=n_raters).astype(float)
    workload /= workload.sum()
    bias = rng.normal(0, 0.3, n_raters)
    random_rater = rng.random(n_raters) < noise_raters
    image_rows, rating_rows = [], []
    n_train = round(n_batches * 0.85)
    n_val = max(1, round(n_batches * 0.05))
    for b in range(n_batches):
        batch_id = f"HIT{b:05d}"
        split = "train" if b < n_train else ("validation" if b < n_train + n_val else "test")
        raters = rng.choice(n_raters, size=schema.RATERS_PER_BATCH, replace=False, p=workload)
        for i in range(schema.IMAGES_PER_BATCH):
            image_id = f"farm{b % 9 + 1}_{1000 + b}_{10**9 + b * 10 + i}_{b * 10 + i:010x}_b.jpg"
            q = rng.normal()
            level = int(np.clip(128 + 45 * q, 10, 245))
            arr = np.empty((image_size, image_size, 3), np.uint8)
            arr[...] = (level, int(np.clip(255 - level, 0, 255)), level // 2)
            arr = np.clip(arr.astype(int) + rng.integers(-8, 9, arr.shape), 0, 255).astype(np.uint8)
            buf = io.BytesIO()
            Image.fromarray(arr).save(buf, format="JPEG", quality=90)
            (img_dir / image_id).write_bytes(buf.getvalue())
            digest = sha256_fingerprint(buf.getvalue())
            scores, votes = [], []
            for r in raters:
                if random_rater[r]:
                    s = int(rng.integers(1, 6))
                else:
                    s = int(np.clip(np.rint(3 + 1.1 * q + bias[r] + rng.normal(0, 0.5)), 1, 5))
                v = rng.integers(-1, 2, size=len(schema.ATTRIBUTES))
                scores.append(s)
                votes.append(v)
                rating_rows.append({
                    "image_id": image_id, "rater_id": f"r{r:04d}", "batch_id": batch_id, "score": s,
                    **{a: int(x) for a, x in zip(schema.ATTRIBUTES, v)},
                    "submit_time": pd.Timestamp("2015-06-01") + pd.Timedelta(minutes=int(b * 10 + i)),
                })
            mean = float(np.mean(scores))
            att = np.mean(votes, axis=0)
            image_rows.append({
                "image_id": image_id, "split": split, "score_mean": mean,
                "score": float(schema.rescale_score(mean)), "n_ratings": len(scores),
                **{a: float(x) for a, x in zip(schema.ATTRIBUTES, att)},
                "width": image_size, "height": image_size, "exif_orientation": 1,
                "source_url": f"https://farm1.staticflickr.com/{1000 + b}/{image_id[:-6]}_b.jpg",
                "license": "", "path": f"{schema.RELEASE_IMAGE_DIR}/{image_id}", "flags": "",
                "latent_quality": q, schema.IMAGE_SHA256: digest,
            })
    images = pd.DataFrame(image_rows)
    truth = images[["image_id", "latent_quality"]]
    images = images.drop(columns="latent_quality")[list(schema.CURATED_IMAGE_COLUMNS)]
    images["n_ratings"] = images["n_ratings"].astype("int64")
    ratings = pd.DataFrame(rating_rows)[list(schema.RATING_COLUMNS)]
    for a in schema.ATTRIBUTES:
        ratings[a] = ratings[a].astype("int8")
    ratings["score"] = ratings["score"].astype("int8")
    curated = root / "curated"
    curated.mkdir(parents=True, exist_ok=True)
    images.to_parquet(curated / schema.CURATED_IMAGES, index=False)
    ratings.to_parquet(curated / schema.CURATED_RATINGS, index=False)
    (curated / schema.CURATED_MANIFEST).write_text(json.dumps({
        "format": schema.CURATED_FORMAT, "format_version": schema.CURATED_FORMAT_VERSION,
        "release_root": str(release.resolve()),
    }))
    write_marker(curated, "curated")  # as `aadb curate` marks its output
    truth.to_parquet(root / "truth_images.parquet", index=False)
    pd.DataFrame({"rater_id": [f"r{r:04d}" for r in range(n_raters)], "random": random_rater,
                  "bias": bias}).to_parquet(root / "truth_raters.parquet", index=False)
    return curated


def memory_source(truth: pd.Series, kind: str = "memory", split: str = "test", synthetic: bool = False):
    """A data source in memory whose ``split`` has ``truth`` (indexed by image_id) as mean scores:
    enough for the protocols' in-memory ``evaluate`` (``kind="ava"`` for an AVA source)."""
    from aadb_toolkit.data import AADBData, Provenance

    images = pd.DataFrame({"image_id": truth.index.astype(str), "split": split, "score_mean": truth.to_numpy()})
    return AADBData(images=images, ratings=None, origin="memory", read_image_bytes=lambda i: b"",
                    provenance=Provenance("memory", kind=kind, synthetic=synthetic))

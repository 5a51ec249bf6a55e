"""The layout of a published AADB dataset repository: config names, folders, shard names, the
parquet writer settings (fixed, so the same input gives byte-identical files) and the columns of
each config. Every other module of :mod:`aadb_toolkit.hub` takes these facts from here."""

from __future__ import annotations

import re
from typing import Final

from .. import schema

#: Config with one row per image (image bytes embedded, that image's ratings nested).
CONFIG_IMAGES: Final[str] = "default"
#: Config with one row per rating (the long table the consistency analysis reads).
CONFIG_RATINGS: Final[str] = "ratings"
#: Config with one row per episode image of the personalized k-shot protocol (docs/protocols.md, piaa).
CONFIG_PIAA: Final[str] = "piaa"
#: The piaa config's one split (its images are the validation and test images, never train).
PIAA_SPLIT: Final[str] = "episodes"
#: Folder of each config's parquet shards inside the repository.
CONFIG_DIRS: Final[dict[str, str]] = {CONFIG_IMAGES: "data", CONFIG_RATINGS: "ratings", CONFIG_PIAA: "piaa"}

#: A Hub dataset repository id is ``ORG/NAME``. One part (ORG or NAME) of a Hub repo id, by the Hub's own rule: 1–96 letters, digits, "-", "_"
#: and ".", starting and ending with a letter or digit, with no "--" or "..".
REPO_ID_PART: Final[re.Pattern[str]] = re.compile(r"^(?!.*(--|\.\.))[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?$")


def is_repo_id(text: str) -> bool:
    """True for a Hub repository id of the form ``ORG/NAME`` (see :data:`REPO_ID_PART`)."""
    parts = str(text).split("/")
    return len(parts) == 2 and all(REPO_ID_PART.match(p) for p in parts)


README: Final[str] = "README.md"
LICENSE: Final[str] = "LICENSE.md"
#: The top-level entries of a published folder: all a publish writes, and all a republish may replace.
PUBLISHED_ENTRIES: Final[frozenset[str]] = frozenset({README, LICENSE, *CONFIG_DIRS.values()})

#: Target size of one parquet shard (the Hub's dataset viewer and `datasets.push_to_hub` use 500 MB).
DEFAULT_SHARD_SIZE_MB: Final[int] = 500
#: Rows per parquet row group: ~100 images keeps random access to one image cheap (and is what
#: the Hub's viewer recommends for image datasets); the ratings table is small per row.
IMAGE_ROW_GROUP_ROWS: Final[int] = 100
RATING_ROW_GROUP_ROWS: Final[int] = 100_000
#: Compression of everything except the already-compressed image bytes (stored as is).
PARQUET_COMPRESSION: Final[str] = "zstd"
PARQUET_COMPRESSION_LEVEL: Final[int] = 3

#: Parquet schema metadata key holding the pandas dtypes of the canonical columns (JSON), so
#: `load_published` returns exactly the curated dtypes (e.g. nullable ``Int8`` votes).
DTYPES_METADATA_KEY: Final[bytes] = b"aadb_toolkit.pandas_dtypes"

#: Columns of the `default` config, in order: the image, the canonical image columns, and the
#: nested list of that image's ratings.
IMAGE_FEATURE: Final[str] = "image"
NESTED_RATINGS: Final[str] = "ratings"
IMAGE_CONFIG_COLUMNS: Final[tuple[str, ...]] = (
    IMAGE_FEATURE,
    "image_id",
    "split",
    "score",
    "score_mean",
    "n_ratings",
    *schema.ATTRIBUTES,
    "width",
    "height",
    "exif_orientation",
    "source_url",
    "license",
    "flags",
    "path",
    NESTED_RATINGS,
)
#: Fields of each nested rating (the `ratings` table without the image id).
NESTED_RATING_FIELDS: Final[tuple[str, ...]] = tuple(c for c in schema.RATING_COLUMNS if c != "image_id")


def shard_name(config: str, split: str, index: int, count: int) -> str:
    """Repository path of one parquet shard, named as `datasets.push_to_hub` names them."""
    return f"{CONFIG_DIRS[config]}/{split}-{index:05d}-of-{count:05d}.parquet"


def split_pattern(config: str, split: str) -> str:
    """The `data_files` glob of one split of one config in the dataset card."""
    return f"{CONFIG_DIRS[config]}/{split}-*"


def size_category(n: int) -> str:
    """The Hub's `size_categories` bucket for ``n`` examples."""
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
              (10_000_000, "1M<n<10M")]
    for bound, name in bounds:
        if n < bound:
            return name
    return "10M<n<100M"

"""Read a published AADB dataset folder (or a Hub repo) back into the canonical tables, with
random access to the image bytes embedded in its parquet shards."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .. import schema
from .._jsonfile import parse_json_object
from .._paths import inside
from ..data import AADBData, Provenance
from ..data import table_to_pandas
from ..errors import InputError, SourceError, excerpt, quote
from . import card as card_mod
from . import layout

#: Row groups of image bytes kept decoded in memory per reader (about 100 images each).
_CACHED_ROW_GROUPS = 4


def is_published_folder(path: Path) -> bool:
    """True when ``path`` holds a dataset card whose configs include this toolkit's two configs."""
    readme = Path(path) / layout.README
    if not readme.is_file():
        return False
    try:
        meta = card_mod.read_metadata(readme)
    except InputError:
        return False
    configs = meta.get("configs")
    names = {c.get("config_name") for c in configs if isinstance(c, dict) and isinstance(c.get("config_name"), str)} \
        if isinstance(configs, list) else set()
    return {layout.CONFIG_IMAGES, layout.CONFIG_RATINGS} <= names


def _check_card_shapes(meta: dict, readme: Path) -> None:
    """The parts of the card's YAML that loading reads have the shapes the Hub defines: ``configs``
    a list of tables whose ``data_files`` list ``split`` and ``path`` (a pattern or a list of them),
    ``dataset_info`` a table or a list of tables whose ``splits`` list tables, ``tags`` a list and
    the test list one of :data:`~aadb_toolkit.schema.TEST_LISTS` (it names files in the card).
    Anything else is a :class:`SourceError` naming the key."""
    def bad(key: str, expected: str) -> SourceError:
        return SourceError(f"{readme}: the card's {key!r} is not {expected}")

    for i, entry in enumerate(meta.get("configs") or []):
        if not isinstance(entry, dict):
            raise bad(f"configs[{i}]", "a table")
        files = entry.get("data_files") or []
        if not isinstance(files, list):
            raise bad(f"configs[{i}].data_files", "a list")
        for j, item in enumerate(files):
            path = item.get("path") if isinstance(item, dict) else None
            paths = path if isinstance(path, list) else [path]
            if not isinstance(item, dict) or not isinstance(item.get("split"), str) or not paths \
                    or not all(isinstance(x, str) for x in paths):
                raise bad(f"configs[{i}].data_files[{j}]", "a table with a split name and a path (or list of paths)")
    _check_info_shapes(meta.get("dataset_info") or [], bad)
    if not isinstance(meta.get("tags") or [], list):
        raise bad("tags", "a list")
    if meta.get(card_mod.TEST_LIST_KEY) not in (None, *schema.TEST_LISTS):
        raise bad(card_mod.TEST_LIST_KEY, f"one of the release's test lists {list(schema.TEST_LISTS)}")


def _check_info_shapes(infos: object, bad) -> None:
    """``dataset_info`` is a table or a list of tables whose ``splits`` list tables, each split's
    ``num_examples`` (when given) a non-negative integer: the row count loading checks the shards
    against, so any other value is refused here, by its key, and never repeated in a message."""
    for i, info in enumerate(infos if isinstance(infos, list) else [infos]):
        if not isinstance(info, dict):
            raise bad(f"dataset_info[{i}]", "a table")
        splits = info.get("splits") or []
        if not isinstance(splits, list) or not all(isinstance(x, dict) for x in splits):
            raise bad(f"dataset_info[{i}].splits", "a list of tables")
        for j, split in enumerate(splits):
            n = split.get("num_examples", 0)
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise bad(f"dataset_info[{i}].splits[{j}].num_examples", "a non-negative integer")


def _split_files(folder: Path, meta: dict, config: str) -> dict[str, list[Path]]:
    """The parquet files of each split of one config, as the card's ``data_files`` declare them."""
    for entry in meta.get("configs") or []:
        if entry.get("config_name") == config:
            out = {}
            for item in entry.get("data_files") or []:
                patterns = item["path"] if isinstance(item["path"], list) else [item["path"]]
                out[item["split"]] = sorted({p for pat in patterns for p in _glob(folder, pat)
                                             if p.is_file() and _contained(folder, p)})
            return out
    raise SourceError(f"{folder / layout.README}: no config {config!r}")


def _contained(folder: Path, file: Path) -> bool:
    """A card's pattern never climbs out of the folder, and a link never leads out of it — or, for a
    snapshot in the Hugging Face cache (whose files link to ``../../blobs``), out of its repository's
    cache folder."""
    if ".." in file.relative_to(folder).parts:
        return False
    root = folder.parent.parent if folder.parent.name == "snapshots" else folder
    return inside(root, file)


def _glob(folder: Path, pattern: object) -> list[Path]:
    try:
        return list(folder.glob(str(pattern)))
    except (ValueError, NotImplementedError):  # an absolute or otherwise unusable pattern
        return []


def _check_complete(folder: Path, meta: dict, config: str, files: dict[str, list[Path]]) -> None:
    """Every split the card declares for ``config`` has shards holding exactly the declared number
    of rows, so a missing or truncated download is an error, never a silently smaller dataset."""
    declared = {}
    infos = meta.get("dataset_info") or []
    for info in infos if isinstance(infos, list) else [infos]:
        if isinstance(info, dict) and info.get("config_name", layout.CONFIG_IMAGES) == config:
            declared = {s.get("name"): s.get("num_examples") for s in info.get("splits") or []}
    readme = folder / layout.README
    for split, paths in files.items():
        if not paths:
            raise SourceError(f"{readme}: config {config!r} split {quote(split)} declares shards that are missing "
                              f"(no file matches its data_files)")
        if split in declared:
            try:
                rows = sum(pq.ParquetFile(p).metadata.num_rows for p in paths)
            except (OSError, pa.ArrowInvalid) as exc:
                raise SourceError(f"{folder}: cannot read the shards of config {config!r} split {quote(split)}: {exc}") from exc
            if rows != declared[split]:
                raise SourceError(f"{readme}: config {config!r} split {quote(split)} declares {quote(declared[split])} rows but "
                                  f"its {len(paths)} shard(s) hold {rows} (a shard is missing or was changed)")


class ParquetImageReader:
    """Image bytes by image id, read on demand from the ``image`` column of the `default` config's
    shards one row group at a time (a few row groups cached). Picklable, for data-loader workers."""

    def __init__(self, locations: dict[str, tuple[str, int, int]]) -> None:
        self._locations = locations
        self._cache: OrderedDict[tuple[str, int], list] = OrderedDict()
        self._lock = threading.Lock()

    def __getstate__(self):
        return {"_locations": self._locations}

    def __setstate__(self, state):
        self.__init__(state["_locations"])

    def __call__(self, image_id: str) -> bytes:
        try:
            shard, group, row = self._locations[image_id]
        except KeyError:
            raise KeyError(f"unknown image_id {image_id!r}") from None
        key = (shard, group)
        with self._lock:
            images = self._cache.get(key)
            if images is None:
                try:
                    table = pq.ParquetFile(shard).read_row_group(group, columns=[layout.IMAGE_FEATURE])
                    images = table.column(layout.IMAGE_FEATURE).to_pylist()
                except (OSError, KeyError, ValueError, pa.ArrowException) as exc:
                    raise InputError(f"cannot read the image bytes: {excerpt(exc, 120)}", file=shard,
                                     field=layout.IMAGE_FEATURE) from exc
                self._cache[key] = images
                while len(self._cache) > _CACHED_ROW_GROUPS:
                    self._cache.popitem(last=False)
            else:
                self._cache.move_to_end(key)
        cell = images[row]
        data = cell.get("bytes") if isinstance(cell, dict) else None
        if not isinstance(data, bytes) or not data:
            raise InputError(f"image {excerpt(image_id)!r} has no image bytes", file=shard, field=layout.IMAGE_FEATURE)
        return data


def load_published(path: Path, *, kind: str = "published", origin: str | None = None) -> AADBData:
    """Load a folder written by :func:`aadb_toolkit.hub.publish` as the canonical tables (same
    columns and dtypes as a curated folder), image bytes read lazily from the parquet shards. The
    provenance says synthetic when the card carries the ``synthetic`` tag."""
    folder = Path(path)
    if not is_published_folder(folder):
        raise SourceError(f"{folder}: not a published AADB dataset folder (no README.md declaring the "
                          f"{layout.CONFIG_IMAGES!r} and {layout.CONFIG_RATINGS!r} configs)")
    meta = card_mod.read_metadata(folder / layout.README)
    _check_card_shapes(meta, folder / layout.README)
    image_files = _split_files(folder, meta, layout.CONFIG_IMAGES)
    rating_files = _split_files(folder, meta, layout.CONFIG_RATINGS)
    _check_complete(folder, meta, layout.CONFIG_IMAGES, image_files)
    _check_complete(folder, meta, layout.CONFIG_RATINGS, rating_files)
    unknown = sorted((set(image_files) | set(rating_files)) - set(schema.SPLITS))
    if unknown:  # their shards would be left out without a word
        raise SourceError(f"{folder / layout.README}: the card declares split(s) {', '.join(map(quote, unknown))}; an AADB folder has only "
                          f"{list(schema.SPLITS)}")
    image_parts, rating_parts, locations = [], [], {}
    for split in schema.SPLITS:
        for f in image_files.get(split, []):
            table = _read(f, [c for c in schema.IMAGE_COLUMNS])
            if (table["split"].astype(str) != split).any():
                raise SourceError(f"{f}: the card files this shard under split {split!r}, but its rows name "
                                  f"{', '.join(quote(s) for s in sorted(set(table['split'].astype(str)) - {split})[:3])}; "
                                  "republish the folder")
            image_parts.append(table)
            pf = pq.ParquetFile(f)
            sizes = [pf.metadata.row_group(i).num_rows for i in range(pf.metadata.num_row_groups)]
            starts = np.concatenate([[0], np.cumsum(sizes)])
            rows = np.arange(len(table))
            groups = np.searchsorted(starts, rows, side="right") - 1
            for image_id, g, r in zip(table["image_id"], groups, rows - starts[groups]):
                locations[image_id] = (str(f), int(g), int(r))
        for f in rating_files.get(split, []):
            rating_parts.append(_read(f, list(schema.RATING_COLUMNS)))
    if not image_parts:
        raise SourceError(f"{folder}: the {layout.CONFIG_IMAGES!r} config has no parquet shards")
    images = pd.concat(image_parts, ignore_index=True)
    ratings = (pd.concat(rating_parts, ignore_index=True) if rating_parts
               else pd.DataFrame({c: [] for c in schema.RATING_COLUMNS}))
    provenance = Provenance(origin=origin or str(folder), kind=kind, synthetic=card_mod.is_synthetic_card(meta),
                            test_list=meta.get(card_mod.TEST_LIST_KEY))
    return AADBData(images=images, ratings=ratings, origin=str(folder), read_image_bytes=ParquetImageReader(locations),
                    provenance=provenance)


def _read(file: Path, columns: list[str]) -> pd.DataFrame:
    """Some columns of one shard as pandas, with the pandas dtypes recorded at publishing; a
    missing column is a clear error naming the file."""
    try:
        table = pq.read_table(file, columns=columns)
    except (OSError, KeyError, ValueError, pa.ArrowInvalid) as exc:
        raise SourceError(f"{file}: cannot read columns {columns}: {exc}") from exc
    df = table_to_pandas(table, str(file))
    recorded = (table.schema.metadata or {}).get(layout.DTYPES_METADATA_KEY)
    if recorded:
        dtypes = {c: d for c, d in _recorded_dtypes(recorded, file).items() if c in df.columns}
        try:
            df = df.astype(dtypes)
        except (TypeError, ValueError) as exc:
            raise SourceError(f"{file}: columns do not fit their recorded dtypes {dtypes}: {exc}") from exc
    return df


def _recorded_dtypes(raw: bytes, file: Path) -> dict[str, str]:
    """Column → pandas dtype name, as a shard's metadata records them, read by the shared JSON
    reader: metadata that is not UTF-8, not JSON, nested too deeply or not a table of dtype names
    is a :class:`SourceError` naming the shard, as every other fault of a published folder."""
    what = f"its {layout.DTYPES_METADATA_KEY.decode()} metadata"
    try:
        recorded = parse_json_object(raw, file=str(file), what=what)
    except InputError as exc:
        raise SourceError(str(exc)) from None
    if not all(isinstance(d, str) for d in recorded.values()):
        raise SourceError(f"{file}: {what} is not a table of dtype names")
    return recorded


def load_from_hub(repo_id: str, *, revision: str | None = None) -> AADBData:
    """Download (or reuse from the local cache) a published dataset repo from the Hub, or from the
    endpoint in ``HF_ENDPOINT``, and load it; ``HF_HUB_OFFLINE=1`` uses the cache only."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError,
                                        RepositoryNotFoundError, RevisionNotFoundError)

    endpoint = os.environ.get("HF_ENDPOINT") or None
    try:
        folder = snapshot_download(repo_id, repo_type="dataset", revision=revision, endpoint=endpoint)
    except LocalEntryNotFoundError as exc:
        raise SourceError(f"{repo_id}: not in the local cache and the Hub cannot be reached "
                          f"(offline or no network): {exc}") from exc
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError) as exc:
        raise SourceError(f"{repo_id}: no such dataset repository or revision on "
                          f"{endpoint or 'the Hugging Face Hub'} ({type(exc).__name__})") from exc
    except HfHubHTTPError as exc:
        raise SourceError(f"{repo_id}: download failed: {exc}") from exc
    return load_published(Path(folder), kind="hub", origin=repo_id)

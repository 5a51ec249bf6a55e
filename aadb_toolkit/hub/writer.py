"""Write a curated AADB as a Hugging Face dataset repository on disk: parquet shards per config
and split (images embedded with the `datasets` ``Image`` feature, each image's ratings nested with
rater and batch ids), the long ratings table, and the dataset card. The folder is the single
source of truth for what :func:`aadb_toolkit.hub.push` uploads."""

from __future__ import annotations

import io
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from .. import _atomic, schema
from .._paths import input_folders
from ..data import AADBData
from ..errors import InputError, SourceError, excerpt, quote
from . import card as card_mod
from . import layout

log = logging.getLogger(__name__)
#: Output-marker kind of a published folder (see :mod:`aadb_toolkit._atomic`).
PUBLISHED_KIND = "published"


@dataclass(frozen=True)
class PublishResult:
    """What :func:`publish` wrote: the folder, every file with its size, and the counts per split."""

    out: Path
    files: dict[str, int]
    n_images: dict[str, int]
    n_ratings: dict[str, int]
    n_raters: int
    n_batches: int
    gated: bool
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ExtraConfig:
    """A table published as a config of its own with one split (the ``piaa`` episodes: built by
    :func:`aadb_toolkit.hub.piaa_config` from :func:`aadb_toolkit.piaa.episodes.published_table`),
    and the card note that describes it.
    An empty table is left out with a note, as `datasets` cannot load an empty split."""

    name: str
    split: str
    table: pd.DataFrame
    note: str


def publish(data: AADBData, out: Path, *, gated: bool = False,
            shard_size_mb: float = layout.DEFAULT_SHARD_SIZE_MB,
            consistency_summary: dict | None = None, repo_id: str | None = None,
            extra_configs: tuple[ExtraConfig, ...] = (), progress: bool | None = None) -> PublishResult:
    """Publish loaded data (see :func:`aadb_toolkit.sources.load`) as a dataset repository at ``out``.

    The folder is built aside and swapped in only when complete and its card validates, so a failed
    publish leaves the previous folder untouched. The same input always gives byte-identical files.
    ``repo_id`` only names the repository in the card's loading example; ``extra_configs`` are
    further configs (``aadb publish`` adds the ``piaa`` episodes). ``progress``: show a bar (None: on
    a terminal only).
    """
    _check_publish_options(shard_size_mb, repo_id)
    _check_test_list(data)
    _check_image_hashes(data)
    out = Path(out)
    _check_out_folder(out, data.origin)
    images, ratings, notes = canonical_tables(data)
    shard_bytes = int(shard_size_mb * 1024 * 1024)
    with _atomic.atomic_dir(out, kind=PUBLISHED_KIND) as stage:
        image_schema, rating_schema = _config_schemas(images, ratings)
        split_infos = _write_splits(stage, images, ratings, data, image_schema, rating_schema, shard_bytes, notes,
                                    progress)
        extra_features = _write_extra_configs(stage, extra_configs, split_infos, notes)
        facts = card_mod.CardFacts(
            image_features=image_schema, rating_features=rating_schema, splits=split_infos,
            n_raters=int(ratings["rater_id"].nunique()), n_batches=int(ratings["batch_id"].nunique()),
            n_images=len(images), n_ratings=len(ratings),
            n_known_license=int((images["license"].fillna("").astype(str).str.len() > 0).sum()),
            n_known_url=int((images["source_url"].fillna("").astype(str).str.len() > 0).sum()),
            gated=gated, consistency_summary=consistency_summary, notes=tuple(notes),
            synthetic=data.provenance.synthetic, repo_hint=repo_id or card_mod.REPO_PLACEHOLDER,
            test_list=data.provenance.test_list, extra_features=extra_features,
        )
        files = _write_card(stage, facts)
    log.debug("published %d images and %d ratings to %s", len(images), len(ratings), out)  # the CLI says it
    return PublishResult(
        out=out, files=files,
        n_images={s: v["num_examples"] for s, v in split_infos[layout.CONFIG_IMAGES].items()},
        n_ratings={s: v["num_examples"] for s, v in split_infos[layout.CONFIG_RATINGS].items()},
        n_raters=facts.n_raters, n_batches=facts.n_batches, gated=gated, notes=notes,
    )


def _check_image_hashes(data: AADBData) -> None:
    """Refuse a curated folder that records no sha256 of its images (curated by an older version):
    without them, nothing ties the files its ``release_root`` names to what curation checked."""
    if data.provenance.kind == "curated" and not getattr(data.read_image_bytes, "hashes_recorded", False):
        raise InputError(f"the curated images table records no sha256 of the image files ({schema.IMAGE_SHA256!r} "
                         "column), so publishing cannot check that each image is the file curation validated; "
                         "curate the release again with this version (aadb curate) and publish the new folder",
                         file=str(Path(data.origin) / schema.CURATED_IMAGES))


def _check_test_list(data: AADBData) -> None:
    """The data's test list is None or a known label list: the card names its files in a code span
    and records it in the YAML, so other text (data built in memory, not by a loader) is refused."""
    value = data.provenance.test_list
    if value is not None and value not in schema.TEST_LISTS:
        raise InputError(f"test list {quote(value)} is not one of {list(schema.TEST_LISTS)} (or None)",
                         file=data.origin, field="test_list")


def _check_publish_options(shard_size_mb: float, repo_id: str | None) -> None:
    if shard_size_mb <= 0:
        raise InputError(f"shard size must be a positive number of MB, got {shard_size_mb}", field="shard_size_mb")
    if repo_id is not None and not layout.is_repo_id(repo_id):
        raise InputError(f"not a Hub repository id of the form ORG/NAME: {excerpt(repo_id)!r}", field="--repo-id")


def _write_splits(stage: Path, images: pd.DataFrame, ratings: pd.DataFrame, data: AADBData,
                  image_schema: pa.Schema, rating_schema: pa.Schema, shard_bytes: int,
                  notes: list[str], progress: bool | None = None) -> dict[str, dict[str, dict[str, int]]]:
    """Write the shards of the images and ratings configs, split by split; returns the split infos
    of each config and appends a note for each split left out."""
    split_infos: dict[str, dict[str, dict[str, int]]] = {layout.CONFIG_IMAGES: {}, layout.CONFIG_RATINGS: {}}
    for split in schema.SPLITS:
        split_images = images[images["split"] == split]
        if split_images.empty:
            notes.append(f"split {split!r} has no images and is left out of the repository")
            continue
        split_ratings = ratings[ratings["image_id"].isin(split_images["image_id"])]
        split_infos[layout.CONFIG_IMAGES][split] = _write_image_split(
            stage, split, split_images, split_ratings, data, image_schema, shard_bytes, progress)
        if split_ratings.empty:
            # `datasets` cannot load a split without rows: the split's images stay, with empty lists
            notes.append(f"split {split!r} has images but no ratings and is left out of the "
                         f"{layout.CONFIG_RATINGS!r} config")
            continue
        split_infos[layout.CONFIG_RATINGS][split] = _write_rating_split(
            stage, split, split_ratings, rating_schema, shard_bytes)
    return split_infos


def _write_extra_configs(stage: Path, extra_configs: tuple[ExtraConfig, ...],
                         split_infos: dict[str, dict[str, dict[str, int]]], notes: list[str]) -> dict:
    """Write each non-empty extra config (adding its split infos) and note each; returns their features."""
    extra_features = {}
    for extra in extra_configs:
        if extra.name not in layout.CONFIG_DIRS or extra.name in split_infos:
            raise ValueError(f"{extra.name!r} is not a config the repository layout declares beside the others")
        if extra.table.empty:
            notes.append(f"config {extra.name!r} has no rows and is left out ({extra.note})")
            continue
        extra_features[extra.name], split_infos[extra.name] = _write_extra_config(stage, extra)
        notes.append(f"config {extra.name!r}: {extra.note}")
    return extra_features


def _write_card(stage: Path, facts: card_mod.CardFacts) -> dict[str, int]:
    """Write and validate the card and the licence; returns every staged file with its size."""
    _atomic.write_text(stage / layout.README, card_mod.render_card(facts, stage))
    _atomic.write_text(stage / layout.LICENSE, card_mod.render_license())
    card_mod.validate_card(stage)
    return {p.relative_to(stage).as_posix(): p.stat().st_size for p in sorted(stage.rglob("*")) if p.is_file()}


def _check_out_folder(out: Path, source: Path | str) -> None:
    """Refuse an output folder whose replacement would lose data: publishing swaps in a whole new
    folder, so ``out`` must be new, empty, or a published folder holding only what publishing wrote,
    and must not contain the data source."""
    from .reader import is_published_folder

    out = Path(out)
    src = Path(source)
    if src.exists() and out.resolve() in src.resolve().parents:
        raise InputError(f"the output folder contains the data source {str(source)!r}; publishing replaces "
                         "the whole output folder", file=str(out), field="--out")
    if src.exists() and src.resolve() in out.resolve().parents:
        raise InputError(f"the output folder lies inside the data source {str(source)!r}; writing there would "
                         "change the input — choose a folder outside it", file=str(out), field="--out")
    if not out.exists():
        _atomic.check_output_folder(out, PUBLISHED_KIND, inputs=input_folders(source)[1:])
        return
    if not out.is_dir():
        raise InputError("exists and is not a folder", file=str(out), field="--out")
    entries = sorted(p.name for p in out.iterdir())
    if entries and not is_published_folder(out):
        raise InputError("the output folder is not empty and is not a published AADB dataset; publishing "
                         "replaces the whole folder, so choose a new or empty folder", file=str(out), field="--out")
    foreign = [e for e in entries if e not in layout.PUBLISHED_ENTRIES and e != _atomic.MARKER_FILE]
    if foreign:
        raise InputError(f"publishing replaces the whole folder and would delete {foreign}, which publishing "
                         "did not write; move them away or publish to a new folder", file=str(out), field="--out")
    # the toolkit's own marker, no file it did not write, and not in the release the images come from
    _atomic.check_output_folder(out, PUBLISHED_KIND, inputs=input_folders(source)[1:])


def canonical_tables(data: AADBData) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Check that the two tables of ``data`` have the canonical columns and return them in canonical column and row order
    (images by split then image id; ratings by image id, batch id, rater id), with notes."""
    origin = data.origin
    notes: list[str] = []
    for name, table, columns in (("images", data.images, schema.IMAGE_COLUMNS),
                                 ("ratings", data.ratings, schema.RATING_COLUMNS)):
        missing = [c for c in columns if c not in table.columns]
        if missing:
            raise InputError(f"{name} table lacks column(s) {missing}", file=origin, field=missing[0])
        extra = [c for c in table.columns if c not in columns]
        if extra:
            notes.append(_extra_columns_note(name, extra))
            log.warning("%s: %s", origin, notes[-1])
    images = data.images[list(schema.IMAGE_COLUMNS)]
    ratings = data.ratings[list(schema.RATING_COLUMNS)]
    for name, table in (("images", images), ("ratings", ratings)):
        if table.empty:
            raise InputError(f"the {name} table is empty: there is nothing to publish", file=origin)
    # unique ids, known splits and no orphan ratings: checked when the AADBData was built
    split_rank = images["split"].map({s: i for i, s in enumerate(schema.SPLITS)})
    images = (images.assign(_rank=split_rank).sort_values(["_rank", "image_id"], kind="stable")
              .drop(columns="_rank").reset_index(drop=True))
    ratings = ratings.sort_values(["image_id", "batch_id", "rater_id"], kind="stable").reset_index(drop=True)
    return images, ratings, notes


def _extra_columns_note(table: str, extra: list) -> str:
    """The note (card, CLI, log) that columns of ``table`` were left out. Their names are input
    text, so each is quoted (short, sanitised) and at most three are named; the card escapes notes."""
    names = ", ".join(quote(c) for c in extra[:3]) + (f" and {len(extra) - 3} more" if len(extra) > 3 else "")
    return f"{table} column(s) {names} are not canonical and were not published"


def _to_arrow(df: pd.DataFrame) -> pa.Table:
    """A pandas table as arrow with plain types (string, not large_string or dictionary) and no
    pandas metadata, so the files do not depend on how the input was read."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    fields = []
    for f in table.schema:
        t = f.type
        if pa.types.is_dictionary(t):
            t = t.value_type
        if pa.types.is_large_string(t) or pa.types.is_null(t):
            t = pa.string()  # an all-missing text column (e.g. no license known) is still text
        fields.append(pa.field(f.name, t))
    return table.cast(pa.schema(fields)).replace_schema_metadata(None)


def _config_schemas(images: pd.DataFrame, ratings: pd.DataFrame) -> tuple[pa.Schema, pa.Schema]:
    """The arrow schemas of both configs, carrying the `datasets` features and the pandas dtypes of
    the canonical tables (so a published folder reads back with the curated dtypes) as metadata."""
    from datasets import Features, Image

    img = _to_arrow(images)
    rat = _to_arrow(ratings)
    nested = pa.struct([rat.schema.field(c) for c in layout.NESTED_RATING_FIELDS])
    fields = []
    for name in layout.IMAGE_CONFIG_COLUMNS:
        if name == layout.IMAGE_FEATURE:
            fields.append(pa.field(name, Image().pa_type))
        elif name == layout.NESTED_RATINGS:
            fields.append(pa.field(name, pa.list_(nested)))
        else:
            fields.append(img.schema.field(name))
    features = Features.from_arrow_schema(pa.schema(fields))
    features[layout.IMAGE_FEATURE] = Image()
    rating_features = Features.from_arrow_schema(rat.schema)
    return (_with_dtypes(features.arrow_schema, images, schema.IMAGE_COLUMNS),
            _with_dtypes(rating_features.arrow_schema, ratings, schema.RATING_COLUMNS))


def _with_dtypes(table_schema: pa.Schema, df: pd.DataFrame, columns: tuple[str, ...]) -> pa.Schema:
    """``table_schema`` with the pandas dtype of each canonical column recorded under
    ``layout.DTYPES_METADATA_KEY``."""
    dtypes = json.dumps({c: str(df[c].dtype) for c in columns}, sort_keys=True).encode()
    return table_schema.with_metadata({**(table_schema.metadata or {}), layout.DTYPES_METADATA_KEY: dtypes})


def _writer(path: Path, table_schema: pa.Schema) -> pq.ParquetWriter:
    """A parquet writer with the repository's fixed settings (image bytes stored uncompressed,
    without dictionary or statistics; everything else zstd)."""
    leaves = _leaf_paths(table_schema)
    image_bytes = f"{layout.IMAGE_FEATURE}.bytes"
    others = [p for p in leaves if p != image_bytes]
    compression = {p: ("none" if p == image_bytes else layout.PARQUET_COMPRESSION) for p in leaves}
    return pq.ParquetWriter(path, table_schema, compression=compression, use_dictionary=others,
                            write_statistics=others, store_schema=True)


def _leaf_paths(table_schema: pa.Schema) -> list[str]:
    """Dotted parquet column paths of every leaf of ``table_schema``."""
    out: list[str] = []

    def walk(prefix: str, t: pa.DataType) -> None:
        if pa.types.is_struct(t):
            for i in range(t.num_fields):
                walk(f"{prefix}.{t.field(i).name}", t.field(i).type)
        elif pa.types.is_list(t) or pa.types.is_large_list(t):
            walk(f"{prefix}.list.element", t.value_type)
        else:
            out.append(prefix)

    for f in table_schema:
        walk(f.name, f.type)
    return out


def _image_batches(split_images: pd.DataFrame, split_ratings: pd.DataFrame, data: AADBData,
                   table_schema: pa.Schema, desc: str, progress: bool | None = None) -> Iterator[pa.Table]:
    """Row groups of the `default` config for one split: image bytes read from the source and each
    image's ratings nested, ``IMAGE_ROW_GROUP_ROWS`` images at a time."""
    ids = split_images["image_id"].to_numpy()
    flags = dict(zip(ids, split_images["flags"].fillna("").astype(str)))
    rating_ids = split_ratings["image_id"].to_numpy()
    starts = np.searchsorted(rating_ids, ids, side="left")
    ends = np.searchsorted(rating_ids, ids, side="right")
    nested_type = table_schema.field(layout.NESTED_RATINGS).type
    base_all = _to_arrow(split_images.reset_index(drop=True))
    nested_all = _to_arrow(split_ratings[list(layout.NESTED_RATING_FIELDS)].reset_index(drop=True))
    rows = layout.IMAGE_ROW_GROUP_ROWS
    bar = tqdm(total=len(ids), desc=desc, unit="img", disable=None if progress is None else not progress, leave=False)
    for lo in range(0, len(ids), rows):
        hi = min(lo + rows, len(ids))
        images = []
        for image_id in ids[lo:hi]:
            try:
                payload = data.image_bytes(image_id)
            except (OSError, KeyError, SourceError) as exc:  # SourceError: e.g. the release was moved
                raise InputError(f"image {quote(image_id)}: cannot read the image bytes: {exc}",
                                 file=data.origin) from exc
            check_image_bytes(image_id, payload, flags[image_id], origin=data.origin)
            images.append({"bytes": payload, "path": image_id})
        r_lo, r_hi = int(starts[lo]), int(ends[hi - 1])
        nested_rows = nested_all.slice(r_lo, r_hi - r_lo)
        offsets = np.concatenate([starts[lo:hi] - r_lo, [ends[hi - 1] - r_lo]]).astype(np.int32)
        struct = pa.StructArray.from_arrays([nested_rows.column(c).combine_chunks()
                                             for c in layout.NESTED_RATING_FIELDS],
                                            fields=list(nested_type.value_type))
        nested = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), struct, type=nested_type)
        base = base_all.slice(lo, hi - lo)
        columns = []
        for f in table_schema:
            if f.name == layout.IMAGE_FEATURE:
                columns.append(pa.array(images, type=f.type))
            elif f.name == layout.NESTED_RATINGS:
                columns.append(nested)
            else:
                columns.append(base.column(f.name).cast(f.type).combine_chunks())
        bar.update(hi - lo)
        yield pa.Table.from_arrays(columns, schema=table_schema)
    bar.close()


#: What Pillow raises for bytes that are not a decodable image.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError)


def expected_formats(image_id: str, flags: str) -> frozenset[str] | None:
    """The Pillow formats an image may have, by curation's rule: the one its flags name
    (``png_bytes``: PNG bytes behind a ``.jpg`` name), else JPEG (or MPO, the JPEG variant cameras
    write) for a ``.jpg``/``.jpeg`` name; None (any image format) for other names, which curation
    does not check against their bytes either."""
    named = [f[: -len("_bytes")].upper() for f in str(flags).split(";") if f.endswith("_bytes")]
    if named:
        return frozenset(named)
    if Path(str(image_id)).suffix.lower() in (".jpg", ".jpeg"):
        return frozenset({"JPEG", "MPO"})
    return None


def check_image_bytes(image_id: str, payload: bytes, flags: str = "", *, origin: str | None = None) -> str:
    """Refuse (:class:`InputError`) bytes that do not fully decode as an image of the format
    :func:`expected_formats` names: only images are ever published. Returns the format."""
    from PIL import Image

    try:  # Pillow's own limit stops a decompression bomb (as curation's image checks do)
        with Image.open(io.BytesIO(payload)) as im:
            fmt = im.format or ""
            im.load()
    except (*_DECODE_ERRORS, Image.DecompressionBombError) as exc:
        raise InputError(f"image {quote(image_id)}: its {len(payload):,} bytes do not decode as an image "
                         f"({type(exc).__name__}); only images are published", file=origin) from None
    wanted = expected_formats(image_id, flags)
    if wanted is not None and fmt not in wanted:
        raise InputError(f"image {quote(image_id)} decodes as {fmt or 'an unknown format'}, not the expected "
                         f"format ({'/'.join(sorted(wanted))}, from its name and flags); only images of the "
                         "expected format are published", file=origin)
    return fmt


def _write_image_split(stage: Path, split: str, split_images: pd.DataFrame, split_ratings: pd.DataFrame,
                       data: AADBData, table_schema: pa.Schema, shard_bytes: int,
                       progress: bool | None = None) -> dict[str, int]:
    """Write the `default` config of one split in shards of about ``shard_bytes`` of image data."""
    parts: list[Path] = []
    writer, written, num_bytes = None, 0, 0
    for batch in _image_batches(split_images, split_ratings, data, table_schema, f"publish {split}", progress):
        if writer is not None and written >= shard_bytes:
            writer.close()
            writer = None
        if writer is None:
            parts.append(stage / f".{split}-part{len(parts):05d}.parquet")
            writer, written = _writer(parts[-1], table_schema), 0
        writer.write_table(batch, row_group_size=layout.IMAGE_ROW_GROUP_ROWS)
        written += batch.nbytes
        num_bytes += batch.nbytes
    if writer is not None:
        writer.close()
    _name_shards(stage, layout.CONFIG_IMAGES, split, parts)
    return {"num_examples": len(split_images), "num_bytes": num_bytes}


def _write_rating_split(stage: Path, split: str, split_ratings: pd.DataFrame, table_schema: pa.Schema,
                        shard_bytes: int) -> dict[str, int]:
    """Write the `ratings` config of one split (at least one rating), in as many equal shards as
    ``shard_bytes`` needs."""
    table = _to_arrow(split_ratings.reset_index(drop=True)).cast(table_schema)
    per = math.ceil(table.num_rows / max(1, math.ceil(table.nbytes / shard_bytes)))
    n_shards = math.ceil(table.num_rows / per)  # every shard non-empty: `datasets` cannot read an empty one
    parts = []
    for i in range(n_shards):
        parts.append(stage / f".{split}-ratings-part{i:05d}.parquet")
        writer = _writer(parts[-1], table_schema)
        writer.write_table(table.slice(i * per, per), row_group_size=layout.RATING_ROW_GROUP_ROWS)
        writer.close()
    _name_shards(stage, layout.CONFIG_RATINGS, split, parts)
    return {"num_examples": table.num_rows, "num_bytes": table.nbytes}


def _write_extra_config(stage: Path, extra: ExtraConfig) -> tuple[pa.Schema, dict]:
    """Write one extra config (a small table, one shard of its one split)."""
    arrow = pa.Table.from_pandas(extra.table, preserve_index=False).replace_schema_metadata(None)
    arrow = arrow.cast(pa.schema([pa.field(f.name, pa.string() if pa.types.is_large_string(f.type) else f.type)
                                  for f in arrow.schema]))
    part = stage / f".{extra.split}-{extra.name}-part00000.parquet"
    writer = _writer(part, arrow.schema)
    writer.write_table(arrow, row_group_size=layout.RATING_ROW_GROUP_ROWS)
    writer.close()
    _name_shards(stage, extra.name, extra.split, [part])
    return arrow.schema, {extra.split: {"num_examples": arrow.num_rows, "num_bytes": arrow.nbytes}}


def _name_shards(stage: Path, config: str, split: str, parts: list[Path]) -> None:
    """Move the finished temporary shards of one split to their final ``-of-N`` names."""
    for i, part in enumerate(parts):
        final = stage / layout.shard_name(config, split, i, len(parts))
        final.parent.mkdir(parents=True, exist_ok=True)
        part.replace(final)


"""The data model every stage takes: :class:`AADBData` (the canonical ``images`` and ``ratings``
tables, access to the image bytes, and where the data came from), the one ratings validator and
leave-one-out mean the analyses share, and the one ``sha256:`` fingerprint helper.

This is a leaf module: it imports no stage. Loaders (:mod:`aadb_toolkit.sources`) build
``AADBData`` and fill in its :class:`Provenance`, so no stage has to ask ``hub`` or ``simulate``
whether data is synthetic or which label list defined its test split.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from . import schema
from .errors import InputError, SourceError, excerpt, quote

#: The columns every ratings table the analyses read must have.
RATING_KEYS: tuple[str, ...] = ("batch_id", "rater_id", "image_id", "score")
#: Prefix of the dataset label of synthetic data and of every result computed on it.
SYNTHETIC_PREFIX: str = "synthetic-"
#: Kinds of source a loader can record in :attr:`Provenance.kind`.
SOURCE_KINDS: tuple[str, ...] = ("curated", "published", "hub", "memory", "ava")


def sha256_fingerprint(payload: bytes | str | Iterable[bytes | str]) -> str:
    """``"sha256:" + hex digest`` of ``payload`` (bytes, text as UTF-8, or an iterable of chunks,
    hashed in order): the one spelling of every fingerprint and hash the toolkit records."""
    h = hashlib.sha256()
    chunks = [payload] if isinstance(payload, (bytes, bytearray, memoryview, str)) else payload
    for chunk in chunks:
        h.update(chunk.encode("utf-8") if isinstance(chunk, str) else bytes(chunk))
    return "sha256:" + h.hexdigest()


def dataset_label(base: str, synthetic: bool) -> str:
    """How results and boards name a data set: ``base`` (``"aadb"``, ``"ava"``, ``"aadb+ava"``),
    prefixed ``"synthetic-"`` for simulated data: the one spelling of the label."""
    return f"{SYNTHETIC_PREFIX}{base}" if synthetic and not base.startswith(SYNTHETIC_PREFIX) else base


def fingerprint_images(images: pd.DataFrame) -> str:
    """sha256 over the sorted (image_id, score_mean) pairs, scores printed to 1e-9."""
    rows = sorted(zip(images["image_id"].astype(str), np.asarray(images["score_mean"], dtype=float)))
    return sha256_fingerprint(f"{image_id}\t{score:.9f}\n" for image_id, score in rows)


@dataclass(frozen=True)
class Provenance:
    """Where data came from: ``origin`` (folder or Hub id), ``kind`` (one of :data:`SOURCE_KINDS`),
    ``synthetic`` (drawn by ``aadb simulate``, not AADB), ``test_list`` (the label list that
    defined the ``test`` split, e.g. ``"TestNew"``; None when unknown) and, for simulated data,
    ``setting``: the generator's setting that drew it (``{"setting", "overrides", "sha256"}``,
    docs/synthetic.md "Settings"; None for real data or a release older than settings)."""

    origin: str
    kind: str = "memory"
    synthetic: bool = False
    test_list: str | None = None
    setting: Mapping[str, Any] | None = None

    @property
    def dataset_label(self) -> str:
        """How results name this data: ``"aadb"``, or ``"ava"`` for an AVA folder; prefixed
        ``"synthetic-"`` for simulated data."""
        return dataset_label("ava" if self.kind == "ava" else "aadb", self.synthetic)

    def to_dict(self) -> dict[str, object]:
        """JSON form, as result documents record it."""
        out: dict[str, object] = {"origin": self.origin, "kind": self.kind, "synthetic": self.synthetic,
                                  "test_list": self.test_list}
        if self.setting is not None:
            out["setting"] = dict(self.setting)
        return out


def provenance_fields(provenance: Provenance | None) -> dict[str, Any]:
    """What a summary (``consistency.json``, ``human_consistency.json``, ``reliability.json``)
    records of its data, as a score result document does: the ``dataset`` label
    (:func:`aadb_toolkit.data.dataset_label`: ``synthetic-aadb`` for simulated data), ``synthetic``
    and, for simulated data, the generator's ``synthetic_setting`` — so that no number computed on a
    test instrument is read as AADB's. No provenance (a bare ratings table): data made in memory."""
    p = provenance if provenance is not None else Provenance(origin="memory")
    out: dict[str, Any] = {"dataset": p.dataset_label, "synthetic": bool(p.synthetic)}
    if p.setting is not None:
        out["synthetic_setting"] = dict(p.setting)
    return out


_MAX_SETTING_TEXT = 200
_MAX_OVERRIDES = 64
_SHA256_TEXT = re.compile(r"(sha256:)?[0-9a-f]{64}")


def setting_record(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The generator's setting as provenance records it: ``{"setting", "overrides", "sha256"}``
    and, where the truth recorded them (since its format 2), the generation ``options`` (quirks,
    random-rater share, image size), from a setting file or a manifest (both inputs: every field
    is checked). A bad field raises ``ValueError(message, field)``; callers turn it into their own
    error naming the file."""
    name, overrides, digest = raw.get("setting"), raw.get("overrides", {}), raw.get("sha256")
    if not isinstance(name, str) or not 0 < len(name) <= _MAX_SETTING_TEXT or not name.isprintable():
        raise ValueError(f"'setting' must be a setting's name of 1 to {_MAX_SETTING_TEXT} printable characters",
                         "setting")
    if not isinstance(digest, str) or not _SHA256_TEXT.fullmatch(digest):
        raise ValueError("'sha256' must be the sha256 of the setting's parameters", "sha256")
    if not (isinstance(overrides, dict) and len(overrides) <= _MAX_OVERRIDES and all(
            _plain_text(k) and _plain_value(v) for k, v in overrides.items())):
        raise ValueError(f"'overrides' must map at most {_MAX_OVERRIDES} dotted keys to numbers, booleans, short "
                         "strings or short lists of numbers", "overrides")
    out = {"setting": name, "overrides": dict(overrides), "sha256": digest}
    if "options" in raw:
        options = raw["options"]
        if not (isinstance(options, dict) and len(options) <= _MAX_OVERRIDES and all(
                _plain_text(k) and _plain_value(v) for k, v in options.items())):
            raise ValueError(f"'options' must map at most {_MAX_OVERRIDES} names to numbers, booleans, short strings "
                             "or short lists of numbers", "options")
        out["options"] = dict(options)
    return out


def _plain_text(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= _MAX_SETTING_TEXT and value.isprintable()


def _plain_value(value: Any) -> bool:
    if isinstance(value, list):
        return len(value) <= _MAX_OVERRIDES and all(isinstance(x, (int, float)) for x in value)
    return isinstance(value, (int, float, bool)) or _plain_text(value)


@dataclass
class AADBData:
    """The canonical ``images`` and ``ratings`` tables of one data source, its image bytes and its
    provenance. Constructing one validates the tables once (ids, splits, rating columns)."""

    images: pd.DataFrame
    ratings: pd.DataFrame
    origin: str
    read_image_bytes: Callable[[str], bytes] = field(repr=False)
    provenance: Provenance | None = None

    def __post_init__(self) -> None:
        if self.provenance is None:
            self.provenance = Provenance(origin=str(self.origin))
        if self.provenance.kind not in SOURCE_KINDS:
            raise ValueError(f"unknown source kind {self.provenance.kind!r}; expected one of {SOURCE_KINDS}")
        if self.ratings is None or (len(self.ratings) == 0 and len(self.ratings.columns) == 0):
            self.ratings = pd.DataFrame({c: pd.Series(dtype=object) for c in schema.RATING_COLUMNS})
        validate_tables(self.images, self.ratings, origin=str(self.origin))

    def split(self, name: str) -> pd.DataFrame:
        """The ``images`` rows of one split (``train``, ``validation`` or ``test``)."""
        if name not in schema.SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {schema.SPLITS}")
        return self.images[self.images["split"] == name].reset_index(drop=True)

    def image_bytes(self, image_id: str) -> bytes:
        """The encoded bytes of one image, as released."""
        return self.read_image_bytes(image_id)

    def open_image(self, image_id: str):
        """Decode one image as an upright RGB ``PIL.Image`` (EXIF orientation applied)."""
        from PIL import Image, ImageOps

        with Image.open(io.BytesIO(self.image_bytes(image_id))) as im:
            im = ImageOps.exif_transpose(im)
            return im.convert("RGB")

    def fingerprint(self, split: str = "test") -> str:
        """A hash of one split's ground truth (image ids and mean scores): results computed on
        data with different fingerprints are not comparable."""
        return fingerprint_images(self.split(split))


def _first_row(mask: pd.Series | np.ndarray) -> int:
    return int(np.flatnonzero(np.asarray(mask))[0])


def validate_tables(images: pd.DataFrame, ratings: pd.DataFrame, *, origin: str | None = None) -> None:
    """Raise :class:`InputError` (naming the row and field) unless every image has one unique id
    and a known split, and a non-empty ratings table has the key columns (:data:`RATING_KEYS`) and
    refers only to known images."""
    for col in ("image_id", "split"):
        if col not in images.columns:
            raise InputError(f"images table lacks column(s) [{col!r}]", file=origin, field=col)
    ids = images["image_id"]
    if ids.isna().any():
        raise InputError("image_id is missing", file=origin, row=_first_row(ids.isna()), field="image_id")
    dup = ids.duplicated()
    if dup.any():
        row = _first_row(dup)
        raise InputError(f"image_id {quote(ids.iloc[row])} appears more than once", file=origin, row=row, field="image_id")
    bad_split = ~images["split"].isin(schema.SPLITS)
    if bad_split.any():
        row = _first_row(bad_split)
        raise InputError(f"split {quote(images['split'].iloc[row])} is not one of {schema.SPLITS}",
                         file=origin, row=row, field="split")
    if len(ratings) == 0:
        return
    missing = [c for c in RATING_KEYS if c not in ratings.columns]
    if missing:
        raise InputError(f"ratings table lacks column(s) {missing}", file=origin, field=missing[0])
    # ids are unique (checked above), so a lookup in their index finds each known id: much faster
    # than Series.isin on Arrow-backed text, which walks the value set in Python
    orphan = pd.Index(ids).get_indexer(ratings["image_id"]) < 0
    if orphan.any():
        row = _first_row(orphan)
        raise InputError(f"{int(orphan.sum())} rating(s) refer to images not in the images table, "
                         f"first {quote(ratings['image_id'].iloc[row])}", file=origin, row=row, field="image_id")


def factorize_ids(column: pd.Series, *, sort: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of an id column and its distinct values as text. Ids compare as text (``1`` and
    ``"1"`` are one id), of any dtype; categoricals stay cheap."""
    try:
        codes, uniques = pd.factorize(column, sort=sort)
    except TypeError:  # mixed types cannot be sorted: compare them as text
        codes, uniques = pd.factorize(column.astype(str), sort=sort)
    uniques = np.asarray(pd.Index(uniques).astype(str), dtype=object)
    if len(set(uniques)) != len(uniques):  # e.g. 1 and "1": distinct values, same text
        codes, uniques = pd.factorize(column.astype(str), sort=sort)
        uniques = np.asarray(uniques, dtype=object)
    return np.asarray(codes), uniques


def check_ratings(ratings: pd.DataFrame, *, columns: tuple[str, ...] = ("image_id", "rater_id", "score"),
                  missing_scores: str = "error", allow_empty: bool = False, ids_as_text: bool = True,
                  file: str | None = None) -> pd.DataFrame:
    """The one ratings validator of the analyses: the named ``columns`` present and ids not missing,
    scores numeric and finite, and no rater rating an image twice (within a batch when ``batch_id``
    is among ``columns``). Returns ``columns`` (ids as text unless ``ids_as_text=False``) with
    ``score`` as float, on the same index.

    ``missing_scores="keep"`` lets blank (NaN) scores through, for analyses that count them;
    ``"error"`` refuses them. An empty table is an error unless ``allow_empty``. A non-numeric or
    infinite score is always an error naming its row.
    """
    missing = [c for c in columns if c not in ratings.columns]
    if missing:
        raise InputError(f"ratings table lacks column(s) {missing}", file=file, field=missing[0])
    if len(ratings) == 0 and not allow_empty:
        raise InputError("ratings table has no rows", file=file)
    ids = [c for c in columns if c != "score"]
    for col in ids:
        bad = ratings[col].isna().to_numpy()
        if bad.any():
            row = ratings.index[int(np.argmax(bad))]
            raise InputError(f"missing {col} ({int(bad.sum())} row(s))", file=file, row=row, field=col)
    raw = ratings["score"]
    score = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    blank = np.isnan(score) & raw.isna().to_numpy()
    bad = ~np.isfinite(score) & ~(blank if missing_scores == "keep" else np.zeros(len(score), bool))
    if bad.any():
        row = ratings.index[int(np.argmax(bad))]
        what = "infinite" if np.isinf(score[int(np.argmax(bad))]) else "missing or not a number"
        raise InputError(f"score is {what} ({int(bad.sum())} row(s)): {quote(raw.loc[row])}", file=file, row=row,
                         field="score")
    _refuse_repeated_ratings(ratings, [c for c in ("batch_id", "rater_id", "image_id") if c in ids],
                             np.flatnonzero(~np.isnan(score)), file)
    df = ratings[ids].astype(str) if ids_as_text else ratings[ids].copy()
    df["score"] = score
    return df[list(columns)]


def _refuse_repeated_ratings(ratings: pd.DataFrame, key: list[str], usable: np.ndarray, file: str | None) -> None:
    """Raise when two usable ratings share ``key`` (a rater rating an image twice, in one batch)."""
    if len(usable) < 2:
        return
    codes = np.stack([factorize_ids(ratings[c])[0][usable] for c in key])
    order = np.lexsort(codes[::-1])
    ordered = codes[:, order]
    dup = (ordered[:, 1:] == ordered[:, :-1]).all(0)
    if dup.any():
        k = int(np.argmax(dup))
        first, second = ratings.index[usable[order[[k, k + 1]]]]
        rater, image = ratings["rater_id"].loc[second], ratings["image_id"].loc[second]
        where = f" twice in batch {quote(ratings['batch_id'].loc[second])}" if "batch_id" in key else " more than once"
        raise InputError(f"rater {quote(rater)} rated image {quote(image)}{where} (rows {first} and {second}); "
                         "deduplicate before the analysis", file=file, row=second, field="image_id")


def rater_image_scores(ratings: pd.DataFrame, *, file: str | None = None) -> pd.DataFrame:
    """Each rater's one score per image: ``rater_id``, ``image_id``, ``score`` (float), sorted by
    rater and image, checked by :func:`check_ratings`. Curation keeps a worker who met the same
    photo in two batches (HITs), one rating per batch; such a rater counts the image once, with the
    mean of those scores (the per-rater analyses: Table 6, α, rater reliability, piaa). Two ratings
    in one batch, or two with no batch to tell them apart, raise :class:`InputError`."""
    cols = ("rater_id", "image_id", "score")
    df = check_ratings(ratings, columns=(("batch_id", *cols) if "batch_id" in ratings.columns else cols),
                       allow_empty=True, file=file)
    return df.groupby(["rater_id", "image_id"], sort=True)["score"].mean().reset_index()[list(cols)]


def leave_one_out_mean(image_ids: pd.Series, scores: np.ndarray) -> np.ndarray:
    """For each rating, the mean score of the *other* ratings of the same image (NaN when the image
    has no other rating): the reference a rater is compared against without their own vote."""
    scores = np.asarray(scores, dtype=float)
    g = pd.Series(scores, index=np.arange(len(scores))).groupby(np.asarray(image_ids))
    total, count = g.transform("sum").to_numpy(), g.transform("count").to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 1, (total - scores) / np.maximum(count - 1, 1), np.nan)


def table_to_pandas(table, file: str) -> pd.DataFrame:
    """A pyarrow table as pandas; pandas metadata in the file that is not JSON (or does not fit the
    columns) is a :class:`~aadb_toolkit.errors.SourceError` naming ``file``, not a traceback."""
    try:
        return table.to_pandas()
    # json.JSONDecodeError is a ValueError; metadata nested too deeply is json's RecursionError
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        raise SourceError(f"{file}: its pandas metadata is not valid ({type(exc).__name__}); rewrite the file "
                          "with the toolkit") from exc


def read_parquet(file, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a parquet file as pandas; a file that is not parquet, or cannot be read, is a
    :class:`~aadb_toolkit.errors.SourceError` naming it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(file, columns=columns)
    except (OSError, KeyError, ValueError, pa.ArrowException) as exc:
        raise SourceError(f"{file}: not a readable parquet table ({type(exc).__name__}: {excerpt(exc)})") from exc
    return table_to_pandas(table, str(file))

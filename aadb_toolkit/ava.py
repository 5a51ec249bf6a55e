"""Readers for the AVA data set (Murray et al., CVPR 2012) in its standard distribution, and its
adapter to the toolkit's data model (:func:`load_ava_source`: AVA as a training and prediction
source). The synthetic AVA is written by :func:`aadb_toolkit.simulate.write_synthetic_ava`.

Files read (relative to the AVA root folder):

- ``AVA.txt``: one image per line, 15 whitespace-separated integers: index, image id, ten vote
  counts for the scores 1..10, two semantic tag ids (0 = none), challenge id.
- ``tags.txt`` and ``challenges.txt``: ``<id> <name>`` per line.
- ``aesthetics_image_lists/generic_test.jpgl``: the standard test list (about 20,000 ids), one per
  line. The training images are all other images of ``AVA.txt``.
- ``style_image_lists/``: ``train.jpgl`` + ``train.lab`` (one style id per image),
  ``test.jpgl`` + ``test.multilab`` (14 binary columns per image), ``styles.txt``.
- ``images/<id>.jpg``: the photos (read only by :func:`load_ava_source`).

The toolkit's AVA validation set (used to choose the binary threshold τ of the ``ava`` protocol) is
a deterministic held-out part of the training ids: an id belongs to it when the first 8 bytes of
``sha256(_VALIDATION_SALT + id)``, read as a big-endian integer, are divisible by
:data:`VALIDATION_MODULUS` (about 2% of the training images; membership depends on the id alone).
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ._keyguard import refuse_key_file
from ._numbers import is_count
from ._paths import inside
from .data import sha256_fingerprint
from .errors import InputError, SourceError, excerpt

if TYPE_CHECKING:
    from .data import AADBData

log = logging.getLogger(__name__)

AVA_TXT = "AVA.txt"
TAGS_TXT = "tags.txt"
CHALLENGES_TXT = "challenges.txt"
AESTHETICS_LIST_DIR = "aesthetics_image_lists"
STANDARD_TEST_LIST = f"{AESTHETICS_LIST_DIR}/generic_test.jpgl"
STYLE_DIR = "style_image_lists"
#: The files of ``style_image_lists/`` (:func:`read_style_lists`).
STYLE_FILES = ("styles.txt", "train.jpgl", "test.jpgl", "train.lab", "test.multilab")
STYLE_NAMES = ("Complementary_Colors", "Duotones", "HDR", "Image_Grain", "Light_On_White", "Long_Exposure",
               "Macro", "Motion_Blur", "Negative_Image", "Rule_of_Thirds", "Shallow_DOF", "Silhouettes",
               "Soft_Focus", "Vanishing_Point")
#: The images-table columns of the style labels (1/0, NaN where an image has no style annotation).
STYLE_COLUMNS = tuple(f"style_{n.lower()}" for n in STYLE_NAMES)
#: The paper's 8 AVA content categories (§4.4, after Lu et al.), matched to ``tags.txt`` by name.
CONTENT_CATEGORIES = ("Animals", "Architecture", "Cityscape", "Floral", "Food and Drink", "Landscape",
                      "Portraiture", "Still Life")
#: The images-table column of the content category (index into CONTENT_CATEGORIES, NaN = none).
CATEGORY_COLUMN = "semantic_category"
IMAGE_DIR = "images"
#: Written by the synthetic AVA generator; its presence marks a folder as synthetic.
SYNTHETIC_MARKER = "SYNTHETIC_AVA.json"
VOTE_COLUMNS = tuple(f"votes_{k}" for k in range(1, 11))
#: Columns of the table :func:`read_ava_txt` returns.
AVA_COLUMNS = ("index", "image_id", *VOTE_COLUMNS, "tag1", "tag2", "challenge_id", "n_votes", "mean_score")
#: One in this many training ids (by hash) forms the toolkit's AVA validation set.
VALIDATION_MODULUS = 50
_VALIDATION_SALT = "aadb-toolkit/ava-validation/v1:"


def read_ava_txt(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read ``AVA.txt`` into a table (columns :data:`AVA_COLUMNS`; ``image_id`` as text, ``mean_score``
    the mean vote on 1..10, NaN for an image without votes). Malformed lines raise an InputError
    naming every bad line (up to 20)."""
    path = Path(path)
    fast = _read_ava_fast(path)
    if fast is not None:
        ids, ints = fast
    else:
        ids, ints = _read_ava_checked(path)
    df = pd.DataFrame({"index": ints[:, 0], "image_id": ids})
    for k, col in enumerate(VOTE_COLUMNS):
        df[col] = ints[:, 1 + k]
    df["tag1"], df["tag2"], df["challenge_id"] = ints[:, 11], ints[:, 12], ints[:, 13]
    votes = ints[:, 1:11]
    df["n_votes"] = votes.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        df["mean_score"] = (votes @ np.arange(1, 11)) / df["n_votes"].to_numpy(dtype=float)
    dup = df["image_id"].duplicated(keep=False)
    if dup.any():
        ids = df.loc[dup, "image_id"].unique()[:5]
        raise InputError(f"{int(df['image_id'].duplicated().sum())} duplicated image id(s), e.g. {list(ids)}",
                         file=str(path))
    return df


def _read_ava_fast(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """Parse a well-formed AVA.txt with pandas; None when anything looks off (then the checked
    reader finds and names the bad lines)."""
    try:
        raw = pd.read_csv(path, sep=r"\s+", header=None, dtype={1: str}, encoding="utf-8-sig", engine="c")
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError, OSError):
        return None
    cols = [0, *range(2, 15)]
    if raw.shape[1] != 15 or raw.empty or raw.isna().any().any():
        return None
    if not all(pd.api.types.is_integer_dtype(raw[c]) for c in cols) or (raw[cols] < 0).any().any():
        return None
    if not all(raw[c].dtype == np.int64 for c in cols) or not raw[1].map(is_count).all():
        return None  # ids and counts follow the one number rule (ASCII digits, int64); see _numbers
    return raw[1].to_numpy(dtype=str), raw[cols].to_numpy().astype(np.int64)


def _read_ava_checked(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Line-by-line reader that names every malformed line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read AVA.txt: {exc}", file=str(path)) from exc
    bad: list[str] = []
    rows: list[list[str]] = []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 15:
            bad.append(f"line {i}: expected 15 fields (index, image id, 10 vote counts, 2 tags, challenge), "
                       f"found {len(parts)}")
        elif not all(is_count(p) for p in parts):
            bad.append(f"line {i}: fields must be non-negative integers in ASCII digits that fit 64 bits: "
                       f"{excerpt(line.strip())!r}")
        else:
            rows.append(parts)
    if bad:
        more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
        raise InputError(f"{len(bad)} malformed line(s):\n  " + "\n  ".join(bad[:20]) + more, file=str(path))
    if not rows:
        raise InputError("no images", file=str(path))
    arr = np.array(rows, dtype=object)
    return arr[:, 1].astype(str), arr[:, [0, *range(2, 15)]].astype(np.int64)


def read_id_names(path: str | os.PathLike[str]) -> dict[int, str]:
    """Read a ``<id> <name>`` file (``tags.txt``, ``challenges.txt``, ``styles.txt``)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig", errors="strict").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc}", file=str(path)) from exc
    out: dict[int, str] = {}
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        head, _, name = line.strip().partition(" ")
        if not is_count(head) or not name.strip():
            raise InputError(f"expected '<id> <name>', found {excerpt(line.strip())!r}", file=str(path), row=i)
        if int(head) in out:
            raise InputError(f"id {head} appears twice", file=str(path), row=i)
        out[int(head)] = name.strip()
    return out


def read_id_list(path: str | os.PathLike[str]) -> list[str]:
    """Read an image-id list (``.jpgl``): one integer id per line, blank lines ignored."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read image list: {exc}", file=str(path)) from exc
    ids: list[str] = []
    for i, line in enumerate(lines, start=1):
        s = line.strip()
        if not s:
            continue
        if not is_count(s):
            raise InputError(f"expected an integer image id, found {excerpt(s)!r}", file=str(path), row=i)
        ids.append(s)
    if len(set(ids)) != len(ids):
        raise InputError(f"{len(ids) - len(set(ids))} duplicated id(s)", file=str(path))
    return ids


@dataclass(frozen=True)
class StyleLists:
    """The style annotations: 14 style names, single-label training images, multi-label test images."""

    styles: dict[int, str]
    train_ids: list[str]
    train_labels: np.ndarray  # style id (1..14) per training image
    test_ids: list[str]
    test_labels: np.ndarray  # n_test × 14 binary matrix


def read_style_lists(folder: str | os.PathLike[str]) -> StyleLists:
    """Read ``style_image_lists/`` (see the module docstring)."""
    folder = Path(folder)
    styles = read_id_names(folder / "styles.txt")
    train_ids = read_id_list(folder / "train.jpgl")
    test_ids = read_id_list(folder / "test.jpgl")
    train_lab = _read_int_rows(folder / "train.lab", 1)
    test_lab = _read_int_rows(folder / "test.multilab", len(styles))
    if len(train_lab) != len(train_ids):
        raise InputError(f"{len(train_lab)} labels for {len(train_ids)} images in train.jpgl", file=str(folder / "train.lab"))
    if len(test_lab) != len(test_ids):
        raise InputError(f"{len(test_lab)} label rows for {len(test_ids)} images in test.jpgl",
                         file=str(folder / "test.multilab"))
    train_labels = train_lab[:, 0]
    bad = np.flatnonzero(~np.isin(train_labels, list(styles)))
    if bad.size:
        raise InputError(f"style id {int(train_labels[bad[0]])} is not in styles.txt", file=str(folder / "train.lab"),
                         row=int(bad[0]) + 1)
    if not np.isin(test_lab, (0, 1)).all():
        r = int(np.flatnonzero(~np.isin(test_lab, (0, 1)).all(axis=1))[0])
        raise InputError("multilabel values must be 0 or 1", file=str(folder / "test.multilab"), row=r + 1)
    return StyleLists(styles, train_ids, train_labels, test_ids, test_lab)


def _read_int_rows(path: Path, width: int) -> np.ndarray:
    try:
        lines = [ln for ln in path.read_text(encoding="utf-8-sig").splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc}", file=str(path)) from exc
    rows = []
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != width or not all(is_count(p.removeprefix("-")) for p in parts):
            raise InputError(f"expected {width} integer(s), found {excerpt(line.strip())!r}", file=str(path), row=i)
        rows.append([int(p) for p in parts])
    return np.array(rows, dtype=np.int64).reshape(-1, width)


def is_validation_id(image_id: str) -> bool:
    """Whether a (training) image id belongs to the toolkit's AVA validation set."""
    digest = hashlib.sha256((_VALIDATION_SALT + str(image_id)).encode()).digest()
    return int.from_bytes(digest[:8], "big") % VALIDATION_MODULUS == 0


@dataclass
class AVAFiles:
    """The files of an AVA root folder as parsed (the ``AVA.txt`` table, the test list, tags and
    challenges): the raw material of :func:`load_ava_source`, which makes the one data model
    (:class:`~aadb_toolkit.data.AADBData`, with provenance) every stage takes."""

    root: Path
    table: pd.DataFrame
    test_ids: list[str]
    tags: dict[int, str] = field(default_factory=dict)
    challenges: dict[int, str] = field(default_factory=dict)


def fingerprint(data: "AADBData", split: str = "test") -> str:
    """sha256 over an AVA source's split, sorted (image_id, mean vote) pairs, like the AADB
    fingerprint but with the split named (what the ``ava`` and ``cross-dataset`` protocols record)."""
    rows = data.split(split)
    pairs = sorted(zip(rows["image_id"].astype(str), rows["score_mean"].to_numpy(dtype=float)))
    return sha256_fingerprint([f"ava:{split}\n", *(f"{image_id}\t{score:.9f}\n" for image_id, score in pairs)])


def _refuse_outside(root: Path, path: Path) -> None:
    """Raise :class:`SourceError` when ``path`` exists and leads outside ``root`` (a link): nothing
    outside an AVA folder is read, so nothing of it can be quoted. A file that is the rater key (a
    copy or link of it) is refused unread too (:func:`~aadb_toolkit._keyguard.refuse_key_file`)."""
    if path.exists() and not inside(root, path):
        raise SourceError(f"{path}: a link leading outside the AVA folder; nothing outside it is read")
    if path.is_file():
        refuse_key_file(path)


def read_ava_folder(root: str | os.PathLike[str], *, test_list: str | os.PathLike[str] | None = None) -> AVAFiles:
    """Parse an AVA root folder's files; ``test_list`` overrides the standard test list file."""
    root = Path(root)
    if not (root / AVA_TXT).is_file():
        raise SourceError(f"{root}: not an AVA folder (no {AVA_TXT})")
    for name in (AVA_TXT, TAGS_TXT, CHALLENGES_TXT, *(() if test_list is not None else (STANDARD_TEST_LIST,))):
        _refuse_outside(root, root / name)
    table = read_ava_txt(root / AVA_TXT)
    test_path = Path(test_list) if test_list is not None else root / STANDARD_TEST_LIST
    if not test_path.is_file():
        raise SourceError(f"{test_path}: standard test list not found")
    refuse_key_file(test_path, field="test list")
    test_ids = read_id_list(test_path)
    unknown = sorted(set(test_ids) - set(table["image_id"]))
    if unknown:
        raise InputError(f"{len(unknown)} test id(s) are not in {AVA_TXT}, e.g. {unknown[:5]}", file=str(test_path))
    tags = read_id_names(root / TAGS_TXT) if (root / TAGS_TXT).is_file() else {}
    challenges = read_id_names(root / CHALLENGES_TXT) if (root / CHALLENGES_TXT).is_file() else {}
    return AVAFiles(root=root, table=table, test_ids=test_ids, tags=tags, challenges=challenges)


# --- AVA as a training and prediction source ------------------------------------------------

def _norm_name(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def category_codes(table: pd.DataFrame, tags: dict[int, str]) -> np.ndarray:
    """Per image, the index in :data:`CONTENT_CATEGORIES` of its first tag that is one of them
    (tags matched by name in ``tags.txt``), NaN when neither tag is."""
    wanted = {_norm_name(c): k for k, c in enumerate(CONTENT_CATEGORIES)}
    tag_to_cat = {tid: wanted[_norm_name(n)] for tid, n in tags.items() if _norm_name(n) in wanted}
    top = max(max(tags, default=0), int(table["tag1"].to_numpy().max(initial=0)),
              int(table["tag2"].to_numpy().max(initial=0)))
    lookup = np.full(top + 1, np.nan)
    for tid, k in tag_to_cat.items():
        lookup[tid] = k
    first = lookup[table["tag1"].to_numpy()]
    second = lookup[table["tag2"].to_numpy()]
    return np.where(np.isnan(first), second, first)


def style_matrix(styles: StyleLists | None, image_ids: pd.Series) -> np.ndarray:
    """An (n, 14) float matrix of style labels in :data:`STYLE_NAMES` order: the style test list's
    multi-labels, the style training list's single label as one-hot (its image shows that style and
    was not entered for the others), NaN for images on neither list. Listed ids missing from
    ``AVA.txt`` are logged with their ids."""
    out = np.full((len(image_ids), len(STYLE_NAMES)), np.nan)
    if styles is None:
        return out
    column = _style_columns(styles.styles)
    row_of = pd.Series(np.arange(len(image_ids)), index=image_ids.to_numpy())
    unknown: list[str] = []
    train = np.zeros((len(styles.train_ids), len(STYLE_NAMES)))
    train[np.arange(len(styles.train_ids)), [column[int(s)] for s in styles.train_labels]] = 1.0
    test = np.zeros((len(styles.test_ids), len(STYLE_NAMES)))
    for j, sid in enumerate(sorted(styles.styles)):
        if j < styles.test_labels.shape[1]:
            test[:, column[sid]] = styles.test_labels[:, j]
    for ids, labels in ((styles.train_ids, train), (styles.test_ids, test)):
        rows = row_of.reindex(ids)
        known = rows.notna().to_numpy()
        unknown += [i for i, k in zip(ids, known) if not k]
        r = rows[known].to_numpy(dtype=np.int64)
        out[r] = np.fmax(out[r], labels[known])
    if unknown:
        log.warning("%d id(s) of the style lists are not in %s and were not used, e.g. %s", len(unknown), AVA_TXT,
                    unknown[:20])
    return out


def _style_columns(styles: dict[int, str]) -> dict[int, int]:
    """styles.txt id → position in STYLE_NAMES (by name; by id order when the names differ)."""
    by_name = {_norm_name(n): k for k, n in enumerate(STYLE_NAMES)}
    named = {sid: by_name.get(_norm_name(n)) for sid, n in styles.items()}
    if all(v is not None for v in named.values()) and len(set(named.values())) == len(named):
        return {sid: int(v) for sid, v in named.items()}  # type: ignore[arg-type]
    if len(styles) != len(STYLE_NAMES):
        raise InputError(f"expected the {len(STYLE_NAMES)} AVA styles, found {len(styles)}",
                         file=f"{STYLE_DIR}/styles.txt")
    return {sid: k for k, sid in enumerate(sorted(styles))}


def images_table(data: AVAFiles) -> pd.DataFrame:
    """The canonical images table of an AVA folder: image_id, split (the standard test list is
    ``test``; the toolkit's validation ids, :func:`is_validation_id`, are ``validation``; the rest
    ``train``), score (mean vote rescaled to [0, 1]), score_mean (1–10), n_ratings (votes), the
    style columns, the content category and the image path."""
    t = data.table
    ids = t["image_id"]
    split = np.where(ids.isin(set(data.test_ids)), "test",
                     np.where(ids.map(is_validation_id).to_numpy(dtype=bool), "validation", "train"))
    mean = t["mean_score"].to_numpy(dtype=float)
    images = pd.DataFrame({"image_id": ids.astype(str), "split": split.astype(object), "score": (mean - 1.0) / 9.0,
                           "score_mean": mean, "n_ratings": t["n_votes"].to_numpy(dtype=np.int64)})
    labels = style_matrix(_style_lists(data.root), images["image_id"])
    for k, col in enumerate(STYLE_COLUMNS):
        images[col] = labels[:, k]
    images[CATEGORY_COLUMN] = category_codes(t, data.tags)
    images["path"] = IMAGE_DIR + "/" + images["image_id"] + ".jpg"
    return images


def _style_lists(root: Path) -> StyleLists | None:
    """The style lists of the AVA folder ``root`` (None without ``style_image_lists/``); the folder
    or one of its files leading outside ``root`` is refused unread."""
    folder = root / STYLE_DIR
    if not folder.is_dir():
        return None
    for path in (folder, *(folder / name for name in STYLE_FILES)):
        _refuse_outside(root, path)
    return read_style_lists(folder)


def check_image_files(root: Path, image_ids: pd.Series) -> None:
    """Raise an InputError naming every id (up to 20, and the count) whose ``images/<id>.jpg`` is
    missing or empty; log image files that have no line in ``AVA.txt``. One directory scan, so it
    is cheap at AVA's 255,000 images."""
    folder = root / IMAGE_DIR
    if not folder.is_dir():
        raise SourceError(f"{folder}: no images folder (AVA photos are read from {IMAGE_DIR}/<id>.jpg)")
    if not inside(root, folder):
        raise SourceError(f"{folder}: the images folder is a link leading outside the AVA folder; nothing outside "
                          "it is read (copy or move the photos into it)")
    sizes: dict[str, int] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.endswith(".jpg") and (not entry.is_symlink() or inside(root, entry.path)):
                try:  # a dangling link, or one leading out of the folder, is no file at all
                    sizes[entry.name[:-4]] = entry.stat().st_size
                except OSError:
                    continue
    wanted = set(image_ids)
    missing = [i for i in image_ids if i not in sizes]
    empty = [i for i in image_ids if sizes.get(i) == 0]
    problems = []
    if missing:
        problems.append(f"{len(missing)} image(s) listed in {AVA_TXT} have no file {IMAGE_DIR}/<id>.jpg: "
                        f"ids {', '.join(missing[:20])}{' …' if len(missing) > 20 else ''}")
    if empty:
        problems.append(f"{len(empty)} image file(s) are empty (corrupt): ids {', '.join(empty[:20])}"
                        f"{' …' if len(empty) > 20 else ''}")
    if problems:
        raise InputError("; ".join(problems) + ". Restore the files, or remove their lines from AVA.txt "
                         "(see docs/ava.md)", file=str(folder))
    stray = sorted(set(sizes) - wanted)
    if stray:
        log.warning("%s: %d image file(s) have no line in %s and are not used, e.g. %s", folder, len(stray),
                    AVA_TXT, stray[:20])


def is_synthetic_ava(root: str | os.PathLike[str]) -> bool:
    """Whether an AVA folder was written by the toolkit's synthetic generator (a test instrument)."""
    return (Path(root) / SYNTHETIC_MARKER).is_file()


def load_ava_source(root: str | os.PathLike[str], *, test_list: str | os.PathLike[str] | None = None,
                    check_files: bool = True) -> "AADBData":
    """An AVA folder as the toolkit's data model (:class:`aadb_toolkit.sources.AADBData`): the
    images table of :func:`images_table`, an empty ratings table (AVA has no rater ids), and the
    photos from ``images/<id>.jpg``. Missing or empty image files are an error naming their ids."""
    from .data import AADBData, Provenance

    data = read_ava_folder(root, test_list=test_list)
    images = images_table(data)
    no_votes = images.loc[images["n_ratings"] == 0, "image_id"].tolist()
    if no_votes:
        raise InputError(f"{len(no_votes)} image(s) have no votes, e.g. {no_votes[:20]}", file=str(data.root / AVA_TXT))
    if check_files:
        check_image_files(data.root, images["image_id"])
    folder = data.root / IMAGE_DIR
    known = set(images["image_id"])

    def read(image_id: str) -> bytes:
        if image_id not in known:
            raise KeyError(f"unknown image_id {image_id!r} in {data.root}")
        path = folder / f"{image_id}.jpg"
        if not inside(data.root, path):  # a symbolic link leading out: never read, never quoted
            raise InputError("the image file is a link leading outside the AVA folder; not read", file=str(path))
        return path.read_bytes()

    from . import schema

    ratings = pd.DataFrame({c: pd.Series([], dtype=float if c == "score" or c in schema.ATTRIBUTES else object)
                            for c in schema.RATING_COLUMNS})
    test_name = Path(test_list).stem if test_list is not None else Path(STANDARD_TEST_LIST).stem
    provenance = Provenance(origin=str(data.root), kind="ava", synthetic=is_synthetic_ava(data.root),
                            test_list=test_name)
    return AADBData(images=images, ratings=ratings, origin=str(data.root), read_image_bytes=read,
                    provenance=provenance)


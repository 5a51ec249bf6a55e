"""Readers for the AVA data set (Murray et al., CVPR 2012) in its standard distribution, and a
synthetic AVA-format generator for tests (a test instrument, never presented as AVA).

Files read (relative to the AVA root folder):

- ``AVA.txt``: one image per line, 15 whitespace-separated integers: index, image id, ten vote
  counts for the scores 1..10, two semantic tag ids (0 = none), challenge id.
- ``tags.txt`` and ``challenges.txt``: ``<id> <name>`` per line.
- ``aesthetics_image_lists/generic_test.jpgl``: the standard test list (about 20,000 ids), one per
  line. The training images are all other images of ``AVA.txt``.
- ``style_image_lists/``: ``train.jpgl`` + ``train.lab`` (one style id per image),
  ``test.jpgl`` + ``test.multilab`` (14 binary columns per image), ``styles.txt``.

The toolkit's AVA validation set (used to choose the binary threshold τ of the ``ava`` protocol) is
a deterministic held-out part of the training ids: an id belongs to it when
``sha256("aadb-toolkit/ava-validation/v1:" + id)`` read as an integer is divisible by
:data:`VALIDATION_MODULUS` (about 2% of the training images; membership depends on the id alone).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ._atomic import atomic_dir
from .data import sha256_fingerprint
from .errors import InputError, SourceError

AVA_TXT = "AVA.txt"
TAGS_TXT = "tags.txt"
CHALLENGES_TXT = "challenges.txt"
AESTHETICS_LIST_DIR = "aesthetics_image_lists"
STANDARD_TEST_LIST = f"{AESTHETICS_LIST_DIR}/generic_test.jpgl"
STYLE_DIR = "style_image_lists"
STYLE_NAMES = ("Complementary_Colors", "Duotones", "HDR", "Image_Grain", "Light_On_White", "Long_Exposure",
               "Macro", "Motion_Blur", "Negative_Image", "Rule_of_Thirds", "Shallow_DOF", "Silhouettes",
               "Soft_Focus", "Vanishing_Point")
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
    if not raw[1].str.fullmatch(r"\d+").all():
        return None
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
        elif not all(p.isdigit() for p in parts):
            bad.append(f"line {i}: fields must be non-negative integers: {line.strip()[:80]!r}")
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
        if not head.isdigit() or not name.strip():
            raise InputError(f"expected '<id> <name>', found {line.strip()[:80]!r}", file=str(path), row=i)
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
        if not s.isdigit():
            raise InputError(f"expected an integer image id, found {s[:80]!r}", file=str(path), row=i)
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
        if len(parts) != width or not all(p.lstrip("-").isdigit() for p in parts):
            raise InputError(f"expected {width} integer(s), found {line.strip()[:80]!r}", file=str(path), row=i)
        rows.append([int(p) for p in parts])
    return np.array(rows, dtype=np.int64).reshape(-1, width)


def is_validation_id(image_id: str) -> bool:
    """Whether a (training) image id belongs to the toolkit's AVA validation set."""
    digest = hashlib.sha256((_VALIDATION_SALT + str(image_id)).encode()).digest()
    return int.from_bytes(digest[:8], "big") % VALIDATION_MODULUS == 0


@dataclass
class AVAData:
    """An AVA root folder read: the ``AVA.txt`` table and the standard splits."""

    root: Path
    table: pd.DataFrame
    test_ids: list[str]
    tags: dict[int, str] = field(default_factory=dict)
    challenges: dict[int, str] = field(default_factory=dict)

    @property
    def train_ids(self) -> list[str]:
        """Every image of ``AVA.txt`` that is not on the standard test list (validation included)."""
        test = set(self.test_ids)
        return [i for i in self.table["image_id"] if i not in test]

    @property
    def validation_ids(self) -> list[str]:
        """The toolkit's validation ids: the training ids selected by :func:`is_validation_id`."""
        return [i for i in self.train_ids if is_validation_id(i)]

    def split_ids(self, split: str) -> list[str]:
        """Image ids of ``train`` (without validation), ``validation`` or ``test``."""
        if split == "test":
            return list(self.test_ids)
        if split == "validation":
            return self.validation_ids
        if split == "train":
            return [i for i in self.train_ids if not is_validation_id(i)]
        raise ValueError(f"unknown AVA split {split!r}; expected train, validation or test")

    def ground_truth(self, split: str) -> pd.Series:
        """Mean vote (1..10) of each image of a split, indexed by image_id."""
        ids = self.split_ids(split)
        s = self.table.set_index("image_id")["mean_score"].reindex(ids)
        if s.isna().any():
            bad = list(s.index[s.isna()][:5])
            raise InputError(f"{int(s.isna().sum())} image(s) of the {split} split have no votes, e.g. {bad}",
                             file=str(self.root / AVA_TXT))
        return s.rename("mean_score")

    def style_lists(self) -> StyleLists:
        """Read the style lists of this root."""
        return read_style_lists(self.root / STYLE_DIR)

    def fingerprint(self, split: str = "test") -> str:
        """sha256 over the split's sorted (image_id, mean vote) pairs, like the AADB fingerprint."""
        gt = self.ground_truth(split)
        rows = sorted(zip(gt.index.astype(str), gt.to_numpy(dtype=float)))
        return sha256_fingerprint([f"ava:{split}\n", *(f"{image_id}\t{score:.9f}\n" for image_id, score in rows)])


def load_ava(root: str | os.PathLike[str], *, test_list: str | os.PathLike[str] | None = None) -> AVAData:
    """Read an AVA root folder; ``test_list`` overrides the standard test list file."""
    root = Path(root)
    if not (root / AVA_TXT).is_file():
        raise SourceError(f"{root}: not an AVA folder (no {AVA_TXT})")
    table = read_ava_txt(root / AVA_TXT)
    test_path = Path(test_list) if test_list is not None else root / STANDARD_TEST_LIST
    if not test_path.is_file():
        raise SourceError(f"{test_path}: standard test list not found")
    test_ids = read_id_list(test_path)
    unknown = sorted(set(test_ids) - set(table["image_id"]))
    if unknown:
        raise InputError(f"{len(unknown)} test id(s) are not in {AVA_TXT}, e.g. {unknown[:5]}", file=str(test_path))
    tags = read_id_names(root / TAGS_TXT) if (root / TAGS_TXT).is_file() else {}
    challenges = read_id_names(root / CHALLENGES_TXT) if (root / CHALLENGES_TXT).is_file() else {}
    return AVAData(root=root, table=table, test_ids=test_ids, tags=tags, challenges=challenges)


def write_synthetic_ava(out: str | os.PathLike[str], n_images: int, seed: int = 0, *,
                        test_fraction: float = 0.08) -> Path:
    """Write a synthetic AVA-format folder (every file the readers read) of ``n_images`` images
    with random vote histograms around a latent quality; also ``synthetic_quality.csv`` (the
    planted latent quality per id). A test instrument, not AVA."""
    if n_images < 10:
        raise ValueError("n_images must be at least 10")
    rng = np.random.default_rng(seed)
    ids = np.sort(rng.choice(np.arange(1, max(10 * n_images, 1000)), size=n_images, replace=False))
    quality = rng.normal(5.4, 0.75, n_images)
    n_votes = rng.integers(78, 550, n_images)
    grid = np.arange(1, 11)
    lines = []
    votes_all = np.empty((n_images, 10), dtype=np.int64)
    for i in range(n_images):
        p = np.exp(-0.5 * ((grid - quality[i]) / 1.45) ** 2)
        votes_all[i] = rng.multinomial(n_votes[i], p / p.sum())
    n_tags = rng.integers(0, 3, n_images)
    tags = rng.integers(1, 67, (n_images, 2))
    tags[n_tags < 2, 1] = 0
    tags[n_tags < 1, 0] = 0
    challenge = rng.integers(1, 1400, n_images)
    for i in range(n_images):
        lines.append(" ".join(str(v) for v in (i + 1, ids[i], *votes_all[i], *tags[i], challenge[i])))
    str_ids = [str(i) for i in ids]
    is_test = rng.random(n_images) < test_fraction
    with atomic_dir(out) as d:
        (d / AVA_TXT).write_text("\n".join(lines) + "\n")
        (d / TAGS_TXT).write_text("".join(f"{k} synthetic_tag_{k:02d}\n" for k in range(1, 67)))
        (d / CHALLENGES_TXT).write_text("".join(f"{k} synthetic_challenge_{k}\n" for k in range(1, 1400)))
        (d / AESTHETICS_LIST_DIR).mkdir()
        (d / STANDARD_TEST_LIST).write_text("".join(f"{i}\n" for i, t in zip(str_ids, is_test) if t))
        (d / AESTHETICS_LIST_DIR / "generic_ls_train.jpgl").write_text(
            "".join(f"{i}\n" for i, t in zip(str_ids, is_test) if not t))
        style = d / STYLE_DIR
        style.mkdir()
        (style / "styles.txt").write_text("".join(f"{k} {n}\n" for k, n in enumerate(STYLE_NAMES, start=1)))
        pick = rng.permutation(n_images)[: max(4, n_images // 20)]
        half = len(pick) // 2
        (style / "train.jpgl").write_text("".join(f"{str_ids[j]}\n" for j in pick[:half]))
        (style / "train.lab").write_text("".join(f"{int(rng.integers(1, 15))}\n" for _ in pick[:half]))
        (style / "test.jpgl").write_text("".join(f"{str_ids[j]}\n" for j in pick[half:]))
        multilab = rng.random((len(pick) - half, len(STYLE_NAMES))) < 0.15
        (style / "test.multilab").write_text("".join(" ".join(str(int(v)) for v in row) + "\n" for row in multilab))
        pd.DataFrame({"image_id": str_ids, "latent_quality": quality}).to_csv(d / "synthetic_quality.csv", index=False)
        (d / "README.txt").write_text("Synthetic AVA-format data written by aadb_toolkit.ava.write_synthetic_ava "
                                      f"(n_images={n_images}, seed={seed}). A test instrument: NOT the AVA data set.\n")
    return Path(out)

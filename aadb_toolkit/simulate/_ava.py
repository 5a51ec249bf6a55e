"""A synthetic AVA with images, in the layout of the real AVA distribution: a TEST INSTRUMENT, never AVA.

Every image is drawn by the AADB simulator's :func:`~._images.draw_photo` (shared, not copied):
a content category (8, as the paper's AVA categories) picks the drawing kind and hue and is written
as the image's first semantic tag; planted attribute strengths drive the pixels and the planted
quality; the quality drives a ~200-vote histogram on 1..10. A subset of images carries style labels
(the 14 AVA styles), each rendered as a visible effect on the pixels. The planted truth goes to
``synthetic_truth.csv`` beside the files the readers read. See docs/synthetic.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage
from tqdm.auto import tqdm

from .. import ava, schema
from .._atomic import atomic_dir, check_output_folder
from .._numbers import check_seed
from ..errors import InputError
from ._images import _LUMA, draw_photo, encode_jpeg
from ._model import load_model

GENERATOR = "aadb_toolkit.simulate.write_synthetic_ava"
TRUTH_FILE = "synthetic_truth.csv"
#: (category name, drawing kind, hue, quality offset); names are ava.CONTENT_CATEGORIES.
CATEGORY_LOOKS: tuple[tuple[str, str, float, float], ...] = (
    ("Animals", "macro", 0.08, 0.00), ("Architecture", "urban", 0.60, -0.10),
    ("Cityscape", "urban", 0.70, -0.20), ("Floral", "macro", 0.92, 0.15),
    ("Food and Drink", "still_life", 0.05, 0.00), ("Landscape", "landscape", 0.30, 0.20),
    ("Portraiture", "portrait", 0.08, 0.00), ("Still Life", "still_life", 0.55, -0.05),
)
#: Share of images whose first tag is one of the 8 categories (the rest get other tags or none).
CATEGORY_SHARE = 0.75
#: Share of images carrying style labels (half single-label train list, half multi-label test list).
STYLE_SHARE = 0.2
#: Share of the mean vote's variance that no pixel shows (taste): caps what any model can reach.
HIDDEN_SHARE = 0.3
MEAN_VOTE, MEAN_VOTE_SD, VOTE_SD = 5.38, 0.73, 1.45
_A = {a: i for i, a in enumerate(schema.ATTRIBUTES)}
#: Styles drawn through an attribute strength (set before drawing), and the strength they set.
_STYLE_STRENGTH = {"Shallow_DOF": ("depth_of_field", 0.95), "Motion_Blur": ("motion_blur", 0.95),
                   "Rule_of_Thirds": ("rule_of_thirds", 0.95), "Macro": ("object", 0.95),
                   "HDR": ("vivid_color", 0.95)}
_STREAM = 41  # random streams of this generator: [seed, _STREAM, part, ...]
#: The output-marker kind of a synthetic AVA folder (see :mod:`aadb_toolkit._atomic`).
AVA_KIND = "simulated_ava"


@dataclass(frozen=True)
class SyntheticAVA:
    """What :func:`write_synthetic_ava` wrote: the folder and its counts."""

    root: Path
    n_images: int
    n_test: int
    n_style_images: int
    n_image_files: int


def _gen(seed: int, part: int, *more: int) -> np.random.Generator:
    return np.random.default_rng([seed, _STREAM, part, *more])


def _check_args(out: Path, n_images: int, seed: int, image_size: tuple[int, int]) -> None:
    if isinstance(n_images, bool) or not isinstance(n_images, (int, np.integer)) or n_images < 10:
        raise InputError(f"must be an integer ≥ 10, got {n_images!r}", field="images")
    check_seed(seed)
    if len(image_size) != 2 or min(image_size) < 16 or max(image_size) > 4096:
        raise InputError(f"width and height must be in 16..4096, got {image_size}", field="image_size")
    check_output_folder(out, AVA_KIND)  # before the work: only a synthetic AVA the toolkit wrote is replaced


def sample_ava_latents(n_images: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Per image: id, category (index into ava.CONTENT_CATEGORIES, −1 = none), drawing kind, hue,
    planted quality, mean-vote centre, styles; and the planted attribute strengths (n, 11)."""
    gen = _gen(seed, 0)
    model = load_model()
    kinds = {c.name: k for k, c in enumerate(model.content_types)}
    ids = np.sort(gen.choice(np.arange(1, max(10 * n_images, 1000)), size=n_images, replace=False))
    has_cat = gen.random(n_images) < CATEGORY_SHARE
    cat = np.where(has_cat, gen.integers(0, len(CATEGORY_LOOKS), n_images), -1)
    other_kind = gen.choice(model.content_names, size=n_images)
    kind = np.array([CATEGORY_LOOKS[c][1] if c >= 0 else other_kind[i] for i, c in enumerate(cat)], dtype=object)
    hue = np.where(cat >= 0, np.array([CATEGORY_LOOKS[max(c, 0)][2] for c in cat]), gen.random(n_images))
    skill = gen.standard_normal((n_images, 1))
    z = gen.normal(0.0, model.images["spread"], (n_images, len(schema.ATTRIBUTES)))
    share = model.images["skill_share"]
    strengths = np.tanh(share * skill + (1 - share) * z)
    styles = _sample_styles(gen, n_images)
    for s, (attr, value) in _STYLE_STRENGTH.items():
        rows = [i for i, st in enumerate(styles) if s in st]
        strengths[rows, _A[attr]] = value
    kind[[i for i, st in enumerate(styles) if "Macro" in st]] = "macro"
    weights = model.weight_matrix[[kinds[k] for k in kind]]
    offset = np.array([CATEGORY_LOOKS[c][3] if c >= 0 else 0.0 for c in cat])
    quality = offset + (weights * strengths).sum(axis=1)
    zq = (quality - quality.mean()) / (quality.std() or 1.0)
    centre = MEAN_VOTE + MEAN_VOTE_SD * (np.sqrt(1 - HIDDEN_SHARE) * zq
                                         + np.sqrt(HIDDEN_SHARE) * gen.standard_normal(n_images))
    frame = pd.DataFrame({"image_id": ids.astype(str), "category": cat, "kind": kind, "hue": hue,
                          "latent_quality": quality, "vote_centre": centre,
                          "styles": [";".join(st) for st in styles]})
    return frame, strengths


def _sample_styles(gen: np.random.Generator, n_images: int) -> list[tuple[str, ...]]:
    """Styles per image: a subset of ``STYLE_SHARE`` carries one style (two for a third of them)."""
    out: list[tuple[str, ...]] = []
    n_styles = len(ava.STYLE_NAMES)
    for _ in range(n_images):
        if gen.random() >= STYLE_SHARE:
            out.append(())
            continue
        k = 2 if gen.random() < 1 / 3 else 1
        picks = sorted(gen.choice(n_styles, size=k, replace=False))
        out.append(tuple(ava.STYLE_NAMES[p] for p in picks))
    return out


def sample_votes(centres: np.ndarray, seed: int) -> np.ndarray:
    """Vote counts (n, 10) for scores 1..10: about 200 voters per image, each voting the centre
    plus Gaussian disagreement, rounded and clipped to 1..10."""
    gen = _gen(seed, 1)
    n_votes = gen.integers(150, 251, len(centres))
    grid = np.arange(1, 11)
    p = np.exp(-0.5 * ((grid[None, :] - centres[:, None]) / VOTE_SD) ** 2)
    p /= p.sum(axis=1, keepdims=True)
    return np.stack([gen.multinomial(n, row) for n, row in zip(n_votes, p)]).astype(np.int64)


def apply_styles(pixels: np.ndarray, styles: tuple[str, ...], gen: np.random.Generator) -> np.ndarray:
    """Render each labelled style as a visible effect (those drawn through attribute strengths
    need nothing more, except HDR's local contrast); returns uint8 pixels."""
    img = pixels.astype(np.float32) / 255.0
    h, w = img.shape[:2]
    for style in styles:
        luma = img @ _LUMA
        if style == "HDR":
            img = img + 1.2 * (img - ndimage.gaussian_filter(img, (h / 16, h / 16, 0)))
        elif style == "Complementary_Colors":
            a = gen.random()
            c1, c2 = _hue_rgb(a), _hue_rgb(a + 0.5)
            img = 0.45 * img + 0.55 * np.where((luma < np.median(luma))[..., None], c1, c2) * luma[..., None] * 1.6
        elif style == "Duotones":
            c1, c2 = 0.25 * _hue_rgb(gen.random()), 0.5 + 0.5 * _hue_rgb(gen.random())
            img = c1 + (c2 - c1) * luma[..., None]
        elif style == "Image_Grain":
            img = img + 0.14 * gen.standard_normal((h, w, 1)).astype(np.float32)
        elif style == "Light_On_White":
            img = 1.0 - 0.3 * (1.0 - img)
        elif style == "Long_Exposure":
            img = 0.6 * ndimage.uniform_filter1d(img, size=max(3, h // 4), axis=0, mode="nearest")
        elif style == "Negative_Image":
            img = 1.0 - img
        elif style == "Silhouettes":
            dark = (luma < np.quantile(luma, 0.4))[..., None]
            img = np.where(dark, 0.03, 0.55 + 0.45 * img)
        elif style == "Soft_Focus":
            img = 0.35 * img + 0.75 * ndimage.gaussian_filter(img, (h / 24, h / 24, 0))
        elif style == "Vanishing_Point":
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
            theta = np.arctan2(yy - h * (0.35 + 0.3 * gen.random()), xx - w * (0.35 + 0.3 * gen.random()))
            img = img * (0.55 + 0.45 * (np.cos(18 * theta) > 0))[..., None]
        img = np.clip(img, 0.0, 1.0)
    return (img * 255.0 + 0.5).astype(np.uint8)


def _hue_rgb(h: float) -> np.ndarray:
    import colorsys

    return np.array(colorsys.hsv_to_rgb(h % 1.0, 0.8, 0.9), dtype=np.float32)


def _style_lists(frame: pd.DataFrame, seed: int) -> tuple[list[int], list[int]]:
    """Rows of the style train list (single label: exactly one style) and of the multi-label test list."""
    rows = [i for i, s in enumerate(frame["styles"]) if s]
    single = [i for i in rows if ";" not in frame["styles"].iloc[i]]
    gen = _gen(seed, 2)
    train = sorted(gen.choice(single, size=len(single) // 2, replace=False).tolist()) if single else []
    test = sorted(set(rows) - set(train))
    return train, test


def write_synthetic_ava(out: str | Path, n_images: int, seed: int = 0, *, image_size: tuple[int, int] = (128, 96),
                        images: bool = True, test_fraction: float = 0.08, progress: bool | None = None) -> Path:
    """Write a synthetic AVA folder (see the module docstring) with ``n_images`` images; the same
    seed gives byte-identical files. ``images=False`` writes the label files only (fast, for the
    scoring tests). A test instrument, never AVA. Returns the folder."""
    return write_synthetic_ava_report(out, n_images, seed, image_size=image_size, images=images,
                                      test_fraction=test_fraction, progress=progress).root


def write_synthetic_ava_report(out: str | Path, n_images: int, seed: int = 0, *,
                               image_size: tuple[int, int] = (128, 96), images: bool = True,
                               test_fraction: float = 0.08, progress: bool | None = None) -> SyntheticAVA:
    """:func:`write_synthetic_ava`, returning the counts too."""
    out = Path(out)
    _check_args(out, n_images, seed, image_size)
    frame, strengths = sample_ava_latents(n_images, seed)
    votes = sample_votes(frame["vote_centre"].to_numpy(), seed)
    is_test = _gen(seed, 3).random(n_images) < test_fraction
    style_train, style_test = _style_lists(frame, seed)
    with atomic_dir(out, kind=AVA_KIND) as d:
        _write_labels(d, frame, votes, is_test, style_train, style_test, seed)
        n_files = _write_images(d, frame, strengths, seed, image_size, progress) if images else 0
        truth = frame.assign(category_name=[ava.CONTENT_CATEGORIES[c] if c >= 0 else "" for c in frame["category"]],
                             is_test=is_test)
        truth.to_csv(d / TRUTH_FILE, index=False, float_format="%.9g", lineterminator="\n")
        (d / "README.txt").write_text(
            f"Synthetic AVA-format data written by {GENERATOR} (n_images={n_images}, seed={seed}).\n"
            "A test instrument: NOT the AVA data set. Its numbers say nothing about human aesthetics.\n")
        (d / ava.SYNTHETIC_MARKER).write_text(json.dumps({
            "generator": GENERATOR, "version": 1, "n_images": n_images, "seed": seed, "images": images,
            "image_size": list(image_size), "synthetic": True,
            "note": "a test instrument, not the AVA data set"}, indent=2) + "\n")
    return SyntheticAVA(out, n_images, int(is_test.sum()), len(style_train) + len(style_test), n_files)


def _write_labels(d: Path, frame: pd.DataFrame, votes: np.ndarray, is_test: np.ndarray,
                  style_train: list[int], style_test: list[int], seed: int) -> None:
    gen = _gen(seed, 4)
    n = len(frame)
    n_tags = len(ava.CONTENT_CATEGORIES) + 58  # the real tags.txt has 66 tags
    cat_tag = {k: k + 1 for k in range(len(ava.CONTENT_CATEGORIES))}
    other = gen.integers(len(ava.CONTENT_CATEGORIES) + 1, n_tags + 1, (n, 2))
    none = gen.random(n) < 0.1
    tag1 = np.array([cat_tag[c] if c >= 0 else (0 if z else o) for c, z, o in zip(frame["category"], none, other[:, 0])])
    tag2 = np.where((gen.random(n) < 0.5) & (tag1 > 0), other[:, 1], 0)
    challenge = gen.integers(1, 1400, n)
    ids = frame["image_id"].tolist()
    lines = [" ".join(str(v) for v in (i + 1, ids[i], *votes[i], tag1[i], tag2[i], challenge[i])) for i in range(n)]
    (d / ava.AVA_TXT).write_text("\n".join(lines) + "\n")
    tag_names = [*ava.CONTENT_CATEGORIES, *(f"synthetic_tag_{k:02d}" for k in range(len(ava.CONTENT_CATEGORIES) + 1,
                                                                                    n_tags + 1))]
    (d / ava.TAGS_TXT).write_text("".join(f"{k} {name}\n" for k, name in enumerate(tag_names, start=1)))
    (d / ava.CHALLENGES_TXT).write_text("".join(f"{k} synthetic_challenge_{k}\n" for k in range(1, 1400)))
    (d / ava.AESTHETICS_LIST_DIR).mkdir()
    (d / ava.STANDARD_TEST_LIST).write_text("".join(f"{i}\n" for i, t in zip(ids, is_test) if t))
    (d / ava.AESTHETICS_LIST_DIR / "generic_ls_train.jpgl").write_text("".join(f"{i}\n" for i, t in zip(ids, is_test)
                                                                              if not t))
    style = d / ava.STYLE_DIR
    style.mkdir()
    number = {s: k for k, s in enumerate(ava.STYLE_NAMES, start=1)}
    (style / "styles.txt").write_text("".join(f"{k} {s}\n" for s, k in number.items()))
    (style / "train.jpgl").write_text("".join(f"{ids[r]}\n" for r in style_train))
    (style / "train.lab").write_text("".join(f"{number[frame['styles'].iloc[r]]}\n" for r in style_train))
    (style / "test.jpgl").write_text("".join(f"{ids[r]}\n" for r in style_test))
    rows = []
    for r in style_test:
        on = set(frame["styles"].iloc[r].split(";"))
        rows.append(" ".join("1" if s in on else "0" for s in ava.STYLE_NAMES) + "\n")
    (style / "test.multilab").write_text("".join(rows))


def _write_images(d: Path, frame: pd.DataFrame, strengths: np.ndarray, seed: int, image_size: tuple[int, int],
                  progress: bool | None) -> int:
    quality = int(load_model().images["jpeg_quality"])
    folder = d / ava.IMAGE_DIR
    folder.mkdir()
    w, h = image_size
    for i in tqdm(range(len(frame)), desc="drawing AVA images", unit="img", leave=False,
                  disable=None if progress is None else not progress):
        kind = frame["kind"].iloc[i]
        size = (min(w, h), max(w, h)) if kind == "portrait" else (w, h)
        gen = _gen(seed, 5, i)
        pixels = draw_photo(kind, strengths[i], float(frame["hue"].iloc[i]), gen, size)
        styles = frame["styles"].iloc[i]
        if styles:
            pixels = apply_styles(pixels, tuple(styles.split(";")), gen)
        (folder / f"{frame['image_id'].iloc[i]}.jpg").write_bytes(encode_jpeg(pixels, quality))
    return len(frame)

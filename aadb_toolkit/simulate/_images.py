"""Procedurally drawn "photos" whose visible properties carry the planted attribute strengths.

Each image has a content type (landscape, portrait, macro, urban, still life) and 11 planted
attribute strengths in (-1, 1), one per AADB attribute; :func:`draw_photo` turns them into pixels
(see docs/synthetic.md for the exact mapping). The planted quality is a content-specific weighted
sum of the strengths, so a model that sees the pixels can learn it.
"""

from __future__ import annotations

import colorsys
import io
from functools import lru_cache

import numpy as np
import pandas as pd
from PIL import Image
from scipy import ndimage

from .. import schema
from ._model import Model, load_model, rng

_A = {a: i for i, a in enumerate(schema.ATTRIBUTES)}
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def sample_image_latents(n_images: int, seed: int, model: Model | None = None,
                         part: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Content type, planted attribute strengths (n, 11) and latent quality of every image
    (``part`` 0: the rated images; 1: the unrated extra files of ``--quirks``)."""
    model = model or load_model()
    gen = rng(seed, "images", part)
    p = model.images
    shares = np.array([c.share for c in model.content_types])
    content = gen.choice(len(shares), size=n_images, p=shares)
    skill = gen.standard_normal((n_images, 1))
    z = gen.normal(0.0, p["spread"], (n_images, len(schema.ATTRIBUTES)))
    strengths = np.tanh(p["skill_share"] * skill + (1 - p["skill_share"]) * z)
    weights = model.weight_matrix[content]
    offsets = np.array([c.offset for c in model.content_types])[content]
    quality = offsets + (weights * strengths).sum(axis=1)
    frame = pd.DataFrame({
        "content_type": np.array(model.content_names, dtype=object)[content],
        "content_index": content,
        "latent_quality": quality,
    })
    return frame, strengths


def sample_decoy_strengths(n_images: int, seed: int, model: Model) -> np.ndarray:
    """Attribute strengths (n, 11) drawn like the planted ones but never drawn into pixels: what
    raters vote on instead, in part, when ``raters.attribute_informativeness`` < 1. Its own
    stream, so the planted draws do not move."""
    gen = rng(seed, "images", 2)
    p = model.images
    skill = gen.standard_normal((n_images, 1))
    z = gen.normal(0.0, p["spread"], (n_images, len(schema.ATTRIBUTES)))
    return np.tanh(p["skill_share"] * skill + (1 - p["skill_share"]) * z)


def photo_size(content_type: str, image_size: tuple[int, int]) -> tuple[int, int]:
    """(width, height) of a photo: portraits are shot in portrait orientation."""
    w, h = image_size
    return (min(w, h), max(w, h)) if content_type == "portrait" else (w, h)


@lru_cache(maxsize=8)
def _grid(w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return yy, xx


@lru_cache(maxsize=8)
def _sensor_noise(w: int, h: int) -> np.ndarray:
    """A fixed (2h, 2w, 3) field of faint sensor noise; each photo uses a random window of it."""
    return 0.012 * np.random.default_rng(20160101).standard_normal((2 * h, 2 * w, 3), dtype=np.float32)


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, float(np.clip(s, 0, 1)), float(np.clip(v, 0, 1))),
                    dtype=np.float32)


def _smooth_noise(gen: np.random.Generator, w: int, h: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [0, 1] (bilinear upsampling of a coarse random grid)."""
    gh, gw = max(2, cells * h // max(w, h)), max(2, cells * w // max(w, h))
    coarse = Image.fromarray(gen.random((gh, gw)).astype(np.float32), mode="F")
    return np.asarray(coarse.resize((w, h), Image.BILINEAR), dtype=np.float32)


def _disc(xx, yy, cx, cy, r):
    """Anti-aliased disc mask (pixel units)."""
    return np.clip(r - np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) + 0.5, 0.0, 1.0)


def _ellipse(xx, yy, cx, cy, rx, ry):
    d = np.sqrt(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2)
    return np.clip((1.0 - d) * min(rx, ry) + 0.5, 0.0, 1.0)


def _rect(xx, yy, x0, y0, x1, y1):
    return (np.clip(np.minimum(xx - x0, x1 - xx) + 0.5, 0, 1)
            * np.clip(np.minimum(yy - y0, y1 - yy) + 0.5, 0, 1))


def _window(img: np.ndarray, x0: float, y0: float, x1: float, y1: float):
    """The pixel window (a pair of slices) covering a box, clipped to the image; None if empty."""
    h, w = img.shape[:2]
    xa, xb = max(0, int(np.floor(x0)) - 1), min(w, int(np.ceil(x1)) + 2)
    ya, yb = max(0, int(np.floor(y0)) - 1), min(h, int(np.ceil(y1)) + 2)
    return (slice(ya, yb), slice(xa, xb)) if xa < xb and ya < yb else None


def _stamp(img, xx, yy, box, shape, colour, alpha: float = 1.0) -> None:
    """Blend ``colour`` into ``img`` in place where ``shape(xx, yy)`` (a mask) covers, only
    within ``box`` (x0, y0, x1, y1): small shapes cost only their own pixels."""
    win = _window(img, *box)
    if win is None:
        return
    m = alpha * shape(xx[win], yy[win])
    sub = img[win]
    sub += (np.asarray(colour, dtype=np.float32) - sub) * m[..., None]


def _paint_disc(img, xx, yy, cx, cy, r, colour, alpha: float = 1.0) -> None:
    _stamp(img, xx, yy, (cx - r, cy - r, cx + r, cy + r), lambda x, y: _disc(x, y, cx, cy, r), colour, alpha)


def _paint_ellipse(img, xx, yy, cx, cy, rx, ry, colour, alpha: float = 1.0) -> None:
    _stamp(img, xx, yy, (cx - rx, cy - ry, cx + rx, cy + ry),
           lambda x, y: _ellipse(x, y, cx, cy, rx, ry), colour, alpha)


def _paint_rect(img, xx, yy, x0, y0, x1, y1, colour, alpha: float = 1.0) -> None:
    _stamp(img, xx, yy, (x0, y0, x1, y1), lambda x, y: _rect(x, y, x0, y0, x1, y1), colour, alpha)


def _background(kind: str, pal: list[np.ndarray], gen, xx, yy, w, h) -> np.ndarray:
    img = np.empty((h, w, 3), dtype=np.float32)
    ny = yy / h
    if kind == "landscape":
        horizon = (0.42 + 0.12 * gen.random() + 0.08 * (_smooth_noise(gen, w, 1, 6)[0] - 0.5)) * h
        sky = pal[0][None, None] * (0.75 + 0.35 * ny[..., None])
        ground = pal[1][None, None] * (0.55 + 0.6 * _smooth_noise(gen, w, h, 10)[..., None])
        img[:] = np.where((yy < horizon[None, :])[..., None], sky, ground)
    elif kind == "urban":
        img[:] = pal[0][None, None] * (0.8 + 0.3 * ny[..., None])
        x = 0.0
        while x < w:
            bw = w * (0.12 + 0.12 * gen.random())
            top = h * (0.15 + 0.45 * gen.random())
            _paint_rect(img, xx, yy, x, top, x + bw, h + 1, pal[1] * (0.5 + 0.5 * gen.random()))
            x += bw + w * 0.02
    elif kind == "portrait":
        r = np.sqrt((xx / w - 0.5) ** 2 + (ny - 0.4) ** 2)[..., None]
        img[:] = pal[0] * (1 - r) + pal[1] * r
    elif kind == "macro":
        t = _smooth_noise(gen, w, h, 5)[..., None]
        img[:] = pal[0] * t + pal[1] * (1 - t)
        for _ in range(6):
            _paint_disc(img, xx, yy, w * gen.random(), h * gen.random(), h * (0.05 + 0.1 * gen.random()),
                        pal[3] * 0.5 + 0.5, alpha=0.5)
    else:  # still_life: a wall and a table
        table = h * (0.55 + 0.1 * gen.random())
        wall = pal[0][None, None] * (0.85 + 0.15 * _smooth_noise(gen, w, h, 4)[..., None])
        img[:] = np.where((yy < table)[..., None], wall, pal[1][None, None] * (0.7 + 0.2 * ny[..., None]))
    return img


def _pattern(img, s_rep, pal, gen, xx, yy, w, h):
    """Repetition: identical shapes in regular rows (+) or random clutter of odd blobs (−)."""
    if s_rep > 0.05:
        n = 4 + int(round(5 * s_rep))
        rows = 1 + int(s_rep > 0.5)
        r = h * 0.035
        y0 = h * (0.2 + 0.6 * gen.random())
        for j in range(rows):
            for i in range(n):
                cx = (i + 0.5) * w / n
                _paint_disc(img, xx, yy, cx, y0 + j * 3.2 * r, r, pal[4], alpha=s_rep)
    elif s_rep < -0.05:
        for _ in range(int(round(10 * -s_rep))):
            col = _hsv(gen.random(), 0.3 + 0.5 * gen.random(), 0.3 + 0.6 * gen.random())
            _paint_ellipse(img, xx, yy, w * gen.random(), h * gen.random(), h * (0.02 + 0.08 * gen.random()),
                           h * (0.02 + 0.08 * gen.random()), col, alpha=0.85)
    return img


def _subject_mask(kind, xx, yy, cx, cy, r):
    if kind == "portrait":
        return np.maximum(_ellipse(xx, yy, cx, cy, 0.75 * r, r),
                          _ellipse(xx, yy, cx, cy + 2.1 * r, 1.7 * r, 1.2 * r))
    if kind == "macro":
        d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
        theta = np.arctan2(yy - cy, xx - cx)
        edge = r * (0.72 + 0.28 * np.cos(6 * theta))
        return np.clip(edge - d + 0.5, 0, 1)
    if kind == "landscape":  # a lone tree
        return np.maximum(_disc(xx, yy, cx, cy, r), _rect(xx, yy, cx - 0.15 * r, cy, cx + 0.15 * r, cy + 2.0 * r))
    if kind == "urban":  # a tower
        return _rect(xx, yy, cx - 0.45 * r, cy - 1.3 * r, cx + 0.45 * r, cy + 1.6 * r)
    return np.maximum(_ellipse(xx, yy, cx, cy, 0.8 * r, r), _disc(xx, yy, cx, cy - 1.05 * r, 0.3 * r))


def draw_photo(kind: str, s: np.ndarray, base_hue: float, gen: np.random.Generator,
               size: tuple[int, int]) -> np.ndarray:
    """Draw one photo (H, W, 3 uint8) of content type ``kind`` whose visible properties follow the
    planted attribute strengths ``s`` (schema.ATTRIBUTES order, each in (-1, 1))."""
    w, h = size
    yy, xx = _grid(w, h)
    a = {name: float(s[i]) for name, i in _A.items()}
    px = h / 96.0
    hues, pal = _palette(a, base_hue, gen)
    img = _draw_background(kind, a, pal, gen, xx, yy, size, px)
    cx, cy, r, ty = _paint_subject(img, kind, a, hues, pal, gen, xx, yy, size, px)
    _paint_balancing_element(img, kind, a, pal, xx, yy, size, cx, cy, r, ty)
    return _develop(img, a, gen, size, px)


def _palette(a: dict[str, float], base_hue: float, gen: np.random.Generator) -> tuple[np.ndarray, list]:
    """Five hues and RGB colours; colour harmony is their spread around the content type's base hue."""
    spread = 0.03 + 0.22 * (1 - a["color_harmony"])
    hue0 = base_hue + 0.06 * (gen.random() - 0.5)
    hues = hue0 + spread * gen.uniform(-1, 1, 5)
    vals = [0.85, 0.6, 0.7, 0.9, 0.8]
    pal = [_hsv(hues[i], 0.55, vals[i]) for i in range(5)]
    return hues, pal


def _draw_background(kind: str, a: dict[str, float], pal: list, gen: np.random.Generator, xx: np.ndarray,
                     yy: np.ndarray, size: tuple[int, int], px: float) -> np.ndarray:
    """The background with its repetition, symmetry, depth of field and panning motion blur."""
    w, h = size
    bg = _background(kind, pal, gen, xx, yy, w, h)
    bg = _pattern(bg, a["repetition"], pal, gen, xx, yy, w, h)
    # symmetry: mirror-blend the background (+) or light it lopsidedly (−)
    if a["symmetry"] > 0:
        m = 0.5 * a["symmetry"]
        bg = (1 - m) * bg + m * bg[:, ::-1]
    else:
        bg = bg * (1 + 0.7 * a["symmetry"] * (xx[..., None] / w - 0.5))
    # depth of field: blurred background behind a sharp subject (+), busy sharp clutter (−)
    if a["depth_of_field"] > 0:
        sigma = 3.5 * a["depth_of_field"] * px
        bg = ndimage.gaussian_filter(bg, (sigma, sigma, 0), mode="nearest")
    else:
        grain = np.repeat(np.repeat(gen.random((h // 3 + 1, w // 3 + 1)), 3, 0), 3, 1)[:h, :w]
        bg = bg + (0.5 * -a["depth_of_field"]) * (grain[..., None].astype(np.float32) - 0.5)
    # motion blur (+): a panning streak in the background only
    if a["motion_blur"] > 0.1:
        bg = ndimage.uniform_filter1d(bg, size=1 + int(round(7 * a["motion_blur"] * px)), axis=1, mode="nearest")
    return bg


def _paint_subject(img: np.ndarray, kind: str, a: dict[str, float], hues: np.ndarray, pal: list,
                   gen: np.random.Generator, xx: np.ndarray, yy: np.ndarray, size: tuple[int, int],
                   px: float) -> tuple[float, float, float, float]:
    """Paint the subject into ``img`` in place: size and contrast (object), placement (rule of
    thirds), detail (content). Returns its centre, radius and the thirds line ``ty`` it sits near."""
    w, h = size
    r = h * (0.08 + 0.085 * (a["object"] + 1))
    tx, ty = gen.choice([1 / 3, 2 / 3]), gen.choice([1 / 3, 2 / 3])
    ax, ay = (0.05 if tx < 0.5 else 0.95), (0.08 if ty < 0.5 else 0.92)
    t = (1 - a["rule_of_thirds"]) / 2
    cx, cy = w * (tx + t * (ax - tx)), h * (ty + t * (ay - ty))
    local = float((img.reshape(-1, 3) @ _LUMA).mean())
    contrast = (0.12 + 0.2 * (a["object"] + 1)) * (0.6 + 0.2 * (a["content"] + 1))
    value = local - contrast if local > 0.5 else local + contrast
    subj = _hsv(hues[2], 0.65, value)
    win = _window(img, cx - 1.8 * r, cy - 1.4 * r, cx + 1.8 * r, cy + 3.4 * r)
    if win is not None:
        x, y = xx[win], yy[win]
        mask = _subject_mask(kind, x, y, cx, cy, r)[..., None]
        if a["content"] > -0.5:  # interesting detail: rings inside the subject
            d = np.sqrt((x - cx) ** 2 + (y - cy) ** 2)
            detail = (0.3 * (a["content"] + 0.5) / 1.5) * (0.5 + 0.5 * np.cos(d * (2.2 / px)))[..., None]
            fill = subj + (pal[3] - subj) * detail
        else:
            fill = subj
        sub = img[win]
        sub += (fill - sub) * mask
    return cx, cy, r, ty


def _paint_balancing_element(img: np.ndarray, kind: str, a: dict[str, float], pal: list, xx: np.ndarray,
                             yy: np.ndarray, size: tuple[int, int], cx: float, cy: float, r: float,
                             ty: float) -> None:
    """Paint a smaller accent opposite the subject (+) or crowding it (−) into ``img`` in place."""
    w, h = size
    ox, oy = w - cx, h * (1 - ty) if kind != "portrait" else h * 0.75
    side = -1.0 if cx > w / 2 else 1.0
    crowd_x, crowd_y = cx - side * 1.3 * r, cy + 0.4 * r
    tb = (a["balancing_elements"] + 1) / 2
    bx, by = crowd_x + tb * (ox - crowd_x), crowd_y + tb * (oy - crowd_y)
    _paint_disc(img, xx, yy, bx, by, 0.45 * r, pal[3] * 0.9)


def _develop(img: np.ndarray, a: dict[str, float], gen: np.random.Generator, size: tuple[int, int],
             px: float) -> np.ndarray:
    """Global saturation (vivid colour), exposure and contrast (light), camera shake and sensor
    noise; the finished uint8 pixels."""
    w, h = size
    gray = (img @ _LUMA)[..., None]
    img = gray + (img - gray) * (0.15 + 0.6 * (a["vivid_color"] + 1))
    mean = float((img.reshape(-1, 3) @ _LUMA).mean())
    good = (a["light"] + 1) / 2
    shift = (1 - good) * 0.36 * (1.0 if gen.random() < 0.5 else -1.0)
    img = (img - mean) * (0.5 + 0.75 * good) + 0.5 + shift
    # motion blur (−): camera shake blurs everything
    if a["motion_blur"] < -0.1:
        img = ndimage.uniform_filter1d(img, size=1 + int(round(9 * -a["motion_blur"] * px)), axis=1, mode="nearest")
    grain = _sensor_noise(w, h)
    oy, ox = int(gen.integers(0, h)), int(gen.integers(0, w))
    img += grain[oy:oy + h, ox:ox + w]
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def encode_jpeg(pixels: np.ndarray, quality: int) -> bytes:
    """Baseline JPEG bytes (deterministic for the same pixels and quality)."""
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()

"""Input pipeline: crops gathered from the uint8 cache equal plain slicing (with mirroring), the
centre crop is centred, and the decoded cache is written once and reused."""

import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from aadb_toolkit.models import pipeline

from aadb_toolkit.errors import InputError
from aadb_toolkit.models.pipeline import CropSampler, load_or_build_cache
from aadb_toolkit.sources import load


def test_gathered_crops_equal_slicing_and_mirroring():
    rng = np.random.default_rng(0)
    pix = rng.integers(0, 256, (5, 12, 12, 3), dtype=np.uint8)
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 0.2)
    cs = CropSampler(torch.from_numpy(pix), 8, mean, std)
    idx = np.array([4, 0, 4])
    oy, ox, fl = np.array([0, 4, 2]), np.array([3, 0, 1]), np.array([False, True, True])
    got = cs.crops(idx, oy, ox, fl).numpy()
    for k in range(3):
        win = pix[idx[k], oy[k]:oy[k] + 8, ox[k]:ox[k] + 8].astype(np.float32) / 255
        if fl[k]:
            win = win[:, ::-1]
        want = ((win - np.array(mean)) / np.array(std)).transpose(2, 0, 1)
        np.testing.assert_allclose(got[k], want, rtol=1e-5, atol=1e-5)
    assert cs.centre(2)[0].tolist() == [2, 2]
    oy, ox, _ = cs.random_offsets(np.random.default_rng(1), 1000, False)
    assert oy.min() == 0 and oy.max() == 4 and ox.max() == 4  # every offset of a 12 → 8 crop is reachable


@pytest.mark.parametrize("view", ["contiguous", "strided view"])
def test_window_crops_equal_pixel_indexing_at_every_offset_and_flip(view):
    """The window view's crops (one index per crop) equal per-pixel indexing, bit for bit, at every
    offset with and without mirroring, also from a cache that is a strided view of a larger one."""
    rng = np.random.default_rng(2)
    big = torch.from_numpy(rng.integers(0, 256, (7, 11, 13, 3), dtype=np.uint8))
    pix = big[1::2, :, 2:13].contiguous() if view == "contiguous" else big[1::2, :, 2:13]
    assert pix.shape == (3, 11, 11, 3) and pix.is_contiguous() == (view == "contiguous")
    cs = CropSampler(pix, 7, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    grid = np.array([(i, y, x, f) for i in range(3) for y in range(5) for x in range(5) for f in (0, 1)])
    idx, oy, ox, fl = (torch.as_tensor(grid[:, k]) for k in range(4))
    ar = torch.arange(7)
    cols = torch.where(fl.bool()[:, None], ox[:, None] + 6 - ar, ox[:, None] + ar)
    want = pix[idx[:, None, None], (oy[:, None] + ar)[:, :, None], cols[:, None, :]]
    got = cs.crops_uint8(idx, oy, ox, fl.bool())
    assert torch.equal(got, want)
    floats = cs.crops(idx, oy, ox, fl.bool())
    assert floats.is_contiguous() and torch.equal(floats, (want.permute(0, 3, 1, 2).float() - 127.5) / 63.75)


def test_cache_is_written_once_and_reused(tiny_curated, tmp_path, monkeypatch):
    data = load(tiny_curated)
    ids = list(data.split("test")["image_id"])[:6]
    a = load_or_build_cache(data, ids, 20, cache_dir=tmp_path, progress=False)
    files = list(tmp_path.glob("*.npy"))
    assert a.shape == (6, 20, 20, 3) and a.dtype == np.uint8 and len(files) == 1
    calls = []
    monkeypatch.setattr(pipeline, "decode_warp", lambda *a: calls.append(a))  # a second build would decode
    b = load_or_build_cache(data, ids, 20, cache_dir=tmp_path, progress=False)
    assert np.array_equal(a, b) and calls == []


def test_changed_image_bytes_under_the_same_ids_miss_the_cache(tiny_curated, tmp_path):
    """Issue 9 item 5: re-curated images with the same ids must not reuse the old pixels."""
    data = load(tiny_curated)
    ids = list(data.split("test")["image_id"])[:4]
    a = load_or_build_cache(data, ids, 20, cache_dir=tmp_path, progress=False)
    original = data.read_image_bytes
    buf = io.BytesIO()
    Image.new("RGB", (30, 30), (250, 0, 0)).save(buf, format="JPEG")
    data.read_image_bytes = lambda i: buf.getvalue() if i == ids[0] else original(i)
    b = load_or_build_cache(data, ids, 20, cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.glob("*.npy"))) == 2
    assert not np.array_equal(a[0], b[0]) and np.array_equal(a[1:], b[1:])
    assert b[0, ..., 0].mean() > 200  # the new red image, not the cached one


@pytest.mark.parametrize("orientation, size", [(1, (80, 40)), (6, (80, 40)), (8, (64, 48))])
def test_dct_scaled_decode_keeps_orientation_and_matches_a_full_decode(orientation, size):
    """Image.draft decodes JPEGs at 1/2..1/8 scale; EXIF rotation and the warp must come out as
    with a full-size decode (up to resampling)."""
    from aadb_toolkit.sources import AADBData

    w, h = size[0] * 8, size[1] * 8
    arr = np.zeros((h, w, 3), np.uint8)
    arr[: h // 2, :, 0] = 255  # red top half, blue bottom half, green left quarter
    arr[h // 2:, :, 2] = 255
    arr[:, : w // 4, 1] = 255
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=95, exif=exif.tobytes())
    raw = buf.getvalue()
    import pandas as pd

    data = AADBData(images=pd.DataFrame({"image_id": ["x"], "split": ["test"]}), ratings=None, origin="mem",
                    read_image_bytes=lambda i: raw)
    got = pipeline.decode_warp(data, "x", 32).astype(float)
    full = ImageOps.exif_transpose(Image.open(io.BytesIO(raw))).convert("RGB").resize((32, 32), Image.BILINEAR)
    np.testing.assert_allclose(got, np.asarray(full, float), atol=40)
    assert np.abs(got - np.asarray(full, float)).mean() < 6


def test_undecodable_image_is_named(tiny_curated):
    data = load(tiny_curated)
    bad = data.split("test")["image_id"].iloc[0]
    data.read_image_bytes = lambda i: b"not a jpeg"
    with pytest.raises(InputError, match=bad):
        load_or_build_cache(data, [bad], 20, progress=False)

"""Input pipeline: crops gathered from the uint8 cache equal plain slicing (with mirroring), the
centre crop is centred, and the decoded cache is written once and reused."""

import numpy as np
import pytest
import torch

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


def test_cache_is_written_once_and_reused(tiny_curated, tmp_path):
    data = load(tiny_curated)
    ids = list(data.split("test")["image_id"])[:6]
    a = load_or_build_cache(data, ids, 20, cache_dir=tmp_path, progress=False)
    files = list(tmp_path.glob("*.npy"))
    assert a.shape == (6, 20, 20, 3) and a.dtype == np.uint8 and len(files) == 1
    calls = []
    data.read_image_bytes = lambda i: calls.append(i)  # a second build would call this
    b = load_or_build_cache(data, ids, 20, cache_dir=tmp_path, progress=False)
    assert np.array_equal(a, b) and calls == []


def test_undecodable_image_is_named(tiny_curated):
    data = load(tiny_curated)
    bad = data.split("test")["image_id"].iloc[0]
    data.read_image_bytes = lambda i: b"not a jpeg"
    with pytest.raises(InputError, match=bad):
        load_or_build_cache(data, [bad], 20, progress=False)

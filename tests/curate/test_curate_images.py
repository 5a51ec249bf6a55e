"""Image checks decode each file fully and describe what they find."""

from __future__ import annotations


import pytest
from curate_release_writer import jpeg
from PIL import Image

from aadb_toolkit.curate._images import check_image, check_images, list_image_files


def _write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


def _exif(value):
    e = Image.Exif()
    e[0x0112] = value
    return e.tobytes()


@pytest.mark.parametrize("data, flags, size", [
    (jpeg(30, 20), "", (30, 20)),
    (jpeg(30, 20, exif=_exif(8)), "exif_rotated", (20, 30)),
    (jpeg(30, 20, exif=_exif(3)), "exif_rotated", (30, 20)),
    (jpeg(30, 20, mode="L"), "grayscale", (30, 20)),
    (jpeg(30, 20, fmt="PNG", mode="RGBA", colour=(1, 2, 3, 4)), "alpha;png_bytes", (30, 20)),
    (jpeg(30, 20, fmt="GIF"), "palette;gif_bytes", (30, 20)),
])
def test_decodable_images(tmp_path, data, flags, size):
    row = check_image("x_b.jpg", _write(tmp_path, "x_b.jpg", data))
    assert row["ok"] and row["flags"] == flags and (row["width"], row["height"]) == size


def test_undecodable_files(tmp_path):
    good = jpeg(64, 48, colour=(200, 10, 10))
    for name, data in {"empty.jpg": b"", "text.jpg": b"not an image", "half.jpg": good[: len(good) // 2]}.items():
        row = check_image(name, _write(tmp_path, name, data))
        assert not row["ok"] and row["error"], name
    assert check_image("gone.jpg", str(tmp_path / "gone.jpg"))["error"].startswith("FileNotFoundError")


def test_parallel_check_matches_serial(tmp_path):
    folder = tmp_path / "datasetImages_originalSize"
    folder.mkdir()
    for i in range(12):
        (folder / f"im{i:02d}.jpg").write_bytes(jpeg(10 + i, 8) if i != 5 else b"broken")
    (folder / ".DS_Store").write_bytes(b"x")
    files, ignored = list_image_files(tmp_path)
    assert ignored == [("datasetImages_originalSize/.DS_Store", "hidden_file")] and len(files) == 12
    serial = check_images(tmp_path, files, workers=1, progress=False)
    parallel = check_images(tmp_path, files, workers=2, progress=False)
    assert serial.equals(parallel)
    assert serial["ok"].sum() == 11 and serial.loc[5, "image_id"] == "im05.jpg" and not serial.loc[5, "ok"]
    assert serial["width"].tolist()[:3] == [10, 11, 12]

"""The synthetic AVA with images (``aadb simulate-ava``): layout, determinism, the marker, and that
what was planted (categories, styles, quality) is recoverable from the labels and visible in pixels."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from aadb_toolkit import ava
from aadb_toolkit.cli import main
from aadb_toolkit.errors import InputError
from aadb_toolkit.simulate import write_synthetic_ava
from aadb_toolkit.simulate._ava import TRUTH_FILE, apply_styles


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return write_synthetic_ava(tmp_path_factory.mktemp("ava") / "AVA_dataset", 400, seed=11, image_size=(48, 36))


@pytest.fixture(scope="module")
def truth(synth):
    return pd.read_csv(synth / TRUTH_FILE, dtype={"image_id": str}, keep_default_na=False)


def test_layout_of_the_real_distribution(synth):
    for rel in (ava.AVA_TXT, ava.TAGS_TXT, ava.CHALLENGES_TXT, ava.STANDARD_TEST_LIST, f"{ava.STYLE_DIR}/styles.txt",
                f"{ava.STYLE_DIR}/train.jpgl", f"{ava.STYLE_DIR}/train.lab", f"{ava.STYLE_DIR}/test.jpgl",
                f"{ava.STYLE_DIR}/test.multilab", ava.SYNTHETIC_MARKER):
        assert (synth / rel).is_file(), rel
    data = ava.read_ava_folder(synth)
    files = sorted(p.stem for p in (synth / ava.IMAGE_DIR).glob("*.jpg"))
    assert files == sorted(data.table["image_id"])
    with Image.open(synth / ava.IMAGE_DIR / f"{files[0]}.jpg") as im:
        assert im.format == "JPEG" and im.size in {(48, 36), (36, 48)}
    # about 200 votes per image on the 10-point scale
    assert data.table["n_votes"].between(150, 250).all()
    assert 4.5 < data.table["mean_score"].mean() < 6.3
    assert json.loads((synth / ava.SYNTHETIC_MARKER).read_text())["synthetic"] is True
    assert "NOT the AVA data set" in (synth / "README.txt").read_text()


def test_deterministic_by_seed(tmp_path):
    a = write_synthetic_ava(tmp_path / "a", 30, seed=3, image_size=(32, 24))
    b = write_synthetic_ava(tmp_path / "b", 30, seed=3, image_size=(32, 24))
    c = write_synthetic_ava(tmp_path / "c", 30, seed=4, image_size=(32, 24))
    def files(root):
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    fa, fb = files(a), files(b)
    assert fa == fb
    assert fa["AVA.txt"] != files(c)["AVA.txt"]


def test_planted_categories_and_styles_are_in_the_labels(synth, truth):
    data = ava.load_ava_source(synth)
    images = data.images.set_index("image_id").loc[truth["image_id"]]
    planted = truth["category"].to_numpy()
    got = images[ava.CATEGORY_COLUMN].to_numpy()
    assert np.array_equal(np.isnan(got), planted < 0)
    assert np.array_equal(got[planted >= 0], planted[planted >= 0])
    assert len(set(planted[planted >= 0])) == 8
    labelled = images[list(ava.STYLE_COLUMNS)].notna().all(axis=1).to_numpy()
    has_style = (truth["styles"] != "").to_numpy()
    assert labelled.sum() > 20 and np.array_equal(labelled, has_style)
    for row, styles in zip(images[list(ava.STYLE_COLUMNS)].to_numpy()[labelled], truth["styles"][has_style]):
        assert {ava.STYLE_NAMES[k] for k in np.flatnonzero(row == 1)} == set(styles.split(";"))


def test_planted_quality_drives_the_mean_vote(synth, truth):
    table = ava.read_ava_folder(synth).table.set_index("image_id").loc[truth["image_id"]]
    rho = pd.Series(truth["latent_quality"].to_numpy()).corr(pd.Series(table["mean_score"].to_numpy()),
                                                            method="spearman")
    assert 0.6 < rho < 0.95  # driven by the planted quality, with a share no pixel shows


def test_styles_are_visible_in_the_pixels():
    rng = np.random.default_rng(0)
    from aadb_toolkit.simulate._images import draw_photo

    plain = [draw_photo("landscape", np.zeros(11), 0.3, np.random.default_rng(k), (64, 48)) for k in range(6)]
    def luma(p):
        return (p.astype(float) / 255.0) @ np.array([0.299, 0.587, 0.114])
    for p in plain:
        base = luma(p)
        white = luma(apply_styles(p, ("Light_On_White",), rng))
        assert white.mean() > base.mean() + 0.1
        sil = luma(apply_styles(p, ("Silhouettes",), rng))
        assert (sil < 0.06).mean() > 0.3 > (base < 0.06).mean()
        neg = luma(apply_styles(p, ("Negative_Image",), rng))
        assert np.corrcoef(neg.ravel(), base.ravel())[0, 1] < -0.9
        grain = luma(apply_styles(p, ("Image_Grain",), rng))
        assert np.abs(np.diff(grain, axis=1)).mean() > 2 * np.abs(np.diff(base, axis=1)).mean()
        soft = luma(apply_styles(p, ("Soft_Focus",), rng))
        assert np.abs(np.diff(soft, axis=1)).mean() < np.abs(np.diff(base, axis=1)).mean()


def test_refuses_to_replace_a_folder_it_did_not_write(tmp_path):
    mine = tmp_path / "mine"
    (mine / "x").mkdir(parents=True)
    (mine / "precious.txt").write_text("keep")
    with pytest.raises(InputError):  # not a synthetic AVA the toolkit wrote
        write_synthetic_ava(mine, 20, seed=0, images=False)
    assert (mine / "precious.txt").read_text() == "keep"
    out = write_synthetic_ava(tmp_path / "ours", 20, seed=0, images=False)
    write_synthetic_ava(out, 25, seed=1, images=False)  # its own output is replaced whole
    assert len(ava.read_ava_folder(out).table) == 25 and not (out / ava.IMAGE_DIR).exists()


def test_cli(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["simulate-ava", "--out", str(out), "--images", "20", "--seed", "2", "--image-size", "32x24"]) == 0
    text = capsys.readouterr().out
    assert "test instrument" in text and "20 images" in text
    assert len(list((out / ava.IMAGE_DIR).glob("*.jpg"))) == 20
    assert main(["simulate-ava", "--out", str(tmp_path / "t"), "--images", "3"]) == 1
    err = capsys.readouterr().err
    assert "images" in err and "Traceback" not in err
    (tmp_path / "u").mkdir()
    (tmp_path / "u" / "f").write_text("x")
    assert main(["simulate-ava", "--out", str(tmp_path / "u"), "--images", "20"]) == 1
    err = capsys.readouterr().err
    assert str(tmp_path / "u") in err and "Traceback" not in err
    assert (tmp_path / "u" / "f").read_text() == "x"

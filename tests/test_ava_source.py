"""AVA as a data source: the synthetic AVA round-trips through the readers into the data model,
and missing, empty or corrupt image files are reported with their ids."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from ava_fixtures import make_small_ava

from aadb_toolkit import ava, sources
from aadb_toolkit.errors import InputError, SourceError
from aadb_toolkit.models import pipeline
from aadb_toolkit.simulate._ava import TRUTH_FILE


@pytest.fixture(scope="module")
def ava_root(tmp_path_factory):
    return make_small_ava(tmp_path_factory.mktemp("ava"))


def test_round_trip_into_the_data_model(ava_root):
    data = sources.load(ava_root)  # recognised by its AVA.txt
    raw = ava.read_ava_folder(ava_root)
    img = data.images
    assert list(img["image_id"]) == list(raw.table["image_id"])
    assert set(data.split("test")["image_id"]) == set(raw.test_ids)
    validation = {i for i in raw.table["image_id"] if i not in set(raw.test_ids) and ava.is_validation_id(i)}
    assert set(data.split("validation")["image_id"]) == validation
    assert set(data.split("train")["image_id"]) == set(raw.table["image_id"]) - set(raw.test_ids) - validation
    assert np.allclose(img["score_mean"], raw.table["mean_score"])
    assert np.allclose(img["score"], (raw.table["mean_score"] - 1) / 9) and img["score"].between(0, 1).all()
    assert (img["n_ratings"] == raw.table["n_votes"]).all()
    assert data.ratings.empty and {"image_id", "rater_id", "score"} <= set(data.ratings.columns)
    styles = img[list(ava.STYLE_COLUMNS)]
    assert set(np.unique(styles.to_numpy()[~np.isnan(styles.to_numpy())])) <= {0.0, 1.0}
    assert styles.isna().all(axis=1).sum() > len(img) / 2  # most images have no style labels
    assert data.origin == str(ava_root) and ava.is_synthetic_ava(ava_root)
    prov = data.provenance
    assert (prov.kind, prov.synthetic, prov.test_list, prov.dataset_label) == ("ava", True, "generic_test",
                                                                                "synthetic-ava")
    # the ava protocol's ground truth is the mean vote of AVA.txt
    from aadb_toolkit.protocols.ava_protocol import ground_truth

    gt = ground_truth(data, "test")
    assert np.allclose(raw.table.set_index("image_id").loc[gt.index, "mean_score"], gt)
    im = data.open_image(img["image_id"].iloc[0])
    assert im.mode == "RGB" and im.size in {(72, 54), (54, 72)}
    assert data.image_bytes(img["image_id"].iloc[0])[:2] == b"\xff\xd8"


def test_style_train_list_is_one_hot_and_test_list_multilabel(ava_root):
    data = sources.load(ava_root)
    s = data.images.set_index("image_id")[list(ava.STYLE_COLUMNS)]
    lists = ava.read_style_lists(ava_root / ava.STYLE_DIR)
    tr = s.loc[lists.train_ids].to_numpy()
    assert (tr.sum(axis=1) == 1).all()
    assert list(np.argmax(tr, axis=1) + 1) == list(lists.train_labels)
    assert np.array_equal(s.loc[lists.test_ids].to_numpy(), lists.test_labels.astype(float))


def test_categories_match_tags_by_name(tmp_path):
    table = pd.DataFrame({"tag1": [3, 0, 7, 2], "tag2": [0, 5, 3, 0]})
    tags = {2: "Abstract", 3: "Food_and_Drink", 5: "portraiture", 7: "Black and White"}
    got = ava.category_codes(table, tags)
    want = [ava.CONTENT_CATEGORIES.index("Food and Drink"), ava.CONTENT_CATEGORIES.index("Portraiture"),
            ava.CONTENT_CATEGORIES.index("Food and Drink"), np.nan]
    assert np.allclose(got, want, equal_nan=True)


def _copy(ava_root, tmp_path):
    root = tmp_path / "ava"
    shutil.copytree(ava_root, root)
    return root


def test_missing_and_empty_images_are_reported_with_their_ids(ava_root, tmp_path):
    root = _copy(ava_root, tmp_path)
    ids = ava.read_ava_folder(root).table["image_id"].tolist()
    (root / ava.IMAGE_DIR / f"{ids[3]}.jpg").unlink()
    (root / ava.IMAGE_DIR / f"{ids[5]}.jpg").write_bytes(b"")
    with pytest.raises(InputError) as exc:
        sources.load(root)
    msg = str(exc.value)
    assert f"1 image(s) listed in AVA.txt have no file images/<id>.jpg: ids {ids[3]}" in msg
    assert f"empty (corrupt): ids {ids[5]}" in msg
    shutil.rmtree(root / ava.IMAGE_DIR)
    with pytest.raises(SourceError, match="no images folder"):
        sources.load(root)


def test_a_folder_without_the_generator_marker_is_not_synthetic(ava_root, tmp_path):
    root = _copy(ava_root, tmp_path)
    (root / ava.SYNTHETIC_MARKER).unlink()
    prov = sources.load(root).provenance
    assert not prov.synthetic and prov.dataset_label == "ava"


def test_stray_image_files_are_logged(ava_root, tmp_path, caplog):
    root = _copy(ava_root, tmp_path)
    shutil.copy(next((root / ava.IMAGE_DIR).glob("*.jpg")), root / ava.IMAGE_DIR / "99999999.jpg")
    with caplog.at_level("WARNING"):
        sources.load(root)
    assert "1 image file(s) have no line in AVA.txt" in caplog.text and "99999999" in caplog.text


def test_a_corrupt_image_is_reported_with_its_id_when_decoded(ava_root, tmp_path):
    root = _copy(ava_root, tmp_path)
    data = sources.load(root)
    victim = data.split("train")["image_id"].iloc[2]
    (root / ava.IMAGE_DIR / f"{victim}.jpg").write_bytes(b"\xff\xd8not a jpeg at all")
    with pytest.raises(InputError) as exc:
        pipeline.load_or_build_cache(data, list(data.split("train")["image_id"]), 32, workers=1, progress=False)
    assert victim in str(exc.value)


def test_the_synthetic_truth_is_beside_not_inside_the_tables(ava_root):
    data = sources.load(ava_root)
    truth = pd.read_csv(ava_root / TRUTH_FILE, dtype={"image_id": str})
    assert "latent_quality" in truth and "latent_quality" not in data.images


def test_a_link_leading_out_of_the_ava_folder_is_never_read(ava_root, tmp_path):
    """Review 2026-12-04: an image file that was a symbolic link to a file outside the AVA folder
    (the rater key, here) was read and returned as the photo's bytes."""
    root = _copy(ava_root, tmp_path)
    secret = tmp_path / "outside" / "rater.key"
    secret.parent.mkdir()
    secret.write_text("4f62ae8a67" * 6 + "\n")
    ids = ava.read_ava_folder(root).table["image_id"].tolist()
    target = root / ava.IMAGE_DIR / f"{ids[2]}.jpg"
    target.unlink()
    target.symlink_to(secret)
    with pytest.raises(InputError, match="have no file") as exc:
        sources.load(root)  # a link leading out counts as no file at all
    assert "4f62ae8a67" not in str(exc.value)
    loaded = ava.load_ava_source(root, check_files=False)
    with pytest.raises(InputError, match="outside the AVA folder") as exc:
        loaded.read_image_bytes(ids[2])
    assert "4f62ae8a67" not in str(exc.value)
    (root / ava.TAGS_TXT).unlink()
    (root / ava.TAGS_TXT).symlink_to(secret)
    with pytest.raises(SourceError, match="leading outside the AVA folder"):
        ava.read_ava_folder(root)


def test_a_broken_link_among_the_images_is_a_missing_file_not_a_crash(ava_root, tmp_path):
    """Review 2026-12-04: a dangling symbolic link in images/ raised FileNotFoundError (an internal
    error), even as a stray file with no line in AVA.txt."""
    root = _copy(ava_root, tmp_path)
    (root / ava.IMAGE_DIR / "99999999.jpg").symlink_to(tmp_path / "nowhere.jpg")
    sources.load(root)  # a stray: logged, not read
    ids = ava.read_ava_folder(root).table["image_id"].tolist()
    listed = root / ava.IMAGE_DIR / f"{ids[4]}.jpg"
    listed.unlink()
    listed.symlink_to(tmp_path / "nowhere.jpg")
    with pytest.raises(InputError, match=f"have no file images/<id>.jpg: ids {ids[4]}"):
        sources.load(root)


@pytest.mark.parametrize("linked", ["styles.txt", "train.jpgl", "test.multilab", "."])
def test_a_style_list_that_leads_out_of_the_ava_folder_is_never_read(ava_root, tmp_path, linked):
    """Review 2026-12-04 (afternoon): style_image_lists/styles.txt linked to the rater key was read,
    and its first line quoted in the error ("expected '<id> <name>', found '903e15cd…'")."""
    root = _copy(ava_root, tmp_path)
    outside = tmp_path / "outside"
    shutil.copytree(root / ava.STYLE_DIR, outside)
    (outside / "styles.txt").write_text("secret7e57a1b2c3d4e5f60718293a\n")
    target = root / ava.STYLE_DIR / linked
    if linked == ".":
        shutil.rmtree(target)
        target.symlink_to(outside, target_is_directory=True)
    else:
        target.unlink()
        target.symlink_to(outside / linked)
    with pytest.raises(SourceError, match="outside the AVA folder") as exc:
        ava.images_table(ava.read_ava_folder(root))
    assert "secret" not in str(exc.value)


@pytest.mark.parametrize("name", [ava.TAGS_TXT, ava.STANDARD_TEST_LIST, f"{ava.STYLE_DIR}/styles.txt"])
def test_an_ava_file_that_is_the_rater_key_is_refused_unquoted(ava_root, tmp_path, monkeypatch, name):
    """Review 2026-12-04 (afternoon): the configured key (a custom, non-hex secret) copied or linked
    as tags.txt or the test list was parsed and 31 characters of it quoted ("expected '<id>
    <name>', found 'CorrectHorse-Battery-Staple-MyS…'")."""
    root = _copy(ava_root, tmp_path)
    key = tmp_path / "keys" / "custom.key"
    key.parent.mkdir()
    key.write_text("CorrectHorse-Battery-Staple-MySecret-2024\n")
    monkeypatch.setenv("AADB_RATER_KEY_FILE", str(key))
    (root / name).unlink()
    shutil.copyfile(key, root / name)
    with pytest.raises(InputError, match="rater key") as exc:
        ava.images_table(ava.read_ava_folder(root))
    assert "CorrectHorse" not in str(exc.value)

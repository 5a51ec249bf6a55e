"""AVA readers, on hand-written files and on the synthetic AVA."""

from __future__ import annotations

import numpy as np
import pytest

from aadb_toolkit import ava, sources
from aadb_toolkit.errors import InputError, SourceError
from aadb_toolkit.simulate import write_synthetic_ava


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_synthetic_ava(tmp_path_factory.mktemp("ava") / "AVA_dataset", 600, seed=1, images=False)


def test_ava_txt_columns_and_mean_vote(tmp_path):
    p = tmp_path / "AVA.txt"
    p.write_text("1 953619 0 1 5 17 38 36 15 6 5 1 1 22 1396\n2 953958 10 7 15 26 26 21 10 8 1 2 15 0 1396\n")
    t = ava.read_ava_txt(p)
    assert list(t.columns) == list(ava.AVA_COLUMNS)
    assert t["image_id"].tolist() == ["953619", "953958"]
    assert t.loc[0, "n_votes"] == 124 and t.loc[0, "tag2"] == 22 and t.loc[1, "tag2"] == 0
    assert t.loc[0, "mean_score"] == pytest.approx(np.dot(np.arange(1, 11), [0, 1, 5, 17, 38, 36, 15, 6, 5, 1]) / 124)
    assert t.loc[1, "challenge_id"] == 1396


def test_malformed_ava_txt_names_every_bad_line(tmp_path):
    p = tmp_path / "AVA.txt"
    p.write_text("1 11 0 1 5 17 38 36 15 6 5 1 1 22 1396\n2 12 0 1 5 17 38 36 15 6 5 1 1 22\n"
                 "3 13 0 1 5 x 38 36 15 6 5 1 1 22 1396\n4 14 0 1 5 1 38 36 15 6 5 1 1 22 -3\n")
    with pytest.raises(InputError) as exc:
        ava.read_ava_txt(p)
    msg = str(exc.value)
    assert "3 malformed line(s)" in msg and "line 2: expected 15 fields" in msg and "line 3:" in msg and "line 4:" in msg
    p.write_text("1 11 0 1 5 17 38 36 15 6 5 1 1 22 1396\n2 11 0 1 5 17 38 36 15 6 5 1 1 22 1396\n")
    with pytest.raises(InputError, match="duplicated image id"):
        ava.read_ava_txt(p)


def test_id_name_files_and_lists(tmp_path):
    (tmp_path / "tags.txt").write_text("1 Abstract\n2 Black and White\n\n")
    assert ava.read_id_names(tmp_path / "tags.txt") == {1: "Abstract", 2: "Black and White"}
    (tmp_path / "bad.txt").write_text("1 Abstract\nx Nope\n")
    with pytest.raises(InputError, match="row 2"):
        ava.read_id_names(tmp_path / "bad.txt")
    (tmp_path / "l.jpgl").write_text("12\n 13 \n\n")
    assert ava.read_id_list(tmp_path / "l.jpgl") == ["12", "13"]
    (tmp_path / "d.jpgl").write_text("12\n12\n")
    with pytest.raises(InputError, match="duplicated"):
        ava.read_id_list(tmp_path / "d.jpgl")


def test_synthetic_folder_reads_back_consistently(root):
    files = ava.read_ava_folder(root)
    assert len(files.table) == 600 and files.tags[1] == "Animals" and files.tags[9] == "synthetic_tag_09"
    assert len(files.challenges) > 0
    data = sources.load(root, images=False)  # the one data model, with provenance
    assert data.provenance.kind == "ava" and data.provenance.synthetic
    test, val, train = (set(data.split(s)["image_id"]) for s in ("test", "validation", "train"))
    assert test == set(files.test_ids) and val and not (test & (train | val))
    assert all(ava.is_validation_id(i) for i in val) and not any(ava.is_validation_id(i) for i in train)
    assert data.split("test")["score_mean"].between(1, 10).all()
    styles = ava.read_style_lists(root / ava.STYLE_DIR)
    assert len(styles.styles) == 14 and styles.test_labels.shape == (len(styles.test_ids), 14)
    assert len(styles.train_labels) == len(styles.train_ids)
    again = sources.load(root, images=False)
    assert ava.fingerprint(data, "test") == ava.fingerprint(again, "test") != ava.fingerprint(data, "validation")


def test_generator_is_deterministic(tmp_path):
    a = write_synthetic_ava(tmp_path / "a", 50, seed=3, images=False)
    b = write_synthetic_ava(tmp_path / "b", 50, seed=3, images=False)
    c = write_synthetic_ava(tmp_path / "c", 50, seed=4, images=False)
    assert (a / "AVA.txt").read_bytes() == (b / "AVA.txt").read_bytes() != (c / "AVA.txt").read_bytes()


def test_validation_membership_depends_on_the_id_only():
    ids = [str(i) for i in range(20000)]
    share = np.mean([ava.is_validation_id(i) for i in ids])
    assert 0.015 < share < 0.025
    assert ava.is_validation_id("12345") == ava.is_validation_id("12345")


def test_missing_files_and_unknown_test_ids(tmp_path, root):
    with pytest.raises(SourceError, match="not an AVA folder"):
        ava.read_ava_folder(tmp_path)
    lst = tmp_path / "test.jpgl"
    lst.write_text("999999999\n")
    with pytest.raises(InputError, match="not in AVA.txt"):
        ava.read_ava_folder(root, test_list=lst)
    bad_style = tmp_path / "style"
    bad_style.mkdir()
    (bad_style / "styles.txt").write_text("1 HDR\n")
    (bad_style / "train.jpgl").write_text("1\n2\n")
    (bad_style / "train.lab").write_text("1\n")
    (bad_style / "test.jpgl").write_text("")
    (bad_style / "test.multilab").write_text("")
    with pytest.raises(InputError, match="1 labels for 2 images"):
        ava.read_style_lists(bad_style)

"""The data model: one validation at construction, provenance, the shared ratings validator,
the leave-one-out mean and the fingerprint helper."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from aadb_toolkit import sources
from aadb_toolkit.data import (AADBData, Provenance, check_ratings, leave_one_out_mean, sha256_fingerprint)
from aadb_toolkit.errors import InputError


def _tables():
    images = pd.DataFrame({"image_id": ["a", "b", "c"], "split": ["train", "test", "test"],
                           "score_mean": [2.0, 3.0, 4.0]})
    ratings = pd.DataFrame({"image_id": ["a", "a", "b", "c"], "rater_id": ["r1", "r2", "r1", "r1"],
                            "batch_id": ["b0"] * 4, "score": [2.0, 3.0, 3.0, 4.0]})
    return images, ratings


def _data(images, ratings, **kw):
    return AADBData(images=images, ratings=ratings, origin="mem", read_image_bytes=lambda i: b"", **kw)


def test_aadbdata_is_importable_from_sources_and_has_default_provenance():
    assert sources.AADBData is AADBData
    d = _data(*_tables())
    assert d.provenance == Provenance(origin="mem", kind="memory", synthetic=False, test_list=None)
    assert d.provenance.dataset_label == "aadb"
    assert Provenance("x", synthetic=True).dataset_label == "synthetic-aadb"


def test_construction_validates_ids_splits_and_ratings_once():
    images, ratings = _tables()
    dup = images.copy()
    dup.loc[2, "image_id"] = "a"
    with pytest.raises(InputError, match="more than once") as err:
        _data(dup, ratings)
    assert err.value.row == 2 and err.value.field == "image_id"
    bad = images.copy()
    bad.loc[1, "split"] = "holdout"
    with pytest.raises(InputError, match="holdout") as err:
        _data(bad, ratings)
    assert err.value.row == 1 and err.value.field == "split"
    with pytest.raises(InputError, match="refer to images not in the images table"):
        _data(images.iloc[1:], ratings)
    for col in ("rater_id", "batch_id", "score"):
        with pytest.raises(InputError, match=col):
            _data(images, ratings.drop(columns=col))
    empty = _data(images, pd.DataFrame())  # no ratings (e.g. AVA): an empty table with the usual columns
    assert len(empty.ratings) == 0 and "rater_id" in empty.ratings.columns


def test_check_ratings_one_validator():
    _, ratings = _tables()
    out = check_ratings(ratings)
    assert list(out.columns) == ["image_id", "rater_id", "score"] and out["score"].dtype == float
    with pytest.raises(InputError, match="more than once"):
        check_ratings(pd.concat([ratings, ratings.iloc[[0]]], ignore_index=True))
    with pytest.raises(InputError, match="twice in batch"):
        check_ratings(pd.concat([ratings, ratings.iloc[[0]]], ignore_index=True),
                      columns=("batch_id", "rater_id", "image_id", "score"))
    blank = ratings.copy()
    blank.loc[1, "score"] = np.nan
    with pytest.raises(InputError, match="row 1"):
        check_ratings(blank)
    assert np.isnan(check_ratings(blank, missing_scores="keep")["score"].iloc[1])
    text = ratings.astype({"score": object})
    text.loc[2, "score"] = "five"
    with pytest.raises(InputError, match="row 2"):
        check_ratings(text, missing_scores="keep")
    inf = ratings.copy()
    inf.loc[3, "score"] = np.inf
    with pytest.raises(InputError, match="infinite"):
        check_ratings(inf, missing_scores="keep")
    with pytest.raises(InputError, match="no rows"):
        check_ratings(ratings.iloc[:0])


def test_leave_one_out_mean_by_hand():
    loo = leave_one_out_mean(pd.Series(["a", "a", "a", "b"]), np.array([1.0, 2.0, 6.0, 5.0]))
    np.testing.assert_allclose(loo[:3], [4.0, 3.5, 1.5])
    assert np.isnan(loo[3])


def test_sha256_fingerprint_one_spelling():
    assert sha256_fingerprint(b"abc") == "sha256:" + hashlib.sha256(b"abc").hexdigest()
    assert sha256_fingerprint("abc") == sha256_fingerprint([b"a", "bc"])


def test_ids_compare_as_text_in_the_duplicate_check():
    ratings = pd.DataFrame({"image_id": ["a", "a"], "rater_id": pd.Series([1, "1"], dtype=object),
                            "score": [2.0, 3.0]})
    with pytest.raises(InputError, match="more than once") as err:
        check_ratings(ratings)
    assert err.value.row == 1
    blank_first = ratings.assign(score=[np.nan, 3.0])  # a blank score is no rating: no duplicate
    assert len(check_ratings(blank_first, missing_scores="keep")) == 2


def test_one_spearman_agrees_with_scipy_on_ties_and_beyond_the_exact_range(monkeypatch):
    from scipy import stats

    from aadb_toolkit import _ranks

    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 5, 300).astype(float), rng.normal(size=300)
    ref = stats.spearmanr(x, y).statistic
    assert _ranks.spearman(x, y) == (pytest.approx(ref, abs=1e-14), "ok")
    monkeypatch.setattr(_ranks, "_EXACT_DOT_MAX_N", 10)  # the float path that very long vectors take
    assert _ranks.spearman(x, y)[0] == pytest.approx(ref, abs=1e-12)
    assert _ranks.spearman(np.ones(20), y[:20]) == (pytest.approx(np.nan, nan_ok=True), "constant_x")
    assert _ranks.spearman(x[:2], y[:2]) == (pytest.approx(np.nan, nan_ok=True), "too_few")


def test_every_table_error_quotes_file_content_in_at_most_32_characters():
    """Review 2026-12-04: the data tables' errors copied values out whole with !r (a 121-character
    split value, image ids, scores), against the one quoting rule (errors.quote, 32 characters)."""
    long = "x" * 90 + "\x1b[31m"
    images, ratings = _tables()
    cases = []
    dup = images.copy()
    dup["image_id"] = [long, long, "c"]
    cases.append((dup, ratings.assign(image_id=[long, long, long, "c"])))
    bad = images.copy()
    bad.loc[1, "split"] = long
    cases.append((bad, ratings))
    cases.append((images, ratings.assign(image_id=["a", "a", "b", long])))
    for imgs, rts in cases:
        with pytest.raises(InputError) as err:
            _data(imgs, rts)
        assert "x" * 33 not in str(err.value) and "\x1b" not in str(err.value), str(err.value)
    with pytest.raises(InputError, match="score is") as err:
        check_ratings(ratings.assign(score=[2.0, 3.0, 3.0, long]))
    assert "x" * 33 not in str(err.value) and "\x1b" not in str(err.value), str(err.value)
    twice = ratings.assign(image_id=["a", "a", long, long], rater_id=["r1", "r2", long, long], batch_id=long)
    for columns in (("rater_id", "image_id", "score"), ("batch_id", "rater_id", "image_id", "score")):
        with pytest.raises(InputError, match="rated image") as err:
            check_ratings(twice, columns=columns)
        assert "x" * 33 not in str(err.value) and "\x1b" not in str(err.value), str(err.value)


def test_pandas_metadata_nested_too_deeply_is_a_source_error(tmp_path):
    """Review 2026-12-04 (afternoon): pyarrow's to_pandas raised RecursionError on a parquet file
    whose pandas metadata is nested too deeply (rc 70 in every command that reads it)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from aadb_toolkit.data import read_parquet
    from aadb_toolkit.errors import SourceError

    table = pa.table({"a": [1, 2]})
    path = tmp_path / "t.parquet"
    pq.write_table(table.replace_schema_metadata({b"pandas": b"[" * 100_000}), path)
    with pytest.raises(SourceError, match="pandas metadata"):
        read_parquet(path)

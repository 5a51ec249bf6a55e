import pytest

from aadb_toolkit import schema, sources
from aadb_toolkit.errors import SourceError


def test_load_curated_tables_and_images(tiny_curated):
    data = sources.load(tiny_curated)
    assert list(data.images.columns) == list(schema.IMAGE_COLUMNS)
    assert list(data.ratings.columns) == list(schema.RATING_COLUMNS)
    assert len(data.images) == 200 and len(data.ratings) == 1000
    first = data.images["image_id"].iloc[0]
    im = data.open_image(first)
    assert im.mode == "RGB" and im.size == (48, 48)
    assert data.image_bytes(first)[:2] == b"\xff\xd8"
    assert set(data.images["split"]) == set(schema.SPLITS)


def test_fingerprint_changes_with_scores(tiny_curated):
    data = sources.load(tiny_curated)
    fp = data.fingerprint("test")
    test = data.split("test").copy()
    assert sources.fingerprint_images(test) == fp
    test.loc[0, "score_mean"] += 0.2
    assert sources.fingerprint_images(test) != fp


def test_unknown_source_is_a_clear_error(tmp_path):
    with pytest.raises(SourceError, match="not a curated folder"):
        sources.load(tmp_path)
    f = tmp_path / "x.txt"
    f.write_text("x")
    with pytest.raises(SourceError, match="is a file"):
        sources.load(f)
    with pytest.raises(SourceError, match="no such folder"):
        sources.load(tmp_path / "nope" / "deeper" / "x")

import json
import shutil

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


def test_curated_release_with_planted_truth_is_synthetic_in_provenance(tiny_curated, tmp_path):
    from aadb_toolkit.simulate import truth_dir_for

    root = tmp_path / "sim"
    shutil.copytree(tiny_curated.parent, root)
    manifest = json.loads((root / "curated/manifest.json").read_text())
    manifest["release_root"] = str(root / "release")
    (root / "curated/manifest.json").write_text(json.dumps(manifest))
    assert not sources.load(root / "curated").provenance.synthetic
    truth_dir_for(root / "release").mkdir()
    assert sources.load(root / "curated").provenance.synthetic


def test_provenance_of_curated_and_published_sources(tiny_curated, tmp_path):
    from aadb_toolkit import hub

    data = sources.load(tiny_curated)
    assert data.provenance.kind == "curated" and data.provenance.origin == str(tiny_curated)
    assert data.provenance.test_list is None
    root = tmp_path / "syn"
    shutil.copytree(tiny_curated.parent, root)
    manifest = json.loads((root / "curated/manifest.json").read_text())
    (root / "curated/manifest.json").write_text(json.dumps({**manifest, "synthetic": True, "test_list": "TestNew"}))
    syn = sources.load(root / "curated")
    assert syn.provenance.synthetic and syn.provenance.test_list == "TestNew"
    hub.publish(data, tmp_path / "real")
    hub.publish(syn, tmp_path / "fake")
    real_back, fake_back = sources.load(tmp_path / "real"), sources.load(tmp_path / "fake")
    assert real_back.provenance.kind == "published" and not real_back.provenance.synthetic
    assert fake_back.provenance.synthetic and fake_back.provenance.test_list == "TestNew"
    assert real_back.provenance.test_list is None
    card = (tmp_path / "fake" / "README.md").read_text(encoding="utf-8")
    assert "crowdsourced" not in card and "Photos come from Flickr" not in card
    assert "machine-generated" in card and "procedural pictures" in card
    real_card = (tmp_path / "real" / "README.md").read_text(encoding="utf-8")
    assert "crowdsourced" in real_card and "Photos come from Flickr" in real_card

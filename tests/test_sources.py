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


def test_only_a_release_the_simulator_wrote_makes_a_curated_folder_synthetic(tiny_curated, tmp_path):
    """Review 2026-12-04: a real release with a sibling folder `X.truth` was loaded as synthetic
    (the loader looked only for that folder). The one rule of curation holds here too: a release
    is simulated when the simulator's marker lies inside it, whatever lies beside it."""
    from aadb_toolkit._atomic import write_marker

    root = tmp_path / "sim"
    shutil.copytree(tiny_curated.parent, root)
    manifest = json.loads((root / "curated/manifest.json").read_text())
    manifest["release_root"] = str(root / "release")
    (root / "curated/manifest.json").write_text(json.dumps(manifest))
    assert not sources.load(root / "curated").provenance.synthetic
    schema.simulated_truth_dir(root / "release").mkdir()  # a real release with a sibling X.truth
    assert not sources.load(root / "curated").provenance.synthetic
    write_marker(root / "release", schema.SIMULATED_RELEASE_KIND)  # what aadb simulate leaves inside
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


# --- a typo in a folder path is "no such folder", not a Hub download (issue 21, item 4) -------
@pytest.fixture
def no_hub(monkeypatch):
    """Record Hub attempts instead of making them (no network in tests); each attempt fails as an
    unreachable Hub does."""
    from aadb_toolkit import hub

    tried = []

    def fake(repo_id, **kwargs):
        tried.append(repo_id)
        raise SourceError(f"{repo_id}: not in the local cache and the Hub cannot be reached (offline)")

    monkeypatch.setattr(hub, "load_from_hub", fake)
    return tried


def test_typo_under_an_existing_folder_is_no_such_folder_with_a_suggestion(tmp_path, monkeypatch, no_hub):
    (tmp_path / "pub" / "aadb").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SourceError) as err:
        sources.load("pub/aabd")
    message = str(err.value)
    assert "pub/aabd: no such folder" in message and "did you mean 'pub/aadb'?" in message
    assert "Hub cannot be reached" not in message and no_hub == []


def test_strings_that_cannot_be_repo_ids_never_reach_the_hub(tmp_path, monkeypatch, no_hub):
    monkeypatch.chdir(tmp_path)
    for text in ["./org/name", "org/name/", "org/name/deeper", str(tmp_path / "org" / "name"), "org--x/name",
                 "org/na..me", "-org/name", "org/name.", "org\\name", "nosuchfolder"]:
        with pytest.raises(SourceError, match="no such folder"):
            sources.load(text)
    assert no_hub == []


def test_a_repo_id_is_tried_on_the_hub_and_a_close_local_folder_is_suggested(tmp_path, monkeypatch, no_hub):
    (tmp_path / "pub" / "aadb").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SourceError) as err:
        sources.load("pbu/aadb")  # no local folder "pbu": it may be a Hub id
    assert no_hub == ["pbu/aadb"]
    assert "Hub cannot be reached" in str(err.value) and "did you mean 'pub/aadb'?" in str(err.value)
    with pytest.raises(SourceError, match="Hub cannot be reached"):
        sources.load("hf://pub/aadb2")  # the explicit Hub form, even where a folder "pub" exists
    assert no_hub == ["pbu/aadb", "pub/aadb2"]


@pytest.mark.parametrize("content, why", [(b"[" * 100_000, "nested too deeply"), (b"\xff", "not UTF-8"),
                                          (b"[]", "expected a JSON object")], ids=["deep", "not_utf8", "array"])
def test_a_curated_manifest_that_is_no_json_object_is_a_source_error(tmp_path, content, why):
    folder = tmp_path / "cur"
    folder.mkdir()
    (folder / schema.CURATED_MANIFEST).write_bytes(content)
    with pytest.raises(SourceError, match="cannot read curated manifest") as exc:
        sources.load(folder)
    assert str(folder / schema.CURATED_MANIFEST) in str(exc.value) and why in str(exc.value)


# --- the manifest's test_list is one of the release's label lists (review: safety 4) ----------
BAD_TEST_LIST = "X` <img src=x onerror=alert(1)> [phish](https://evil.example) `"


@pytest.mark.parametrize("value", [BAD_TEST_LIST, 5, ["TestNew"]], ids=["markup", "number", "list"])
def test_a_curated_manifest_with_an_unknown_test_list_is_a_source_error(tiny_curated, tmp_path, value):
    """The test_list went unchecked into the provenance, and from there raw into the dataset card."""
    folder = tmp_path / "cur"
    shutil.copytree(tiny_curated, folder)
    manifest_file = folder / schema.CURATED_MANIFEST
    manifest = json.loads(manifest_file.read_text())
    manifest_file.write_text(json.dumps({**manifest, "test_list": value}))
    with pytest.raises(SourceError, match="test_list") as exc:
        sources.load(folder)
    message = str(exc.value)
    assert str(manifest_file) in message and "'TestNew'" in message
    assert "phish" not in message and "evil.example" not in message  # quoted: at most 32 characters

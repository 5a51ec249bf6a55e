"""What the dataset card tells a reader: which label list defined ``test``, that width/height are
the upright size, and the robust way to load a local copy."""

import json
import shutil

from aadb_toolkit import hub, sources


def _curated_with_test_list(tiny_curated, tmp_path, test_list):
    folder = tmp_path / f"curated_{test_list}"
    shutil.copytree(tiny_curated, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["test_list"] = test_list
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_card_names_the_test_list_and_the_upright_size(tiny_curated, tmp_path):
    hub.publish(sources.load(_curated_with_test_list(tiny_curated, tmp_path, "Test")), tmp_path / "old")
    card = (tmp_path / "old" / "README.md").read_text()
    assert "`imgListTestRegression_*`" in card and "older" in card
    assert sources.load(tmp_path / "old").provenance.test_list == "Test"  # read back from the card
    hub.publish(sources.load(_curated_with_test_list(tiny_curated, tmp_path, "TestNew")), tmp_path / "new")
    card = (tmp_path / "new" / "README.md").read_text()
    assert "`imgListTestNewRegression_*`" in card
    assert "as stored" not in card and "upright size" in card
    assert 'load_dataset("path/to/' in card


def test_card_without_label_files_says_the_split_is_by_batches(tiny_curated, tmp_path):
    hub.publish(sources.load(_curated_with_test_list(tiny_curated, tmp_path, None)), tmp_path / "none")
    card = (tmp_path / "none" / "README.md").read_text()
    assert "imgListTest" not in card.split("## Splits")[1].split("##")[0]


def test_publish_takes_data_like_every_command_and_curated_as_a_deprecated_alias(tiny_curated, tmp_path, capsys):
    from aadb_toolkit.cli import main

    assert main(["publish", "--data", str(tiny_curated), "--out", str(tmp_path / "a")]) == 0
    assert "deprecated" not in capsys.readouterr().err
    assert main(["publish", "--curated", str(tiny_curated), "--out", str(tmp_path / "b")]) == 0
    assert "--curated is deprecated; use --data" in capsys.readouterr().err
    assert (tmp_path / "a" / "README.md").read_bytes() == (tmp_path / "b" / "README.md").read_bytes()


def test_the_card_gives_the_test_split_its_own_size_not_the_paper_s(tiny_curated, tmp_path):
    """Review 2026-12-04: the card called any TestNew test split "the paper's 1,000-image test set",
    a 60-image synthetic one too."""
    data = sources.load(_curated_with_test_list(tiny_curated, tmp_path, "TestNew"))
    n_test = len(data.split("test"))
    hub.publish(data, tmp_path / "new")
    card = (tmp_path / "new" / "README.md").read_text()
    assert "the paper's 1,000-image test set" not in card
    assert f"{n_test:,} images here" in card and "1,000 in AADB" in card

"""What the dataset card tells a reader: which label list defined ``test``, that width/height are
the upright size, and the robust way to load a local copy."""

import json
import shutil

from aadb_toolkit import hub


def _curated_with_test_list(tiny_curated, tmp_path, test_list):
    folder = tmp_path / f"curated_{test_list}"
    shutil.copytree(tiny_curated, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["test_list"] = test_list
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_card_names_the_test_list_and_the_upright_size(tiny_curated, tmp_path):
    hub.publish(_curated_with_test_list(tiny_curated, tmp_path, "Test"), tmp_path / "old")
    card = (tmp_path / "old" / "README.md").read_text()
    assert "`imgListTestRegression_*`" in card and "older" in card
    hub.publish(_curated_with_test_list(tiny_curated, tmp_path, "TestNew"), tmp_path / "new")
    card = (tmp_path / "new" / "README.md").read_text()
    assert "`imgListTestNewRegression_*`" in card
    assert "as stored" not in card and "upright size" in card
    assert 'load_dataset("path/to/' in card


def test_card_without_label_files_says_the_split_is_by_batches(tiny_curated, tmp_path):
    hub.publish(_curated_with_test_list(tiny_curated, tmp_path, None), tmp_path / "none")
    card = (tmp_path / "none" / "README.md").read_text()
    assert "imgListTest" not in card.split("## Splits")[1].split("##")[0]

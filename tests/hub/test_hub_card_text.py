"""What the dataset card tells a reader: which label list defined ``test``, that width/height are
the upright size, and the robust way to load a local copy."""

import json
import logging
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aadb_toolkit import hub, sources
from aadb_toolkit.errors import InputError, SourceError, quote

BAD_TEST_LIST = "X` <img src=x onerror=alert(1)> [phish](https://evil.example) `"
MARKUP_COLUMN = "<img src=x onerror=alert(document.cookie)> [click](javascript:alert(1)) and a long tail"


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


def test_a_column_name_with_markup_is_quoted_and_escaped_in_the_card_notes_and_log(tiny_curated, tmp_path, caplog):
    """Review (safety 4): a non-canonical column's name landed raw in the card's notes (HTML and a
    javascript: link on the Hub's page) and in full in the CLI note and the log warning."""
    folder = tmp_path / "cur"
    shutil.copytree(tiny_curated, folder)
    table = pq.read_table(folder / "images.parquet")
    pq.write_table(table.append_column(MARKUP_COLUMN, pa.array([1] * table.num_rows)), folder / "images.parquet")
    caplog.set_level(logging.WARNING)
    result = hub.publish(sources.load(folder), tmp_path / "pub")
    card = (tmp_path / "pub" / "README.md").read_text()
    assert "<img" not in card.replace("\\<img", "") and "javascript" not in card and "[click]" not in card
    assert "\\<img src=x" in card  # shown as written (a prefix), as inert text
    note = next(n for n in result.notes if "not canonical" in n)
    assert quote(MARKUP_COLUMN) in note and "javascript" not in note
    assert "not canonical" in caplog.text and "javascript" not in caplog.text
    assert quote(MARKUP_COLUMN) in caplog.text


def test_a_published_card_with_an_unknown_test_list_is_refused(tiny_curated, tmp_path):
    hub.publish(sources.load(_curated_with_test_list(tiny_curated, tmp_path, "Test")), tmp_path / "pub")
    readme = tmp_path / "pub" / "README.md"
    text = readme.read_text()
    assert "aadb_test_list: Test\n" in text
    readme.write_text(text.replace("aadb_test_list: Test\n", f"aadb_test_list: {json.dumps(BAD_TEST_LIST)}\n"))
    with pytest.raises(SourceError, match="aadb_test_list") as exc:
        sources.load(tmp_path / "pub")
    assert str(readme) in str(exc.value) and "evil.example" not in str(exc.value)


def test_publish_refuses_data_whose_test_list_is_unknown(tiny_curated, tmp_path):
    """Data built in memory is not checked by a loader: publishing checks the test list itself
    before writing anything, so the card's code span and YAML only ever hold a known list name."""
    import dataclasses

    data = sources.load(tiny_curated)
    data.provenance = dataclasses.replace(data.provenance, test_list=BAD_TEST_LIST)
    with pytest.raises(InputError, match="test_list") as exc:
        hub.publish(data, tmp_path / "pub")
    assert "evil.example" not in str(exc.value) and not (tmp_path / "pub").exists()

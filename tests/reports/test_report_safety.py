"""Report safety (issue 9): data in a report (a folder name, say) never injects Markdown or HTML,
and the report folder is replaced whole, only when it is the toolkit's own."""

from __future__ import annotations

import shutil

import pytest

from aadb_toolkit import sources
from aadb_toolkit.errors import OutputError
from aadb_toolkit.reports import human_consistency


def test_a_hostile_folder_name_is_escaped_in_the_markdown_report(tiny_curated, tmp_path):
    hostile = tmp_path / "<script>alert(1)</script>_[x](y)"
    shutil.copytree(tiny_curated, hostile)
    paths = human_consistency.write_report(sources.load(hostile), tmp_path / "rep", n_perm=20, rater_n_perm=20, n_boot=20,
                                           show_progress=False)
    md = paths["markdown"].read_text()
    assert "\\<script>" in md and "<script>" not in md.replace("\\<script>", "")
    assert "<script>" not in paths["html"].read_text()


def test_a_report_folder_with_user_files_is_not_replaced(tiny_curated, tmp_path):
    out = tmp_path / "rep"
    human_consistency.write_report(sources.load(tiny_curated), out, n_perm=20, rater_n_perm=20, n_boot=20, show_progress=False)
    (out / "my_review.md").write_text("notes")
    with pytest.raises(OutputError, match="my_review.md"):
        human_consistency.write_report(sources.load(tiny_curated), out, n_perm=20, rater_n_perm=20, n_boot=20,
                                       show_progress=False)
    assert (out / "my_review.md").read_text() == "notes"

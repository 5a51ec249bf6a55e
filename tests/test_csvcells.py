"""_csvcells: text cells of the tables people open in spreadsheets are never run as formulas."""

from __future__ import annotations

import pandas as pd
import pytest

from aadb_toolkit._csvcells import csv_safe, table_csv


@pytest.mark.parametrize("text", ["=cmd|' /C calc'!A0", "+1+2", "-A1", "@SUM(A1)", "\t=1", "\r=1"])
def test_a_cell_a_spreadsheet_would_run_is_written_as_text(text):
    assert csv_safe(text) == "'" + text


@pytest.mark.parametrize("value", ["-1.5", "+3", "batch_1", "", 5, -2.0, None])
def test_numbers_and_plain_text_are_unchanged(value):
    assert csv_safe(value) == value


def test_a_table_s_text_cells_and_header_are_neutralised_and_its_numbers_kept():
    frame = pd.DataFrame({"batch_id": ["=cmd|' /C calc'!A0", "b2"], "=HYPERLINK(1)": [-0.5, 0.25]})
    lines = table_csv(frame).splitlines()
    assert lines[0] == "batch_id,'=HYPERLINK(1)"
    assert lines[1].startswith("'=cmd") and lines[1].endswith(",-0.5") and lines[2] == "b2,0.25"

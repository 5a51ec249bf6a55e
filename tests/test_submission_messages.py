"""What the scorer tells a submitter about the most common mistakes: predictions of the wrong
split, and a formula-injection id (reported as such, not as a path)."""

import pandas as pd
import pytest

from aadb_toolkit import sources
from aadb_toolkit.cli import main
from aadb_toolkit.protocols import score_submission
from aadb_toolkit.submissions import SubmissionError, read_submission, write_predictions


def test_validation_predictions_scored_as_test_say_they_are_the_validation_splits(tiny_curated, tmp_path):
    data = sources.load(tiny_curated)
    val = data.split("validation")
    sub = write_predictions(pd.Series(val["score_mean"].to_numpy(), index=val["image_id"]), tmp_path / "val.csv")
    with pytest.raises(SubmissionError) as err:
        score_submission("aadb", sub, tiny_curated, n_boot=0)
    text = str(err.value)
    assert "validation split" in text
    assert f"{len(val)} of the unknown image ids are images of the validation split" in text
    assert "--split test" in text


def test_a_formula_injection_id_is_reported_as_a_formula(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text('image_id,score\na.jpg,0.5\n"=HYPERLINK(""http://x.example/a"",""b"")",0.2\n')
    with pytest.raises(SubmissionError) as err:
        read_submission(path, ["a.jpg", "b.jpg"])
    text = str(err.value)
    assert "spreadsheet formula" in text and "looks like a path" not in text


def test_scorer_prints_rho_to_4_decimals_and_a_full_precision_line(tiny_curated, tmp_path, capsys):
    data = sources.load(tiny_curated)
    test = data.split("test")
    preds = pd.Series(test["score_mean"].to_numpy() + test["light"].to_numpy(), index=test["image_id"])
    sub = write_predictions(preds, tmp_path / "s.csv")
    assert main(["score", "--submission", str(sub), "--protocol", "aadb", "--data", str(tiny_curated),
                 "--out", str(tmp_path / "r.json"), "--n-boot", "20"]) == 0
    out = capsys.readouterr().out
    r = score_submission("aadb", sub, tiny_curated, n_boot=20)
    assert f"spearman = {r.main_value:.4f}" in out
    assert f"spearman, full precision: {r.main_value!r}" in out

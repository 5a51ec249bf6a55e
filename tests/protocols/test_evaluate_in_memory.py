"""Scoring in memory: every protocol's ``evaluate(data, predictions, **inputs)`` takes DataFrames,
Series and arrays with the same checks and messages as files, and gives the same result to the
last bit; ``score_submission`` is the one adapter from files."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from aadb_toolkit import protocols, sources
from aadb_toolkit.errors import InputError
from aadb_toolkit.protocols import PROTOCOLS, evaluate, score_submission
from aadb_toolkit.submissions import SubmissionError, write_predictions


@pytest.fixture(scope="module")
def data(tiny_curated):
    return sources.load(tiny_curated)


def _noisy(data, seed=0) -> pd.DataFrame:
    test = data.split("test")
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"image_id": test["image_id"],
                         "score": test["score_mean"].to_numpy() + rng.normal(0, 0.7, len(test)) / 3})


def _same(a, b) -> None:
    """Two results equal in everything but when they were made (compared as their documents, where
    an undefined metric is null: NaN would never equal itself)."""
    strip = dict(created_utc="", evaluation={})
    assert dataclasses.replace(a, **strip).to_dict() == dataclasses.replace(b, **strip).to_dict()
    assert a.paired.image_ids == b.paired.image_ids
    assert np.array_equal(a.paired.predictions, b.paired.predictions)


@pytest.mark.parametrize("protocol", ["aadb", "human"])
def test_a_dataframe_scores_exactly_as_the_same_file(protocol, data, tiny_curated, tmp_path):
    frame = _noisy(data)
    path = write_predictions(frame, tmp_path / "p.csv")
    from_file = score_submission(protocol, path, tiny_curated, n_boot=200, seed=4)
    in_memory = evaluate(protocol, data, frame, n_boot=200, seed=4)
    _same(from_file, in_memory)
    assert from_file.metrics[from_file.main_metric].value == in_memory.metrics[in_memory.main_metric].value
    # a Series indexed by image_id and an array in the split's order are the same predictions
    series = frame.set_index("image_id")["score"]
    _same(in_memory, evaluate(protocol, data, series, n_boot=200, seed=4))
    _same(in_memory, evaluate(protocol, data, frame["score"].to_numpy(), n_boot=200, seed=4))


def test_bad_predictions_in_memory_get_the_files_messages(data, tmp_path):
    frame = _noisy(data)
    frame.loc[1, "score"] = np.nan
    frame.loc[2, "image_id"] = "../etc/passwd"
    with pytest.raises(SubmissionError) as in_memory:
        evaluate("aadb", data, frame, n_boot=0)
    path = tmp_path / "bad.csv"
    path.write_text(frame.to_csv(index=False, lineterminator="\n", na_rep="nan"))
    with pytest.raises(SubmissionError) as from_file:
        protocols.aadb_protocol.read_files(data, path, max_bytes=10**6)
    assert [str(p) for p in in_memory.value.problems] == [str(p) for p in from_file.value.problems]
    assert any("score is NaN" in str(p) for p in in_memory.value.problems)
    assert any("looks like a path" in str(p) for p in in_memory.value.problems)


def test_an_array_of_the_wrong_length_and_a_path_are_refused(data, tmp_path):
    with pytest.raises(InputError, match="one score per image of the AADB test split"):
        evaluate("aadb", data, np.zeros(3), n_boot=0)
    with pytest.raises(InputError, match="must be in memory"):
        evaluate("aadb", data, tmp_path / "p.csv", n_boot=0)


def test_a_pandas_index_column_is_told_in_one_line(data, tiny_curated, tmp_path):
    path = tmp_path / "with_index.csv"
    _noisy(data).to_csv(path)  # the common mistake: index=True
    with pytest.raises(SubmissionError) as err:
        score_submission("aadb", path, tiny_curated, n_boot=0)
    assert len(err.value.problems) == 1
    assert "looks like a pandas index" in str(err.value) and "index=False" in str(err.value)
    assert len(str(err.value).splitlines()) == 2  # "invalid submission, 1 problem" and that line


def test_every_protocol_declares_its_inputs_and_aadb_score_has_their_flags():
    from aadb_toolkit.cli import score

    parser = __import__("argparse").ArgumentParser()
    score.configure(parser)
    flags = {a for action in parser._actions for a in action.option_strings}
    for p in PROTOCOLS.values():
        for i in p.inputs:
            assert i.flag in flags and i.noun and i.help
        assert p.header[-1] == "score"


def test_inputs_a_protocol_does_not_declare_are_refused_in_memory(data):
    with pytest.raises(InputError, match="takes no --validation"):
        evaluate("aadb", data, _noisy(data), validation=_noisy(data), n_boot=0)
    with pytest.raises(InputError, match="needs the submitter's validation predictions"):
        evaluate("ava", data, _noisy(data), n_boot=0)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:no --init-weights")
def test_aadb_evaluate_writes_the_result_aadb_score_writes(data, tiny_curated, tmp_path):
    import json
    from pathlib import Path

    from aadb_toolkit.cli import main
    from aadb_toolkit.models import load_config, train

    baselines = Path(__file__).resolve().parents[2] / "baselines"
    tiny = {"model.width": 0.0625, "data.warp_size": 72, "data.crop_size": 64, "optim.batch_size": 16,
            "train.cpu_threads": 1, "train.log_every_steps": 1, "train.validate_every_steps": 2, "optim.steps": 2}
    run = tmp_path / "run"
    train(load_config(baselines / "reg.toml", tiny), data, run, progress=False)
    assert main(["evaluate", "--run", str(run), "--data", str(tiny_curated), "--protocol", "aadb",
                 "--n-boot", "100", "--out", str(tmp_path / "evaluated.json")]) == 0
    assert main(["predict", "--run", str(run), "--data", str(tiny_curated), "--out", str(tmp_path / "p.csv")]) == 0
    assert main(["score", "--submission", str(tmp_path / "p.csv"), "--data", str(tiny_curated), "--protocol", "aadb",
                 "--n-boot", "100", "--out", str(tmp_path / "scored.json")]) == 0
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("evaluated.json", "scored.json"))
    for doc in (a, b):
        doc.pop("created_utc"), doc.pop("evaluation")
    assert a == b  # the same metrics, hashes and model identity, to the last bit
    assert a["model"]["name"] == "reg"
    with pytest.raises(InputError, match="does not write by itself"):
        protocols.evaluate_model("piaa", run, data)

"""``aadb simulate``: a thin CLI over :func:`aadb_toolkit.simulate.simulate`."""

from __future__ import annotations

import pandas as pd

from aadb_toolkit.cli import main


def test_cli_writes_a_release_and_prints_a_summary(tmp_path, capsys):
    out = tmp_path / "r"
    rc = main(["simulate", "--out", str(out), "--images", "50", "--seed", "3", "--quirks",
               "--random-raters", "0.4", "--image-size", "40x30"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "test instrument" in text and "50 images in 5 HITs" in text
    assert (out / "AADB_AllinAll.csv").is_file() and (tmp_path / "r.truth" / "quirks.json").is_file()
    workers = pd.read_parquet(tmp_path / "r.truth" / "workers.parquet")
    pool = workers[workers["role"] == "pool"]
    assert pool["is_random"].sum() == round(0.4 * len(pool))
    sizes = pd.read_parquet(tmp_path / "r.truth" / "images.parquet")[["width", "height"]]
    assert set(map(tuple, sizes.to_numpy())) <= {(40, 30), (30, 40)}


def test_cli_bad_input_is_a_one_line_error(tmp_path, capsys):
    assert main(["simulate", "--out", str(tmp_path / "r"), "--images", "55"]) == 1
    err = capsys.readouterr().err
    assert "multiple of 10" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()

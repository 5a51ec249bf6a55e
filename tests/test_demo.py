"""End to end: ``aadb demo`` runs every stage on a small synthetic AADB through the CLI."""

import json

import pandas as pd
import pytest

from aadb_toolkit import sources
from aadb_toolkit.cli import main


@pytest.mark.slow
def test_demo_runs_every_stage_and_outputs_agree(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AADB_RATER_KEY_FILE", str(tmp_path / "key" / "rater.key"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--images", "200", "--n-perm", "200"]) == 0
    printed = capsys.readouterr().out
    assert "Leaderboard" in printed and "(reported)" in printed

    curated = sources.load(out / "curated")
    published = sources.load(out / "hub" / "aadb")
    assert len(published.images) == len(curated.images) > 190
    assert len(published.ratings) == len(curated.ratings)

    cons = json.loads((out / "consistency" / "consistency.json").read_text())
    assert cons["n_batches"] == 20 and 0 <= cons["n_significant"] <= 20

    preds = pd.read_csv(out / "predictions.csv")
    assert list(preds.columns) == ["image_id", "score"]
    assert sorted(preds["image_id"]) == sorted(curated.split("test")["image_id"])

    score = json.loads((out / "score.json").read_text())
    assert score["protocol"]["name"] == "aadb"
    assert score["data"]["fingerprint"] == curated.fingerprint("test")
    assert score["model"]["name"] == "demo_cpu" and score["environment"]["numpy"]  # who and with what
    html = (out / "report" / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 4
    assert (out / "leaderboard").is_dir() and any((out / "leaderboard").iterdir())
    assert (out / "leaderboard" / "piaa.md").is_file()
    piaa = json.loads((out / "piaa" / "score.json").read_text())  # 200 images: a few raters qualify at k = 10
    assert piaa["protocol"]["name"] == "piaa" and piaa["metrics"]["n_raters_k10"]["value"] >= 1
    assert piaa["metrics"]["generic_rho_k10"]["value"] is not None
    assert "Leaderboard: `piaa`" in printed and "ridge on fc7" in printed
    # the anonymization key never reaches any output
    key_text = (tmp_path / "key" / "rater.key").read_text().strip()
    secrets = [key_text.encode(), bytes.fromhex(key_text)]
    for f in out.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            assert not any(s in data for s in secrets), f

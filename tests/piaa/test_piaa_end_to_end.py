"""The piaa flow through the CLI on the tiny curated fixture: train a generic run, draw episodes,
personalize, score with the generic reference, and see the piaa board on the leaderboard."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aadb_toolkit.cli import main
from aadb_toolkit.piaa import episodes as ep
from aadb_toolkit.sources import load

BASELINES = Path(__file__).resolve().parents[2] / "baselines"

pytestmark = pytest.mark.filterwarnings("ignore:no --init-weights")


def test_episodes_personalize_score_and_board(tiny_curated, tmp_path, capsys, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="aadb_toolkit.piaa.layout")
    run = tmp_path / "run"
    assert main(["train", "--config", str(BASELINES / "reg.toml"), "--data", str(tiny_curated), "--out", str(run),
                 "--image-size", "64", "--epochs", "1", "--set", "model.width=0.0625", "--set", "optim.batch_size=16",
                 "--no-progress"]) == 0
    episodes, preds, generic = tmp_path / "episodes.csv", tmp_path / "preds.csv", tmp_path / "generic.csv"
    assert main(["piaa", "episodes", "--data", str(tiny_curated), "--out", str(episodes), "--k", "10",
                 "--repeats", "3"]) == 0
    assert main(["personalize", "--run", str(run), "--data", str(tiny_curated), "--episodes", str(episodes),
                 "--out", str(preds), "--generic-out", str(generic)]) == 0
    table = ep.read_episodes(episodes, load(tiny_curated))
    sub = pd.read_csv(preds, dtype={"rater_id": str, "image_id": str})
    assert list(sub.columns) == ["rater_id", "k", "episode", "image_id", "score"]
    assert len(sub) == len(ep.queries(table)) and np.isfinite(sub["score"]).all()
    tuned = tmp_path / "tuned.csv"  # the second reference personalizer, same rows, its own scores
    assert main(["personalize", "--run", str(run), "--data", str(tiny_curated), "--episodes", str(episodes),
                 "--out", str(tuned), "--method", "rank-finetune", "--no-progress"]) == 0
    # each says which penalty it chose on the train split
    assert [m.split(" chosen")[0] for m in caplog.messages if "chosen on the train split at k = " in m] == \
        ["ridge: alpha", "rank fine-tune: pull"]
    other = pd.read_csv(tuned, dtype={"rater_id": str, "image_id": str})
    pd.testing.assert_frame_equal(other.drop(columns="score"), sub.drop(columns="score"))
    assert np.isfinite(other["score"]).all() and not np.allclose(other["score"], sub["score"])
    db, out = tmp_path / "lb.sqlite", tmp_path / "result.json"
    capsys.readouterr()
    assert main(["score", "--protocol", "piaa", "--submission", str(preds), "--data", str(tiny_curated),
                 "--episodes", str(episodes), "--generic", str(generic), "--out", str(out), "--n-boot", "50",
                 "--leaderboard", str(db), "--name", "ridge on fc7"]) == 0
    doc = json.loads(out.read_text())
    assert doc["protocol"]["name"] == "piaa"
    # the personalized predictions name the generic run and the personalizer that made them (review
    # 2026-12-04: they carried no model sidecar, so a piaa result named no run and checked nothing)
    from aadb_toolkit.models.predict import model_identity

    assert doc["model"]["name"] == model_identity(run)["name"] and doc["model"]["run_id"] == model_identity(run)["run_id"]
    # and which penalty each chose on the train split (review 2026-12-04: it was only logged)
    logged = [m.split(": ")[-1].split(" (from")[0] for m in caplog.messages if "chosen on the train split" in m]
    ridge, tuned_side = (json.loads(Path(f"{p}.model.json").read_text())["personalizer"] for p in (preds, tuned))
    recorded = [ridge["chosen"]["alpha"]["10"], tuned_side["chosen"]["pull"]["10"]]
    assert ["no correction" if v == "inf" else f"{v:g}" for v in recorded] == logged
    assert doc["model"]["personalizer"] == ridge and {ridge["method"], ridge["alpha"]} == {"ridge", "auto"}
    assert doc["model"]["split"] == "validation+test"
    assert doc["model"]["contamination"] == ["aadb:validation"]  # the split the run chose its checkpoint on
    assert json.loads((tmp_path / "generic.csv.model.json").read_text())["name"] == model_identity(run)["name"]
    for m in ("rho_k10", "generic_rho_k10", "loo_rho_k10", "consistency_rho_k10", "share_beats_generic_k10"):
        assert doc["metrics"][m]["value"] is not None, m
    assert doc["metrics"]["n_raters_k10"]["value"] == len(ep.qualifying_raters(load(tiny_curated), 10))
    assert main(["leaderboard", "--db", str(db), "--out", str(tmp_path / "site")]) == 0
    board = (tmp_path / "site" / "piaa.md").read_text()
    assert "ridge on fc7" in board and "share_beats_generic_k10" in board

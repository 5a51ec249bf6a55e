"""``aadb reproduce --table table3 / table7``: AVA rows train on the --ava source, Table 3 scores ρ and
accuracy through the ``ava`` protocol (τ from the run's validation predictions), Table 7 trains one
run per training set and tests it on both sets; the paper's numbers sit beside ours and a
synthetic source is marked."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
from ava_fixtures import make_small_ava

from aadb_toolkit import paper, sources
from aadb_toolkit.cli import main
from aadb_toolkit.protocols import read_result
from aadb_toolkit.protocols.ava_protocol import binary_labels, choose_threshold
from reproduce_fixtures import tiny_recipe

from aadb_toolkit.reproduce import load_recipe, paper_number, reproduce

TINY = {"model.width": 0.0625, "data.warp_size": 72, "data.crop_size": 64, "optim.batch_size": 16,
        "optim.steps": 4, "train.validate_every_steps": 2, "train.checkpoint_every_steps": 2,
        "train.cpu_threads": 1, "pairs.n_pairs": 64, "optim.lr": 1e-3, "data.decode_workers": 1}
pytestmark = pytest.mark.filterwarnings("ignore:no --init-weights")


@pytest.fixture(scope="module")
def ava_root(tmp_path_factory):
    return make_small_ava(tmp_path_factory.mktemp("ava"))


def _tiny(name, rows=None):
    return tiny_recipe(name, TINY, rows)


def test_recipes_cover_the_papers_rows():
    t3 = load_recipe("table3")
    assert [r.label for r in t3.rows] == [k for k in paper.TABLE3_AVA if paper.TABLE3_AVA[k][0] is not None]
    assert all(r.data == "ava" for r in t3.rows) and t3.protocol == "ava"
    assert [paper_number(r.paper) for r in t3.rows] == [paper.TABLE3_AVA[r.label][0] for r in t3.rows]
    assert [paper_number(r.paper, index=1) for r in t3.rows] == [paper.TABLE3_AVA[r.label][1] for r in t3.rows]
    t7 = load_recipe("table7")
    cells = {(r.data, r.test_data): paper_number(r.paper) for r in t7.rows}
    assert cells == paper.TABLE7_CROSS
    assert len({r.run for r in t7.rows}) == 2  # one run per training set


def test_table3_rows_score_rho_and_accuracy_with_tau_from_validation(ava_root, tmp_path):
    data = sources.load(ava_root)
    recipe = _tiny("table3", rows={"Reg", "Reg+Rank+Att+Cont"})
    res = reproduce(recipe, {"ava": data}, tmp_path / "t3", n_boot=20, progress=False)
    assert res.synthetic
    by = {r["label"]: r for r in res.records}
    for label, rec in by.items():
        assert rec["paper"] == paper.TABLE3_AVA[label][0] and rec["paper acc %"] == paper.TABLE3_AVA[label][1]
        run = tmp_path / "t3" / "runs" / rec["run"].split("/runs/")[1]
        result = read_result(run / "score.json")
        assert rec["ours"] == result.metrics["spearman"].value
        assert rec["acc %"] == pytest.approx(100 * result.metrics["accuracy"].value)
        val = pd.read_csv(run / "validation.csv", dtype={"image_id": str}).set_index("image_id")
        truth = data.split("validation").set_index("image_id")["score_mean"]
        tau, _ = choose_threshold(val.loc[truth.index, "score"].to_numpy(), binary_labels(truth.to_numpy()))
        assert result.details["threshold"] == pytest.approx(tau)
    md = (tmp_path / "t3" / "table3.md").read_text()
    assert "Synthetic data" in md and "paper acc %" in md and "77.33" in md
    csv = pd.read_csv(tmp_path / "t3" / "table3.csv")
    assert list(csv["label"]) == ["Reg", "Reg+Rank+Att+Cont"] and csv["data_synthetic"].all()


def test_table7_one_run_per_training_set_tested_on_both(ava_root, tiny_curated, tmp_path):
    srcs = {"aadb": sources.load(tiny_curated), "ava": sources.load(ava_root)}
    res = reproduce(_tiny("table7"), srcs, tmp_path / "t7", n_boot=0, progress=False)
    assert sorted(p.name for p in (tmp_path / "t7" / "runs").iterdir()) == ["trained_on_aadb", "trained_on_ava"]
    for rec in res.records:
        a, b = rec["label"].replace("train ", "").replace("test ", "").lower().split(", ")
        assert rec["paper"] == paper.TABLE7_CROSS[(a, b)] and np.isfinite(rec["ours"])
        result = read_result(tmp_path / "t7" / "scores" / rec["label"].lower().replace(", ", "_").replace(" ", "_")
                             / "score.json")
        assert result.protocol == ("ava" if b == "ava" else "aadb") and result.metrics["spearman"].value == rec["ours"]
    assert "Synthetic data" in (tmp_path / "t7" / "table7.md").read_text()


def test_cli_needs_the_ava_source(tmp_path, capsys):
    assert main(["reproduce", "--table", "table3", "--out", str(tmp_path / "o")]) == 1
    assert "--ava" in capsys.readouterr().err

"""``aadb reproduce``: recipes are data (rows, paper numbers, comparisons), a table is trained,
scored through the protocol registry and written as Markdown/CSV (+PNG); finished runs are reused
and an interrupted reproduction resumes to the same weights; synthetic data is marked."""

import dataclasses
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from aadb_toolkit import paper
from aadb_toolkit.cli import main
from aadb_toolkit.errors import InputError
from aadb_toolkit.models import TrainingInterrupted
from reproduce_fixtures import tiny_recipe

from aadb_toolkit.reproduce import available_tables, load_recipe, paper_number, reproduce
from aadb_toolkit.sources import load

TINY = {"model.width": 0.0625, "data.warp_size": 72, "data.crop_size": 64, "optim.batch_size": 16,
        "optim.steps": 6, "train.validate_every_steps": 3, "train.checkpoint_every_steps": 2,
        "train.cpu_threads": 1, "pairs.n_pairs": 96, "content.clusters": 3, "optim.lr": 1e-3}
pytestmark = pytest.mark.filterwarnings("ignore:no --init-weights")


def _tiny(name, rows=None):
    return tiny_recipe(name, TINY, rows)


def test_the_issue_tables_exist_and_their_paper_numbers_resolve():
    assert {"table2", "table4", "table5", "fig5"} <= set(available_tables())
    t2 = load_recipe("table2")
    assert len(t2.rows) == 8 and {r.label for r in t2.rows} == set(paper.TABLE2_AADB_RHO)
    assert [paper_number(r.paper) for r in t2.rows] == list(paper.TABLE2_AADB_RHO.values())
    t5 = load_recipe("table5")
    assert len(t5.rows) == 6
    for budget in ("quick", "paper"):  # the table measures the pair pool: steps are the same in every row
        from aadb_toolkit.reproduce import row_config

        steps = {row_config(t5, r, budget).optim.steps for r in t5.rows}
        pools = {row_config(t5, r, budget).pairs.n_pairs for r in t5.rows}
        assert len(steps) == 1 and len(pools) == 2
    t4 = load_recipe("table4")
    assert [paper_number(r.paper) for r in t4.rows] == list(paper.TABLE4_OMEGA_RANK["aadb"].values())
    assert all(r.select for r in t4.rows) and t4.select_row_on_validation
    assert load_recipe("fig5").figure
    with pytest.raises(InputError, match="did you mean table2"):
        load_recipe("tabel2")



def test_the_paper_column_shows_the_papers_printed_digits():
    """Review: the tables' paper column printed 0.6450 as ``0.645`` and 71.50 as ``71.5``. The
    numbers go to :func:`paper.as_reported` as the CSV writer hands them (numpy floats of a
    column), and come out with the digits the paper printed."""
    import numpy as np

    t2, t3 = load_recipe("table2"), load_recipe("table3")
    rho = dict(zip([r.label for r in t2.rows], np.array([paper_number(r.paper) for r in t2.rows])))
    assert paper.as_reported(rho["Reg+Rank (within-rater)"]) == "0.6450"
    assert all(len(paper.as_reported(v)) == len("0.6450") for v in rho.values())
    acc = {r.label: paper.as_reported(np.float64(paper_number(r.paper, index=1))) for r in t3.rows}
    assert acc["Reg+Rank"] == "71.50" and acc["Reg+Rank+Att+Cont"] == "77.33"
    assert paper.as_reported(paper.TABLE3_AVA["Murray et al."][1]) == "68.00"
    assert paper.as_reported(paper.CONSISTENCY_PERCENT_SIGNIFICANT) == "98.45"
    assert paper.as_reported(72.85 / 100) == "0.7285"  # not a printed number: in full, without binary noise

def test_every_row_of_a_table_validates_at_the_same_cadence():
    from aadb_toolkit.reproduce import row_config

    for name in available_tables():
        recipe = load_recipe(name)
        for budget in ("quick", "paper"):
            cadence = {row_config(recipe, r, budget).train.validate_every_steps for r in recipe.rows}
            assert len(cadence) == 1 and None not in cadence, (name, budget)


def test_reproduce_writes_the_table_reuses_runs_and_resumes_after_a_kill(tiny_curated, tmp_path, monkeypatch):
    recipe = _tiny("table2", rows={"Reg", "Reg+Rank (within- & cross-rater)", "Reg+Rank+Att+Cont"})
    data = {"aadb": load(tiny_curated)}
    full = reproduce(recipe, data, tmp_path / "full", n_boot=50, progress=False)
    md = (tmp_path / "full" / "table2.md").read_text()
    csv = pd.read_csv(tmp_path / "full" / "table2.csv")
    assert len(csv) == 3 and list(csv["label"]) == [r.label for r in recipe.rows]
    assert csv["ours"].between(-1, 1).all() and (csv["ci_low"] <= csv["ours"]).all() and (csv["ours"] <= csv["ci_high"]).all()
    assert csv.loc[csv["label"] == "Reg+Rank+Att+Cont", "paper"].item() == paper.TABLE2_AADB_RHO["Reg+Rank+Att+Cont"]
    full_row = csv[csv["label"] == "Reg+Rank+Att+Cont"].iloc[0]
    assert full_row["compared_with"] == "Reg+Rank (within- & cross-rater)" and 0 <= full_row["p_bootstrap"] <= 1
    assert "0.6782" in md and "Reg+Rank+Att+Cont" in md
    # kill in the middle of the second row, then run again
    with pytest.raises(TrainingInterrupted):
        reproduce(recipe, data, tmp_path / "cut", n_boot=50, progress=False, stop_after_steps=3)
    from aadb_toolkit.models import train as real_train

    trained = []

    def counting_train(cfg, *a, **k):
        trained.append(cfg.name)
        return real_train(cfg, *a, **k)

    monkeypatch.setattr("aadb_toolkit.models.train", counting_train)
    res = reproduce(recipe, data, tmp_path / "cut", n_boot=50, progress=False)
    assert trained == ["reg", "reg_rank_within_cross", "reg_rank_att_cont"]  # the cut one resumed, the rest new
    for a, b in zip(full.records, res.records):
        sa = json.loads((Path(a["run"]) / "run.json").read_text())["weights_sha256"]
        sb = json.loads((Path(b["run"]) / "run.json").read_text())["weights_sha256"]
        assert sa == sb and a["ours"] == b["ours"]
    trained.clear()
    again = reproduce(recipe, data, tmp_path / "cut", n_boot=50, progress=False)
    assert trained == [] and [r["ours"] for r in again.records] == [r["ours"] for r in res.records]


def test_a_kill_on_the_first_row_resumes_it(tiny_curated, tmp_path):
    recipe = _tiny("table2", rows={"Reg"})
    data = {"aadb": load(tiny_curated)}
    with pytest.raises(TrainingInterrupted):
        reproduce(recipe, data, tmp_path / "o", n_boot=0, progress=False, stop_after_steps=3)
    ck = tmp_path / "o" / "runs" / "reg" / "run" / "checkpoint.pt"
    assert ck.is_file()
    res = reproduce(recipe, data, tmp_path / "o", n_boot=0, progress=False)
    metrics = (ck.parent / "metrics.jsonl").read_text().splitlines()
    steps = [json.loads(x)["step"] for x in metrics if json.loads(x)["kind"] == "train"]
    assert steps == sorted(set(steps)) and res.records[0]["steps"] == 6


def test_selection_on_validation_and_the_figure(tiny_curated, tmp_path):
    fig = _tiny("fig5", rows={"K = 1", "K = 2"})
    res = reproduce(fig, {"aadb": load(tiny_curated)}, tmp_path / "f", n_boot=0, progress=False)
    assert (tmp_path / "f" / "fig5.png").read_bytes().startswith(b"\x89PNG")
    assert sum(bool(r["selected_on_validation"]) for r in res.records) == 1
    t4 = _tiny("table4", rows={"omega_r = 1"})
    t4 = dataclasses.replace(t4, rows=(dataclasses.replace(t4.rows[0], select={"loss.rank_margin": [0.02, 0.5]},
                                                           compare=""),))
    res = reproduce(t4, {"aadb": load(tiny_curated)}, tmp_path / "t4", n_boot=0, progress=False)
    runs = sorted(p.name for p in (tmp_path / "t4" / "runs" / "omega_r_1").iterdir() if p.is_dir())
    assert len(runs) == 2  # both alphas trained; the one with the better validation rho is reported
    vals = {p: json.loads((tmp_path / "t4" / "runs" / "omega_r_1" / p / "run.json").read_text())["best_val_rho"]
            for p in runs}
    chosen = json.loads(res.records[0]["selected"])["loss.rank_margin"]
    best_dir = max(vals, key=lambda k: -2 if vals[k] is None else vals[k])
    assert res.records[0]["validation_rho"] == vals[best_dir]
    assert Path(res.records[0]["run"]).name == best_dir and best_dir.endswith(str(chosen).replace(".", "_"))


def test_a_synthetic_source_is_marked_in_every_file(tiny_curated, tmp_path):
    cur = tmp_path / "cur"
    shutil.copytree(tiny_curated, cur)
    shutil.copytree(tiny_curated.parent / "release", tmp_path / "release")
    manifest = json.loads((cur / "manifest.json").read_text())
    manifest["synthetic"] = True
    (cur / "manifest.json").write_text(json.dumps(manifest))
    fig = _tiny("fig5", rows={"K = 1"})
    res = reproduce(fig, {"aadb": load(cur)}, tmp_path / "o", n_boot=0, progress=False)
    assert res.synthetic
    assert "Synthetic data — not AADB" in (tmp_path / "o" / "fig5.md").read_text()
    assert pd.read_csv(tmp_path / "o" / "fig5.csv")["data_synthetic"].all()
    assert json.loads((tmp_path / "o" / "reproduce.json").read_text())["synthetic"] is True
    # the real (non-synthetic) fixture is not marked
    res = reproduce(fig, {"aadb": load(tiny_curated)}, tmp_path / "real", n_boot=0, progress=False)
    assert not res.synthetic and "Synthetic" not in (tmp_path / "real" / "fig5.md").read_text()


def test_reproduce_refuses_a_folder_it_did_not_write_and_unknown_tables(tiny_curated, tmp_path, capsys):
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    code = main(["reproduce", "--table", "table2", "--data", str(tiny_curated), "--out", str(other)])
    assert code == 1 and "did not write" in capsys.readouterr().err
    assert (other / "notes.txt").read_text() == "keep me"
    assert main(["reproduce", "--table", "table9", "--data", str(tiny_curated), "--out", str(tmp_path / "x")]) == 1
    assert main(["reproduce", "--table", "table2", "--out", str(tmp_path / "x")]) == 1
    assert "needs --data" in capsys.readouterr().err


@pytest.mark.slow
def test_a_real_sigkill_of_aadb_reproduce_resumes_to_the_same_weights(tiny_curated, tmp_path):
    """`aadb reproduce` killed with SIGKILL mid-row, then run again: the row resumes from its last
    checkpoint and ends with the weights of an uninterrupted reproduction."""
    import os
    import signal
    import subprocess
    import sys

    recipe = tmp_path / "tiny.toml"
    overrides = {**TINY, "optim.steps": 120, "train.validate_every_steps": 60, "train.checkpoint_every_steps": 5}
    body = ", ".join(f'"{k}" = {json.dumps(v)}' for k, v in overrides.items())
    recipe.write_text(f'name = "tiny"\nprotocol = "aadb"\n[budgets.quick]\nset = {{ {body} }}\n'
                      '[[rows]]\nlabel = "Reg"\nconfig = "reg"\n')
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "aadb_toolkit", "reproduce", "--table", str(recipe), "--data", str(tiny_curated),
           "--out", str(tmp_path / "cut"), "--n-boot", "0", "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ck = tmp_path / "cut" / "runs" / "reg" / "run" / "checkpoint.pt"
    try:
        while proc.poll() is None and not ck.is_file():
            import time

            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert ck.is_file(), "the reproduction finished before a checkpoint could be killed"
    from aadb_toolkit.models.runs import CHECKPOINT, load_run_file

    killed_at = load_run_file(ck.parent / CHECKPOINT, "aadb-checkpoint")["global_step"]
    assert killed_at < 120
    assert main(cmd[3:]) == 0  # run again, in this process
    assert main([*cmd[3:5], str(recipe), "--data", str(tiny_curated), "--out", str(tmp_path / "full"),
                 "--n-boot", "0", "--no-progress"]) == 0
    a = json.loads((tmp_path / "cut" / "runs" / "reg" / "run" / "run.json").read_text())
    b = json.loads((tmp_path / "full" / "runs" / "reg" / "run" / "run.json").read_text())
    assert a["weights_sha256"] == b["weights_sha256"] and a["global_step"] == 120


def test_a_row_whose_config_changed_is_refused_not_mixed(tiny_curated, tmp_path):
    recipe = _tiny("table2", rows={"Reg"})
    data = {"aadb": load(tiny_curated)}
    with pytest.raises(TrainingInterrupted):
        reproduce(recipe, data, tmp_path / "o", n_boot=0, progress=False, stop_after_steps=2)
    changed = dataclasses.replace(recipe, budgets={"quick": {**TINY, "optim.lr": 5e-3}})
    with pytest.raises(InputError, match="another config") as e:
        reproduce(changed, data, tmp_path / "o", n_boot=0, progress=False)
    assert "optim.lr" in str(e.value)


def test_reproduce_off_a_terminal_prints_one_line_per_row_and_says_from_scratch_once(tiny_curated, tmp_path, capsys,
                                                                                        caplog, recwarn):
    fig = _tiny("fig5", rows={"K = 1"})
    reproduce(fig, {"aadb": load(tiny_curated)}, tmp_path / "o", n_boot=0)  # progress=None, stderr is not a tty
    err = capsys.readouterr().err
    assert f"reproduce {fig.name}: row 1/1 'K = 1'" in err
    assert not [w for w in recwarn if "from scratch" in str(w.message)]  # no raw warning per row
    assert sum("from scratch" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.filterwarnings("ignore:no --init-weights")
def test_a_finished_row_is_not_reused_for_other_initial_weights(tiny_curated, tmp_path):
    """Review 2026-12-04: `aadb reproduce --init-weights W` reused rows trained from scratch (and the
    reverse), so a from-scratch table was reported as a pretrained one."""
    from aadb_toolkit import reproduce as rp
    from aadb_toolkit.models import load_config, train

    cfg = load_config(Path(__file__).resolve().parents[1] / "baselines" / "reg.toml",
                      {**TINY, "optim.steps": 2})
    run = tmp_path / "run"
    train(cfg, tiny_curated, run, progress=False)  # from scratch
    data = load(tiny_curated)
    assert rp._finished(run, cfg, data, None)
    with pytest.raises(InputError, match="other initial weights"):
        rp._finished(run, cfg, data, tmp_path / "alexnet.pth")


@pytest.mark.parametrize("content, why", [(b"[]", "expected a JSON object"), (b"\xff", "not UTF-8"),
                                          (b"[" * 100_000, "nested too deeply")], ids=["array", "not_utf8", "deep"])
def test_reproduce_refuses_a_reproduce_json_that_is_no_json_object(tiny_curated, tmp_path, capsys, content, why):
    out = tmp_path / "o"
    out.mkdir()
    (out / "reproduce.json").write_bytes(content)
    code = main(["reproduce", "--table", "table2", "--data", str(tiny_curated), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and f"{out / 'reproduce.json'}: cannot read reproduce.json" in err and why in err, err
    assert sorted(p.name for p in out.iterdir()) == ["reproduce.json"]


def test_reproduce_quotes_another_table_s_name_in_at_most_32_characters(tiny_curated, tmp_path, capsys):
    from aadb_toolkit.reproduce import SUMMARY_FORMAT

    out = tmp_path / "o"
    out.mkdir()
    (out / "reproduce.json").write_text(json.dumps({"format": SUMMARY_FORMAT, "table": "t" * 100, "budget": "b" * 100}))
    assert main(["reproduce", "--table", "table2", "--data", str(tiny_curated), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "holds a reproduction of table" in err and "t" * 33 not in err and "b" * 33 not in err


MALFORMED_RECIPES = {  # review 2026-12-04: each gave the internal-error exit (rc 70)
    "rows": ("rows = 5\n", "rows"),
    "label": ('[[rows]]\nlabel = 5\nconfig = "reg"\n', "rows[0].label"),
    "budgets": ('budgets = [1]\n[[rows]]\nlabel = "a"\nconfig = "reg"\n', "budgets"),
    "figure": ('figure = "x"\n[[rows]]\nlabel = "a"\nconfig = "reg"\n', "figure"),
    "scale": ('[[rows]]\nlabel = "a"\nconfig = "reg"\n[[columns]]\nmetric = "a"\nlabel = "b"\nscale = "zz"\n',
              "columns[0].scale"),
    "label_list": ('[[rows]]\nlabel = ["a"]\nconfig = "reg"\n', "rows[0].label"),
    "row_text": ('rows = ["abc"]\n', "rows[0]"),
    "set": ('[[rows]]\nlabel = "a"\nconfig = "reg"\nset = 5\n', "rows[0].set"),
    "config": ('[[rows]]\nlabel = "a"\nconfig = ["reg"]\n', "rows[0].config"),
    "title": ('title = 5\n[[rows]]\nlabel = "a"\nconfig = "reg"\n', "title"),
    "x": ('[[rows]]\nlabel = "a"\nconfig = "reg"\nx = "far"\n', "rows[0].x"),
    "select": ('[[rows]]\nlabel = "a"\nconfig = "reg"\nselect = { "optim.lr" = 1 }\n', "rows[0].select.optim.lr"),
}


@pytest.mark.parametrize("body, field", MALFORMED_RECIPES.values(), ids=MALFORMED_RECIPES.keys())
def test_a_malformed_recipe_is_an_input_error_naming_the_field_before_out_is_claimed(tiny_curated, tmp_path, capsys,
                                                                                      body, field):
    recipe = tmp_path / "bad.toml"
    recipe.write_text('name = "bad"\n' + body)
    out = tmp_path / "o"
    assert main(["reproduce", "--table", str(recipe), "--data", str(tiny_curated), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"field '{field}'" in err and str(recipe) in err, err
    assert not out.exists()


def test_the_recipe_s_title_note_and_column_labels_are_escaped_in_the_markdown():
    from aadb_toolkit.reproduce import _recipe_from_dict, render_markdown

    recipe = _recipe_from_dict({"name": "t", "title": "T <script>alert(1)</script> [x](http://e)",
                                "note": "a | b <img src=x>", "rows": [{"label": "a", "config": "reg"}],
                                "columns": [{"metric": "accuracy", "label": "acc | <b>"}]}, "t.toml")
    md = render_markdown(recipe, [], budget="quick", synthetic=False, data_origin="d")
    import re

    assert not re.search(r"(?<!\\)[<\[]", md), md  # every tag or link opener escaped
    assert "\\<script" in md and "a \\| b \\<img" in md and "ours acc \\| \\<b> |" in md


@pytest.mark.parametrize("linked", ["runs", "cache", "runs/reg"])
def test_reproduce_refuses_a_subfolder_linked_outside_out(tiny_curated, tmp_path, linked):
    """Review 2026-12-04: with D/runs or D/cache a symbolic link leading outside D, `aadb reproduce`
    trained into (and pruned the cache of) the folder behind it."""
    from aadb_toolkit.errors import OutputError

    out, outside = tmp_path / "o", tmp_path / "outside"
    outside.mkdir()
    stale = outside / "images-99-0123456789abcdef0123.npy"  # what prune_cache would delete there
    stale.write_bytes(b"x")
    import os

    os.utime(stale, (0, 0))
    (out / linked).parent.mkdir(parents=True)
    (out / "reproduce.json").write_text(json.dumps({"format": "aadb-reproduce", "table": "table2", "budget": "quick"}))
    (out / linked).symlink_to(outside, target_is_directory=True)
    with pytest.raises(OutputError, match="symbolic link or leads outside") as e:
        reproduce(_tiny("table2", rows={"Reg"}), {"aadb": load(tiny_curated)}, out, n_boot=0, progress=False)
    assert str(out / linked) in str(e.value)
    assert sorted(p.name for p in outside.iterdir()) == [stale.name]
    assert "status" not in json.loads((out / "reproduce.json").read_text())  # as it was


def test_the_table_csv_neutralises_spreadsheet_formulas_in_text_cells(tmp_path):
    """Review 2026-12-04: a row label (or any text cell) starting with ``=`` reached the table's
    CSV as it was, a formula in a spreadsheet; numbers (negative ones too) stay numbers."""
    from aadb_toolkit.reproduce import _recipe_from_dict, _write_table

    recipe = _recipe_from_dict({"name": "t", "rows": [{"label": "=HYPERLINK(\"http://e\")", "config": "reg"}]},
                               "t.toml")
    record = {"label": recipe.rows[0].label, "config": "reg", "ours": -0.25, "ci_low": -0.5, "ci_high": 0.1,
              "paper": None, "selected": "", "compared_with": "@SUM(A1)", "delta_vs_compared": None,
              "p_bootstrap": None, "p_steiger": None, "validation_rho": 0.1, "steps": 6, "run": "r"}
    _write_table(recipe, [record], tmp_path, budget="quick", synthetic=False, data_origin="d")
    rows = pd.read_csv(tmp_path / "t.csv", keep_default_na=False)
    assert rows.loc[0, "label"] == "'=HYPERLINK(\"http://e\")" and rows.loc[0, "compared_with"] == "'@SUM(A1)"
    assert rows.loc[0, "ours"] == -0.25

"""Output safety (issue 9): a command replaces only a folder carrying the toolkit's marker of the
same kind, never deletes a file a user added, never writes over its own input, a symlink, or
inside another command's output; multi-file outputs are all-or-nothing; staging debris of a killed
run is cleaned up; write failures are clear errors."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from aadb_toolkit import _atomic, consistency, sources
from aadb_toolkit.cli import main
from aadb_toolkit.errors import OutputError
from aadb_toolkit.simulate import simulate


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- the marker rule --------------------------------------------------------------------------
def test_a_folder_is_replaced_only_with_the_marker_of_its_kind(tmp_path):
    out = tmp_path / "out"
    with _atomic.atomic_dir(out, kind="report") as stage:
        (stage / "a.txt").write_text("1")
    marker = json.loads((out / _atomic.MARKER_FILE).read_text())
    assert marker["kind"] == "report" and marker["files"] == ["a.txt"]
    with _atomic.atomic_dir(out, kind="report") as stage:  # its own kind: replaced
        (stage / "a.txt").write_text("2")
    with pytest.raises(OutputError, match="is a report folder .*not a curated folder"):
        with _atomic.atomic_dir(out, kind="curated"):
            pass
    (out / "mine.txt").write_text("user")
    with pytest.raises(OutputError, match="mine.txt"):
        with _atomic.atomic_dir(out, kind="report"):
            pass
    assert (out / "mine.txt").read_text() == "user" and (out / "a.txt").read_text() == "2"


def test_unmarked_folders_symlinks_root_and_files_are_refused(tmp_path):
    foreign = tmp_path / "project"
    foreign.mkdir()
    (foreign / "manifest.json").write_text("{}")
    with pytest.raises(OutputError, match="manifest.json"):
        _atomic.check_output_folder(foreign, "curated")
    real = tmp_path / "real"
    with _atomic.atomic_dir(real, kind="report") as stage:
        (stage / "x").write_text("x")
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(OutputError, match="symbolic link"):
        with _atomic.atomic_dir(link, kind="report"):
            pass
    assert link.is_symlink()
    with pytest.raises(OutputError, match="root of the file system"):
        _atomic.check_output_folder("/", "simulated_release")
    (tmp_path / "f").write_text("f")
    with pytest.raises(OutputError, match="not a folder"):
        _atomic.check_output_folder(tmp_path / "f", "report")


def test_outputs_inside_another_output_folder_are_refused(tmp_path):
    with _atomic.atomic_dir(tmp_path / "cur", kind="curated") as stage:
        (stage / "images.parquet").write_text("x")
    with pytest.raises(OutputError, match="inside the curated folder"):
        _atomic.check_output_folder(tmp_path / "cur" / "cons", "consistency")
    with pytest.raises(OutputError, match="inside the curated folder"):
        _atomic.check_output_file(tmp_path / "cur" / "p.csv", "predictions CSV", lambda p: True)


def test_stale_staging_of_a_dead_process_is_removed_on_the_next_run(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    pid = int(dead.stdout)
    stale = tmp_path / f".hub.aadb-{pid}-abc123.staging"
    stale.mkdir()
    (stale / "big.parquet").write_text("x")
    alive = tmp_path / f".hub.aadb-{os.getpid()}-zzz.staging"  # a run in progress: left alone
    alive.mkdir()
    foreign = tmp_path / ".hub.notes.staging"  # not the toolkit's naming: left alone
    foreign.mkdir()
    with _atomic.atomic_dir(tmp_path / "hub", kind="published") as stage:
        (stage / "README.md").write_text("r")
    assert not stale.exists() and alive.exists() and foreign.exists()


# --- commands ---------------------------------------------------------------------------------
def _fake_real_release(root: Path) -> None:
    root.mkdir()
    (root / "AADB_AllinAll.csv").write_text("HITId,WorkerId\n")
    (root / "datasetImages_originalSize").mkdir()
    (root / "datasetImages_originalSize" / "farm1_1_1_a_b.jpg").write_bytes(b"\xff\xd8 precious")


def test_simulate_never_replaces_a_real_release(tmp_path, capsys):
    _fake_real_release(tmp_path / "R")
    before = _tree(tmp_path / "R")
    assert main(["simulate", "--out", str(tmp_path / "R"), "--images", "10"]) == 1
    assert "not a simulated release folder" in capsys.readouterr().err
    assert _tree(tmp_path / "R") == before


def test_simulate_to_the_root_is_a_clear_error(capsys):
    assert main(["simulate", "--out", "/", "--images", "10"]) == 1
    err = capsys.readouterr().err
    assert "root of the file system" in err and "Traceback" not in err


def test_consistency_output_is_all_or_nothing(tiny_curated, tmp_path, monkeypatch):
    out = tmp_path / "cons"
    consistency.run_consistency(sources.load(tiny_curated), out, n_perm=50, seed=1, show_progress=False)
    before = _tree(out)
    real = _atomic.write_bytes

    def fail_on_png(path, data):
        if str(path).endswith(consistency.OUTPUT_FILES["p_histogram"]):
            raise OSError(28, "No space left on device", str(path))
        real(path, data)

    monkeypatch.setattr(_atomic, "write_bytes", fail_on_png)
    with pytest.raises(OSError):
        consistency.run_consistency(sources.load(tiny_curated), out, n_perm=60, seed=2, show_progress=False)
    assert _tree(out) == before  # every file still from the first run
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cons"]


def test_consistency_refuses_to_write_inside_the_curated_folder(tiny_curated, tmp_path, capsys):
    assert main(["consistency", "--data", str(tiny_curated), "--out", str(tiny_curated / "cons"),
                 "--n-perm", "10"]) == 1
    assert "lies inside" in capsys.readouterr().err and not (tiny_curated / "cons").exists()


def test_score_never_writes_over_its_submission_or_a_foreign_file(tiny_curated, tmp_path, capsys):
    images = pd.read_parquet(tiny_curated / "images.parquet")
    test = images[images["split"] == "test"]
    sub = tmp_path / "sub.csv"
    sub.write_text("image_id,score\n" + "".join(f"{i},{s}\n" for i, s in zip(test["image_id"], test["score"])))
    before = sub.read_bytes()
    base = ["score", "--submission", str(sub), "--protocol", "aadb", "--data", str(tiny_curated), "--n-boot", "10"]
    assert main(base + ["--out", str(sub)]) == 1
    assert "input" in capsys.readouterr().err and sub.read_bytes() == before
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": true}')
    assert main(base + ["--out", str(notes)]) == 1
    assert "not a result document" in capsys.readouterr().err and notes.read_text() == '{"mine": true}'
    assert main(base + ["--out", str(tmp_path / "r.json")]) == 0
    assert main(base + ["--out", str(tmp_path / "r.json")]) == 0  # its own result: replaced
    ep = tmp_path / "ep.json"  # issue 17, item 3: every input counts, --episodes and --generic too
    ep.write_text(json.dumps({"format": "aadb-result"}))
    for option in ("--episodes", "--generic"):
        assert main(["score", "--submission", str(sub), "--protocol", "piaa", "--data", str(tiny_curated),
                     option, str(ep), "--out", str(ep)]) == 1
        assert "input" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:no --init-weights")
def test_predict_never_writes_over_an_input_or_a_foreign_file(tiny_curated, tmp_path, capsys):
    import shutil

    cur = tmp_path / "cur"
    shutil.copytree(tiny_curated, cur)
    run = tmp_path / "run"
    assert main(["train", "--config", "baselines/reg.toml", "--data", str(cur), "--out", str(run),
                 "--image-size", "64", "--epochs", "1", "--set", "model.width=0.0625", "--set",
                 "optim.batch_size=16", "--no-progress"]) == 0
    capsys.readouterr()
    notes = tmp_path / "notes.csv"
    notes.write_text("my,own\n1,2\n")
    for target, why in ((cur / "images.parquet", "input"), (run / "config.json", "input"),
                        (notes, "not a predictions CSV")):
        before = target.read_bytes()
        assert main(["predict", "--run", str(run), "--data", str(cur), "--out", str(target)]) == 1
        assert why in capsys.readouterr().err and target.read_bytes() == before
    assert main(["predict", "--run", str(run), "--data", str(cur), "--out", str(tmp_path / "p.csv")]) == 0
    assert main(["predict", "--run", str(run), "--data", str(cur), "--out", str(tmp_path / "p.csv")]) == 0
    # issue 17, item 3: the sidecar <out>.model.json is checked too, before the CSV is written
    sidecar = tmp_path / "new.csv.model.json"
    sidecar.write_text('{"mine": true}')
    (tmp_path / "elsewhere.json").write_text("precious")
    for make, why in ((lambda: None, "not a model sidecar"),
                      (lambda: (sidecar.unlink(), sidecar.symlink_to(tmp_path / "elsewhere.json")), "symbolic link"),
                      (lambda: (sidecar.unlink(), sidecar.mkdir()), "is a folder")):
        make()
        assert main(["predict", "--run", str(run), "--data", str(cur), "--out", str(tmp_path / "new.csv")]) == 1
        assert why in capsys.readouterr().err
        assert not (tmp_path / "new.csv").exists()  # nothing half-written
    assert (tmp_path / "elsewhere.json").read_text() == "precious"


def test_train_refuses_a_foreign_or_symlinked_run_folder(tiny_curated, tmp_path, capsys):
    foreign = tmp_path / "proj"
    foreign.mkdir()
    (foreign / "config.json").write_text('{"mine": 1}')
    args = ["train", "--config", "baselines/reg.toml", "--data", str(tiny_curated), "--epochs", "1"]
    assert main(args + ["--out", str(foreign)]) == 1
    assert "is not a run folder" in capsys.readouterr().err
    assert (foreign / "config.json").read_text() == '{"mine": 1}'
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    assert main(args + ["--out", str(link)]) == 1
    assert "symbolic link" in capsys.readouterr().err


# --- write failures ---------------------------------------------------------------------------
def test_write_failures_are_clear_errors(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        assert main(["simulate", "--out", str(locked / "r"), "--images", "10"]) == 1
        err = capsys.readouterr().err
        assert "Permission denied" in err and "Traceback" not in err
    finally:
        locked.chmod(0o755)
    (tmp_path / "file").write_text("x")
    assert main(["simulate", "--out", str(tmp_path / "file"), "--images", "10"]) == 1
    assert "not a folder" in capsys.readouterr().err


def test_a_file_size_limit_is_a_clear_error_not_a_crash(tmp_path):
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000)); "
            "from aadb_toolkit.cli import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.run([sys.executable, "-c", code, "simulate", "--out", str(tmp_path / "r"), "--images", "20"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert "File too large" in proc.stderr and "Traceback" not in proc.stderr
    assert str(tmp_path / "r") in proc.stderr  # issue 17, item 8: the message names what was being written
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no staging folder left behind
    assert resource.getrlimit(resource.RLIMIT_FSIZE)  # (the limit was only the child's)


def test_leaderboard_pages_never_overwrite_a_users_index(tmp_path, capsys):
    db = tmp_path / "lb.sqlite"
    db.touch()
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.md").write_text("# my own site")
    assert main(["leaderboard", "--db", str(db), "--out", str(site)]) == 1
    assert "index.md" in capsys.readouterr().err
    assert (site / "index.md").read_text() == "# my own site"


def test_demo_refuses_a_folder_it_did_not_write(tmp_path, capsys):
    home = tmp_path / "home"
    home.mkdir()
    (home / "predictions.csv").write_text("image_id,score\nmine,1\n")
    assert main(["demo", "--out", str(home), "--images", "20", "--no-train"]) == 1
    assert "is not a demo folder" in capsys.readouterr().err
    assert sorted(p.name for p in home.iterdir()) == ["predictions.csv"]


def test_a_file_added_while_the_output_is_built_is_not_swapped_away(tmp_path):
    out = tmp_path / "out"
    with _atomic.atomic_dir(out, kind="report") as stage:
        (stage / "a.txt").write_text("1")
    with pytest.raises(OutputError, match="late.txt"):
        with _atomic.atomic_dir(out, kind="report") as stage:
            (stage / "a.txt").write_text("2")
            (out / "late.txt").write_text("saved by the user during the run")
    assert (out / "late.txt").is_file() and (out / "a.txt").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_run_folder_from_before_markers_is_adopted_a_foreign_one_is_not(tmp_path):
    def looks_like_run(p):
        return (p / "config.json").is_file() and any(p.glob("*.pt"))

    old_run = tmp_path / "old_run"
    old_run.mkdir()
    (old_run / "config.json").write_text("{}")
    (old_run / "checkpoint.pt").write_bytes(b"x")
    _atomic.claim_output_folder(old_run, "run", written_before_markers=looks_like_run)
    assert _atomic.read_marker(old_run)["kind"] == "run"
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text("{}")
    with pytest.raises(OutputError, match="not a run folder"):
        _atomic.claim_output_folder(other, "run", written_before_markers=looks_like_run)
    assert _atomic.read_marker(other) is None


def test_no_output_goes_into_the_release_behind_a_curated_folder(tiny_curated, tmp_path, capsys):
    release = Path(json.loads((tiny_curated / "manifest.json").read_text())["release_root"])
    before = sorted(p.name for p in release.iterdir())
    for args in (["consistency", "--data", str(tiny_curated), "--out", str(release / "cons"), "--n-perm", "10"],
                 ["publish", "--curated", str(tiny_curated), "--out", str(release / "hub")],
                 ["report", "human-consistency", "--data", str(tiny_curated), "--out", str(release / "rep")]):
        assert main(args) == 1
        assert "input" in capsys.readouterr().err
    assert sorted(p.name for p in release.iterdir()) == before


# --- issue 17, item 3: every file a command writes goes through the one output check ---------
def test_piaa_episodes_writes_only_its_own_episodes_file(tiny_curated, tmp_path, capsys):
    import shutil

    cur = tmp_path / "cur"
    shutil.copytree(tiny_curated, cur)
    notes = tmp_path / "notes.csv"
    notes.write_text("my,own\n1,2\n")
    link = tmp_path / "link.csv"
    link.symlink_to(notes)
    base = ["piaa", "episodes", "--data", str(cur), "--k", "10", "--repeats", "1", "--out"]
    for target, why in ((cur / "images.parquet", "input"), (notes, "not a piaa episodes CSV"), (link, "symbolic link")):
        before = target.read_bytes()
        assert main(base + [str(target)]) == 1
        assert why in capsys.readouterr().err and target.read_bytes() == before
    assert link.is_symlink()
    assert main(base + [str(tmp_path / "ep.csv")]) == 0
    assert main(base + [str(tmp_path / "ep.csv")]) == 0  # its own episodes file: replaced


def test_personalize_checks_both_outputs_before_any_work(tiny_curated, tmp_path, capsys):
    ep_csv = tmp_path / "ep.csv"
    assert main(["piaa", "episodes", "--data", str(tiny_curated), "--out", str(ep_csv), "--k", "10",
                 "--repeats", "1"]) == 0
    notes = tmp_path / "notes.csv"
    notes.write_text("my,own\n1,2\n")
    base = ["personalize", "--run", str(tmp_path / "run-not-needed-yet"), "--data", str(tiny_curated),
            "--episodes", str(ep_csv)]
    capsys.readouterr()
    for extra, why in ((["--out", str(ep_csv)], "input"),
                       (["--out", str(notes)], "not a personalized predictions CSV"),
                       (["--out", str(tmp_path / "p.csv"), "--generic-out", str(notes)], "not a predictions CSV"),
                       (["--out", str(tmp_path / "p.csv"), "--generic-out", str(tmp_path / "p.csv")], "same file")):
        before = {p: p.read_bytes() for p in (ep_csv, notes)}
        assert main(base + extra) == 1
        err = capsys.readouterr().err
        assert why in err and "Traceback" not in err, err
        assert all(p.read_bytes() == b for p, b in before.items())


def test_a_recipe_name_is_a_plain_name(tmp_path):
    from aadb_toolkit.errors import InputError
    from aadb_toolkit.reproduce import load_recipe, tables_dir

    text = (tables_dir() / "table5.toml").read_text()
    for name in ("../../victim", "/tmp/victim", "a/b", "..", ""):
        bad = tmp_path / "r.toml"
        bad.write_text(f"name = {json.dumps(name)}\n" + "\n".join(
            line for line in text.splitlines() if not line.startswith("name =")))
        with pytest.raises(InputError, match="plain name"):
            load_recipe(bad)


# --- issue 17, item 8 ---------------------------------------------------------------------------
def test_curate_out_root_says_root(tmp_path, capsys):
    release = tmp_path / "rel"
    release.mkdir()
    assert main(["curate", "--release", str(release), "--out", "/"]) == 1
    err = capsys.readouterr().err
    assert "root of the file system" in err and "outside the release" not in err


def test_a_closed_stdout_after_the_work_is_quiet(tmp_path):
    """``aadb … | head``: once the reader is gone, the command stops without 'error: Broken pipe'."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "aadb_toolkit", "baselines"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    proc.stdout.close()  # the reader is gone before the first line
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=120) in (0, 141), err
    assert "Broken pipe" not in err and "Traceback" not in err and "Exception ignored" not in err, err


def test_an_interrupt_after_personalize_wrote_its_outputs_is_not_a_failure(tiny_curated, tmp_path, monkeypatch,
                                                                           capsys):
    from aadb_toolkit.piaa import personalize as pz
    from aadb_toolkit.cli import personalize as cli_pz

    ep_csv = tmp_path / "ep.csv"
    assert main(["piaa", "episodes", "--data", str(tiny_curated), "--out", str(ep_csv), "--k", "10",
                 "--repeats", "1"]) == 0
    episodes = pd.read_csv(ep_csv)
    q = episodes[episodes["role"] == "query"][["rater_id", "k", "episode", "image_id"]].assign(score=0.5)
    ids = sorted(episodes["image_id"].unique())
    monkeypatch.setattr(pz, "personalize", lambda *a, **k: (q, pd.DataFrame({"image_id": ids, "score": 0.5})))
    monkeypatch.setattr(cli_pz, "_identities", lambda args: (None, None))  # no run folder here: no sidecars

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_pz, "print", interrupted, raising=False)  # Ctrl-C while the summary is printed
    out = tmp_path / "p.csv"
    assert main(["personalize", "--run", str(tmp_path / "run"), "--data", str(tiny_curated), "--episodes",
                 str(ep_csv), "--out", str(out)]) == 0
    assert out.is_file()


def test_reproduce_refuses_to_write_inside_its_input_or_another_output(tiny_curated, tmp_path, capsys):
    """``--out`` inside the curated folder would grow runs and tables inside the data; inside a
    report folder, they would be lost when the report is replaced. Refused before any training."""
    report = tmp_path / "report"
    with _atomic.atomic_dir(report, kind="report") as stage:
        (stage / "a.txt").write_text("1")
    for out in (tiny_curated / "repro", report / "repro"):
        before = _tree(out.parent)
        assert main(["reproduce", "--table", "table2", "--data", str(tiny_curated), "--out", str(out),
                     "--no-progress"]) == 1
        err = capsys.readouterr().err
        assert "lies inside" in err and "Traceback" not in err, err
        assert not out.exists() and _tree(out.parent) == before

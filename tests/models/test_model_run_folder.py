"""Issue 17 items 4 and 8: a run folder has one writer at a time (a second `aadb train --out R`
is refused, not mixed in); a refused train writes nothing into an unmarked run folder; the run's
pixel cache keeps only the entries of its current data and sizes."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from aadb_toolkit.cli import main
from aadb_toolkit.models import TrainingInterrupted, load_config, train
from lock_fixtures import hold_lock


BASELINES = Path(__file__).resolve().parents[2] / "baselines"
TINY = {"model.width": 0.0625, "data.warp_size": 72, "data.crop_size": 64, "optim.batch_size": 16,
        "optim.steps": 4, "train.log_every_steps": 2, "train.cpu_threads": 1, "train.checkpoint_every_steps": 2}
SETS = [a for k, v in TINY.items() for a in ("--set", f"{k}={v}")]
pytestmark = pytest.mark.filterwarnings("ignore:no --init-weights")


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` with its size and modification time."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


def test_two_trainers_on_one_run_folder_the_second_is_refused(tiny_curated, tmp_path, capsys):
    run = tmp_path / "R"
    run.mkdir()
    first = hold_lock(run)  # the first `aadb train --out R`, still running
    try:
        code = main(["train", "--config", "reg", "--data", str(tiny_curated), "--out", str(run), "--no-progress",
                     *SETS])
        err = capsys.readouterr().err
        assert code == 1 and "another aadb process is writing to this run folder" in err
        assert "Traceback" not in err and os.listdir(run) == []  # nothing of the second run in R
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert main(["train", "--config", "reg", "--data", str(tiny_curated), "--out", str(run), "--no-progress",
                 *SETS]) == 0
    assert json.loads((run / "run.json").read_text())["stopped"] == "completed"


def test_a_refused_train_into_an_unmarked_run_folder_writes_nothing_there(tiny_curated, tmp_path, capsys):
    run = tmp_path / "old_run"  # a run folder written before run folders were marked
    with pytest.raises(TrainingInterrupted):
        train(load_config(BASELINES / "reg.toml", TINY), tiny_curated, run, progress=False, stop_after_steps=2)
    before = _tree(run)
    code = main(["train", "--config", "reg", "--data", str(tiny_curated), "--out", str(run), "--no-progress",
                 *SETS, "--set", "data.warp_size=76"])  # another config: its checkpoint cannot be resumed
    assert code == 1 and "different config" in capsys.readouterr().err
    assert _tree(run) == before  # no cache for the new size, no marker, nothing touched


def test_the_run_cache_keeps_only_the_current_entries(tiny_curated, tmp_path):
    run = tmp_path / "R"
    train(load_config(BASELINES / "reg.toml", TINY), tiny_curated, run, progress=False)
    assert len(list((run / "cache").glob("images-72-*.npy"))) == 2  # train and validation
    train(load_config(BASELINES / "reg.toml", {**TINY, "data.warp_size": 76}), tiny_curated, run, progress=False,
          resume=False)
    names = sorted(p.name for p in (run / "cache").iterdir())
    assert len(names) == 2 and all(n.startswith("images-76-") for n in names), names


def test_a_no_resume_train_refused_for_its_init_weights_leaves_the_finished_run(tiny_curated, tmp_path, capsys):
    """Review 2026-12-04: `--no-resume` deleted the finished run's files before `--init-weights` was
    read and refused, so a bad weights file lost the run."""
    import torch

    run = tmp_path / "R"
    assert main(["train", "--config", "reg", "--data", str(tiny_curated), "--out", str(run), "--no-progress",
                 *SETS]) == 0
    kept = {p: (run / p).read_bytes() for p in ("best.pt", "checkpoint.pt", "run.json", "metrics.jsonl")}
    bad = tmp_path / "bad.pth"
    torch.save({"x": torch.zeros(2)}, bad)
    code = main(["train", "--config", "reg", "--data", str(tiny_curated), "--out", str(run), "--no-progress",
                 *SETS, "--no-resume", "--init-weights", str(bad)])
    assert code == 1 and "bad.pth" in capsys.readouterr().err
    assert {p: (run / p).read_bytes() for p in kept} == kept


def test_a_single_run_trained_into_an_ensemble_s_folder_is_the_one_predict_uses(tiny_curated, tmp_path):
    """Review 2026-12-04: a single run trained into a folder that held an ensemble left its
    ensemble.json, and predict went on returning the old ensemble's predictions."""
    from aadb_toolkit import sources
    from aadb_toolkit.models import predict
    from aadb_toolkit.models.predict import model_identity

    run = tmp_path / "R"
    train(load_config(BASELINES / "reg.toml", {**TINY, "ensemble.members": 2}), tiny_curated, run, progress=False)
    data = sources.load(tiny_curated)
    ensemble = predict(run, data, "test", progress=False)
    train(load_config(BASELINES / "reg.toml", {**TINY, "train.seed": 7}), tiny_curated, run, progress=False)
    single = predict(run, data, "test", progress=False)
    assert "members" not in model_identity(run)
    assert not single["score"].equals(ensemble["score"])


def test_max_minutes_bounds_the_whole_ensemble_not_each_member(tiny_curated, tmp_path):
    """Review 2026-12-04: each member started its own clock, so members=3 with a budget already
    spent trained all three. Members after the budget do not start, no ensemble is written
    (nothing would predict from an incomplete one), and a rerun resumes to the full ensemble."""
    run = tmp_path / "R"
    cfg = load_config(BASELINES / "reg.toml", {**TINY, "ensemble.members": 3, "optim.steps": 40})
    result = train(cfg, tiny_curated, run, progress=False, max_minutes=1e-4)
    assert result.stopped == "time_limit"
    assert not (run / "members" / "1").exists() and not (run / "ensemble.json").exists()
    done = train(cfg, tiny_curated, run, progress=False)
    assert done.stopped == "completed" and (run / "ensemble.json").is_file()
    assert sorted(p.name for p in (run / "members").iterdir()) == ["0", "1", "2"]


@pytest.mark.parametrize("name, content", [
    ("config.json", b'{"name": "reg\xff"}'),  # not UTF-8: raised UnicodeDecodeError
    ("config.json", b"5"),  # JSON, not an object: raised TypeError
    ("config.json", b'{"name": "reg",'),  # not JSON
    ("ensemble.json", b'{"format": "aadb-ensemble", "members": ["members/0"], "config": 5}'),  # raised TypeError
])
def test_model_identity_of_a_run_whose_config_is_unreadable_is_a_clear_error(tmp_path, name, content):
    """`aadb predict` writes the sidecar from model_identity(run): a damaged config file of the run
    folder must be an InputError naming it, never a traceback."""
    from aadb_toolkit.errors import InputError
    from aadb_toolkit.models.predict import model_identity

    run = tmp_path / "R"
    (run / "members" / "0").mkdir(parents=True)
    (run / name).write_bytes(content)
    with pytest.raises(InputError, match="cannot read the run's config") as exc:
        model_identity(run)
    assert exc.value.file == str(run / name)


def test_model_identity_ignores_a_backbone_record_that_is_not_an_object(tmp_path):
    """run.json's backbone entry only adds to the identity: one that is not a JSON object (a damaged
    run.json) raised AttributeError; the identity then names the config's family alone."""
    from aadb_toolkit.errors import InputError
    from aadb_toolkit.models.predict import model_identity

    run = tmp_path / "R"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(load_config(BASELINES / "reg.toml", TINY).to_dict()))
    with pytest.raises(InputError, match="cannot read the run's weights") as exc:
        model_identity(run)
    assert exc.value.file == str(run / "best.pt")
    (run / "best.pt").write_bytes(b"weights")
    (run / "run.json").write_text(json.dumps({"backbone": 5, "trained_on": ["aadb:train"]}))
    ident = model_identity(run)
    assert ident["backbone"] == {"family": "alexnet", "weights_id": None, "weights_sha256": None,
                                 "pretraining_data": None}
    assert ident["name"] == "reg" and ident["trained_on"] == ["aadb:train"] and len(ident["run_id"]) == 16


def test_a_single_run_trained_into_an_ensemble_s_folder_removes_its_members(tiny_curated, tmp_path):
    """The single run cleared ensemble.json but left members/K: whole run folders of the old
    ensemble that `aadb predict --run R/members/0` still read as if they belonged to R's model, and
    that a later ensemble in R resumed. The members ensemble.json lists go with it; anything else
    under members/ (not written as this ensemble's member) stays."""
    run = tmp_path / "R"
    train(load_config(BASELINES / "reg.toml", {**TINY, "ensemble.members": 2}), tiny_curated, run, progress=False)
    (run / "members" / "notes").mkdir()
    (run / "members" / "notes" / "mine.txt").write_text("kept")
    train(load_config(BASELINES / "reg.toml", {**TINY, "train.seed": 7}), tiny_curated, run, progress=False)
    assert not (run / "ensemble.json").exists()
    assert sorted(p.name for p in (run / "members").iterdir()) == ["notes"]
    assert (run / "members" / "notes" / "mine.txt").read_text() == "kept"
    assert json.loads((run / "run.json").read_text())["global_step"] == 4  # the single run's own record


def test_clearing_an_ensemble_removes_only_the_member_folders_its_record_lists(tmp_path):
    from aadb_toolkit.models.ensemble import clear_ensemble

    def folder(name: str, record: bytes) -> Path:
        run = tmp_path / name
        for k in ("0", "1"):
            (run / "members" / k).mkdir(parents=True)
            (run / "members" / k / "best.pt").write_bytes(b"w")
        (run / "ensemble.json").write_bytes(record)
        return run

    listed = folder("listed", json.dumps({"format": "aadb-ensemble", "members": ["members/0"]}).encode())
    assert clear_ensemble(listed) == [listed / "members" / "0"]
    assert sorted(p.name for p in (listed / "members").iterdir()) == ["1"]  # not listed: kept
    damaged = folder("damaged", b"\xff{")  # which folders it listed is unknown: all kept
    outside = folder("outside", json.dumps({"format": "aadb-ensemble", "members": ["members/0", ".."]}).encode())
    for run in (damaged, outside):
        assert clear_ensemble(run) == [] and sorted(p.name for p in (run / "members").iterdir()) == ["0", "1"]
    for run in (listed, damaged, outside):
        assert not (run / "ensemble.json").exists()


DEEP = b"[" * 100_000  # nested deeper than the JSON reader follows: its RecursionError


def test_run_files_nested_too_deeply_are_clear_errors(tmp_path):
    """Review 2026-12-04 (afternoon): a damaged run file nested too deeply (ensemble.json, a line of
    metrics.jsonl, the config inside best.pt) was a RecursionError, an internal error."""
    import torch

    from aadb_toolkit.errors import InputError
    from aadb_toolkit.models.ensemble import member_dirs
    from aadb_toolkit.models.runs import load_model, read_metrics

    run = tmp_path / "R"
    run.mkdir()
    (run / "ensemble.json").write_bytes(DEEP)
    with pytest.raises(InputError):
        member_dirs(run)
    (run / "metrics.jsonl").write_bytes(DEEP + b"\n{}\n")
    with pytest.raises(InputError, match="row 1"):
        read_metrics(run / "metrics.jsonl")
    torch.save({"format": "aadb-model", "config": DEEP.decode()}, run / "best.pt")
    with pytest.raises(InputError, match="config"):
        load_model(run)

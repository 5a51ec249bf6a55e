"""Issue 17 item 7: no traceback anywhere. Each case is a reproduction from the review: a hostile
published dataset (decompression bomb, image bytes None, pandas metadata that is not JSON, card
YAML of the wrong shape), hostile run files (ensemble.json, best.pt), a curated images.parquet that
is not parquet, AVA.txt numbers outside the one number rule, and the environment (a file-size
limit at a checkpoint, a metrics log cut short, a path that is not UTF-8, a push without network).
Every one ends with a one-line error naming the problem and exit code 1."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from aadb_toolkit import hub, sources
from aadb_toolkit.ava import read_ava_txt
from aadb_toolkit.cli import main
from aadb_toolkit.errors import AADBError, InputError, SourceError
from aadb_toolkit.models import TrainingInterrupted, load_config, train

ROOT = Path(__file__).resolve().parents[1]
TINY = {"model.width": 0.0625, "data.warp_size": 72, "data.crop_size": 64, "optim.batch_size": 16,
        "optim.steps": 4, "train.log_every_steps": 2, "train.cpu_threads": 1, "train.checkpoint_every_steps": 2}
SETS = [a for k, v in TINY.items() for a in ("--set", f"{k}={v}")]
pytestmark = pytest.mark.filterwarnings("ignore:no --init-weights")


@pytest.fixture(scope="module")
def published(tiny_curated, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pub") / "p"
    hub.publish(sources.load(tiny_curated), out)
    return out


@pytest.fixture(scope="module")
def run_dir(tiny_curated, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "r"
    train(load_config("reg", TINY), tiny_curated, out, progress=False)
    return out


def _one_line_error(capsys, code: int, command: str) -> str:
    err = capsys.readouterr().err
    assert code == 1, err
    assert err.startswith(f"aadb {command}: error: ") and "Traceback" not in err and "internal error" not in err, err
    return err


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _edit_first_image(folder: Path, split: str, image_bytes) -> None:
    shard = next((folder / "data").glob(f"{split}-*.parquet"))
    table = pq.read_table(shard)
    cells = table.column("image").to_pylist()
    cells[0] = {**cells[0], "bytes": image_bytes}
    i = table.schema.get_field_index("image")
    pq.write_table(table.set_column(i, "image", pa.array(cells, type=table.schema.field("image").type)), shard)


def _bomb() -> bytes:
    buf = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buf, "PNG")  # 48 KB that would decode to 400 megapixels
    return buf.getvalue()


@pytest.mark.parametrize("image_bytes, message", [(_bomb(), "decompression bomb"), (None, "no image bytes")],
                         ids=["bomb", "none"])
def test_a_hostile_image_in_a_published_dataset_is_a_clear_error(published, run_dir, tmp_path, capsys,
                                                                  image_bytes, message):
    train_bad = _copy(published, tmp_path / "a")
    _edit_first_image(train_bad, "train", image_bytes)
    code = main(["train", "--config", "reg", "--data", str(train_bad), "--out", str(tmp_path / "r"), "--no-progress",
                 *SETS])
    assert message in _one_line_error(capsys, code, "train")
    test_bad = _copy(published, tmp_path / "b")
    _edit_first_image(test_bad, "test", image_bytes)
    code = main(["predict", "--run", str(run_dir), "--data", str(test_bad), "--out", str(tmp_path / "p.csv")])
    assert message in _one_line_error(capsys, code, "predict")
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize("key, value", [(b"pandas", b"{not json"), (b"aadb_toolkit.pandas_dtypes", b"[1, 2")])
def test_pandas_metadata_that_is_not_json_is_a_clear_error_in_four_commands(published, run_dir, tmp_path, capsys,
                                                                           key, value):
    bad = _copy(published, tmp_path / "bad")
    for shard in (bad / "data").glob("*.parquet"):
        table = pq.read_table(shard)
        pq.write_table(table.replace_schema_metadata({**table.schema.metadata, key: value}), shard)
    for command in (["train", "--config", "reg", "--out", str(tmp_path / "r"), *SETS],
                    ["predict", "--run", str(run_dir), "--out", str(tmp_path / "p.csv")],
                    ["consistency", "--out", str(tmp_path / "c")],
                    ["publish", "--out", str(tmp_path / "p2")]):
        code = main([*command, "--data", str(bad)])
        assert "metadata" in _one_line_error(capsys, code, command[0])


CARD_SHAPES = {
    "configs is a number": ("configs:", "configs: 5\nx_configs:"),
    "a config is a string": ("configs:\n", "configs:\n- just a string\n"),
    "a data_files entry has no path": ("  - split: train\n    path: data/train-*", "  - split: train\n    paths: x"),
    "splits is a number": ("  splits:\n", "  splits: 5\n  x_splits:\n"),
    "tags is a number": ("tags:\n", "tags: 5\nx_tags:\n"),
}


@pytest.mark.parametrize("shape", sorted(CARD_SHAPES))
def test_hostile_dataset_card_yaml_is_a_clear_error(published, tmp_path, capsys, shape):
    bad = _copy(published, tmp_path / "bad")
    old, new = CARD_SHAPES[shape]
    text = (bad / "README.md").read_text(encoding="utf-8")
    assert old in text, shape
    (bad / "README.md").write_text(text.replace(old, new, 1), encoding="utf-8")
    code = main(["consistency", "--data", str(bad), "--out", str(tmp_path / "c")])
    _one_line_error(capsys, code, "consistency")


@pytest.mark.parametrize("content", ['{"format": "aadb-ensemble", "members": []}', '"[]"', "[]"])
def test_a_hostile_ensemble_file_is_a_clear_error(tiny_curated, run_dir, tmp_path, capsys, content):
    run = _copy(run_dir, tmp_path / "run")
    (run / "ensemble.json").write_text(content)
    code = main(["predict", "--run", str(run), "--data", str(tiny_curated), "--out", str(tmp_path / "p.csv")])
    assert "ensemble" in _one_line_error(capsys, code, "predict")


@pytest.mark.parametrize("edit, message", [
    (lambda ck: {**ck, "config": "{not json"}, "not JSON"),
    (lambda ck: {**ck, "config": json.dumps({**json.loads(ck["config"]),
                                             "data": {**json.loads(ck["config"])["data"], "warp_size": 40000}})},
     "warp_size"),
    (lambda ck: {**ck, "model": {"features.0.weight": torch.zeros(2)}}, "do not fit"),
    (lambda ck: {**ck, "model": "weights"}, "no table of weights"),
])
def test_a_hostile_best_pt_is_a_clear_error(tiny_curated, run_dir, tmp_path, capsys, edit, message):
    run = _copy(run_dir, tmp_path / "run")
    ck = torch.load(run / "best.pt", weights_only=True)
    torch.save(edit(ck), run / "best.pt")
    code = main(["predict", "--run", str(run), "--data", str(tiny_curated), "--out", str(tmp_path / "p.csv")])
    assert message in _one_line_error(capsys, code, "predict")


def test_an_images_parquet_that_is_not_parquet_is_a_clear_error(tiny_curated, tmp_path, capsys):
    bad = _copy(tiny_curated, tmp_path / "curated")
    shutil.copytree(tiny_curated.parent / "release", tmp_path / "release")
    (bad / "images.parquet").write_text("image_id,score\n")
    with pytest.raises(SourceError, match="not a readable parquet table"):
        sources.load(bad)
    code = main(["consistency", "--data", str(bad), "--out", str(tmp_path / "c")])
    assert "images.parquet" in _one_line_error(capsys, code, "consistency")


@pytest.mark.parametrize("field", ["²", "99999999999999999999999", "٣", "３"])
def test_ava_numbers_follow_the_curation_number_rule(tmp_path, field):
    good = "1 953619 0 1 5 17 38 36 15 6 5 1 1 22 1396"
    (tmp_path / "AVA.txt").write_text(good + "\n" + good.replace(" 17 ", f" {field} ").replace("953619", "953620") + "\n",
                                      encoding="utf-8")
    with pytest.raises(InputError, match="line 2: fields must be non-negative integers in ASCII digits"):
        read_ava_txt(tmp_path / "AVA.txt")
    (tmp_path / "AVA.txt").write_text(good + "\n", encoding="utf-8")
    assert read_ava_txt(tmp_path / "AVA.txt")["votes_4"].tolist() == [17]


def test_a_file_size_limit_at_a_checkpoint_is_a_clear_error_and_nothing_is_half_written(tiny_curated, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(TrainingInterrupted):  # checkpoint and pixel cache in place; the resumed run only writes
        train(load_config("reg", TINY), tiny_curated, run, progress=False, stop_after_steps=2)
    before = (run / "checkpoint.pt").read_bytes()
    limit = len(before) * 2 // 3  # best.pt (weights only) fits; checkpoint.pt (weights and momentum) does not
    code = ("import resource, sys\nfrom aadb_toolkit.cli import main\n"
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))\n"
            f"sys.exit(main({['train', '--config', 'reg', '--data', str(tiny_curated), '--out', str(run), '--no-progress', *SETS]!r}))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    assert p.returncode == 1, p.stderr
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("aadb train: error: ") and "checkpoint.pt" in last and "File too large" in last, p.stderr
    assert (run / "checkpoint.pt").read_bytes() == before  # the last complete checkpoint, untouched
    assert not [f for f in os.listdir(run) if f.endswith(".tmp")]


def test_a_metrics_log_cut_short_is_repaired_on_resume(tiny_curated, tmp_path, caplog):
    run = tmp_path / "run"
    cfg = load_config("reg", TINY)
    with pytest.raises(TrainingInterrupted):
        train(cfg, tiny_curated, run, progress=False, stop_after_steps=2)
    with open(run / "metrics.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"kind": "train", "st')  # an append cut short by a kill or a full disk
    assert train(cfg, tiny_curated, run, progress=False).stopped == "completed"
    assert "cut short" in caplog.text
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps)
    (run / "metrics.jsonl").write_text('{"step": 1}\n{broken\n{"step": 2}\n')
    with pytest.raises(InputError, match="row 2"):
        train(cfg, tiny_curated, run, progress=False)


def test_an_argument_that_is_not_utf8_is_a_clear_error(tiny_curated, tmp_path, capsys):
    out = os.fsdecode(bytes(tmp_path) + b"/run-\xff")
    code = main(["train", "--config", "reg", "--data", str(tiny_curated), "--out", out, *SETS])
    assert "not valid UTF-8" in _one_line_error(capsys, code, "train")
    assert os.listdir(tmp_path) == []


def test_push_without_network_is_a_clear_error(published, monkeypatch):
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(AADBError, match="cannot reach") as e:
        hub.push(published, "org/aadb", token="hf_not_a_real_token")
    assert "hf_not_a_real_token" not in str(e.value)


def test_an_unexpected_exception_is_one_line_with_a_way_to_the_traceback(monkeypatch, capsys):
    import aadb_toolkit.cli.baselines as command

    def broken(args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(command, "run", broken)
    monkeypatch.delenv("AADB_TRACEBACK", raising=False)
    assert main(["baselines"]) == 70
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "ZeroDivisionError" in err and "AADB_TRACEBACK=1" in err
    monkeypatch.setenv("AADB_TRACEBACK", "1")
    with pytest.raises(ZeroDivisionError):
        main(["baselines"])

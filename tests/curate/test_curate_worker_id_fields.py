"""A raw WorkerId inside another field (review 2026-12, curation stage): an image URL, a HIT id, an
image file name or a label line that contains a WorkerId never brings it into an output, a log
line or an error. Text fields of report entries are redacted; data that would be published
(batch_id, image_id, source_url) is refused, naming the row and field but not the id."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from curate_release_writer import IMAGE_DIR, LABEL_DIR, WORKERS, build_release, jpeg
from test_curate_safety import _all_text

from aadb_toolkit.cli import main
from aadb_toolkit.curate import curate
from aadb_toolkit.curate._ledger import ENTRY_FIELDS, Ledger
from aadb_toolkit.errors import InputError

WORKER = WORKERS[0]
SCORE_FILE = "imgListTrainRegression_score.txt"


def _assert_no_worker_id(text: str) -> None:
    for w in WORKERS:
        assert w not in text, w


def _curate_cli(root: Path, out: Path, capsys, caplog) -> tuple[int, str]:
    """Run ``aadb -v curate`` and return its exit code and everything it said (stderr, stdout, logs)."""
    caplog.set_level(logging.DEBUG)
    code = main(["-v", "curate", "--release", str(root), "--out", str(out), "--workers", "1", "--no-progress"])
    said = capsys.readouterr()
    return code, said.err + said.out + caplog.text


def _assert_refused_without_the_id(root: Path, tmp_path: Path, capsys, caplog, **options) -> InputError:
    """Curation of ``root`` (library and ``aadb -v curate``) stops naming no WorkerId and writes nothing."""
    with pytest.raises(InputError, match="contains a WorkerId") as err:
        curate(root, tmp_path / "out", workers=1, progress=False, **options)
    _assert_no_worker_id(str(err.value))
    code, said = _curate_cli(root, tmp_path / "out", capsys, caplog)
    assert code == 1 and "contains a WorkerId" in said
    _assert_no_worker_id(said)
    assert not (tmp_path / "out").exists()
    return err.value


def test_every_text_field_of_a_ledger_entry_is_redacted():
    ledger = Ledger(redact={WORKER})
    ledger.add("row", "excluded", "duplicate_submission", file=f"{IMAGE_DIR}/{WORKER}.jpg",
               column=f"Answer.{WORKER}", image_id=f"{WORKER}.jpg", value=f"Pending {WORKER}",
               detail=f"same worker and HIT 'HIT_{WORKER}' as row 3")
    [entry] = ledger.entries
    _assert_no_worker_id(json.dumps(entry))
    for name in ("file", "column", "image_id", "value", "detail"):
        assert "<redacted: WorkerId>" in entry[name], name
    assert set(entry) == set(ENTRY_FIELDS)


def test_a_label_line_naming_a_worker_id_is_redacted_in_the_report(tmp_path, capsys, caplog):
    rel = build_release(3)
    rel.labels[SCORE_FILE] += f"{WORKER}.jpg 0.5000\n"
    root = rel.write(tmp_path / "r")
    code, said = _curate_cli(root, tmp_path / "out", capsys, caplog)
    assert code == 0
    _assert_no_worker_id(_all_text(tmp_path / "out") + said)
    report = json.loads((tmp_path / "out" / "curation_report.json").read_text())
    [entry] = [e for e in report["entries"] if e["reason"] == "label_without_image"]
    assert (entry["file"], entry["image_id"]) == (f"{LABEL_DIR}/{SCORE_FILE}", "<redacted: WorkerId>.jpg")


def test_a_hit_id_containing_a_worker_id_is_refused_without_quoting_it(tmp_path, capsys, caplog):
    rel = build_release(3)
    hit = rel.rows[5]["HITId"]
    for r in rel.rows:
        if r["HITId"] == hit:
            r["HITId"] = f"HIT_{rel.rows[5]['WorkerId']}"
    rel.rows.append(dict(rel.rows[5], SubmitTime="Sat Jan 01 10:00:00 PDT 2022"))  # a repeat names the HIT
    err = _assert_refused_without_the_id(rel.write(tmp_path / "r"), tmp_path, capsys, caplog)
    assert (err.row, err.field) == (6, "HITId")


def test_an_image_url_containing_a_worker_id_is_refused_without_quoting_it(tmp_path, capsys, caplog):
    rel = build_release(3)
    rel.rows[0]["Input.image_url1"] = f"https://example.com/img/{WORKERS[4]}"
    err = _assert_refused_without_the_id(rel.write(tmp_path / "r"), tmp_path, capsys, caplog, on_bad_value="exclude")
    assert (err.row, err.field) == (1, "Input.image_url1")


def test_an_image_file_named_with_a_worker_id_is_refused_without_quoting_it(tmp_path, capsys, caplog):
    root = build_release(3).write(tmp_path / "r")
    (root / IMAGE_DIR / f"{WORKER}.jpg").write_bytes(jpeg(8, 8))
    _assert_refused_without_the_id(root, tmp_path, capsys, caplog)

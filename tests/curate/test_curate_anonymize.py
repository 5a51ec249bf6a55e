"""Rater anonymization: stable for one key, different for another, and neither the key nor any
raw WorkerId appears in any output file (checked on the bytes, including compressed parquet)."""

from __future__ import annotations

import json
import logging
import stat

import pandas as pd
import pyarrow.parquet as pq
import pytest
from curate_release_writer import WORKERS, build_release

from aadb_toolkit.cli import main
from aadb_toolkit.curate import anonymize, curate, key_fingerprint, resolve_key
from aadb_toolkit.errors import InputError


def _all_output_bytes(folder) -> list[tuple[str, bytes]]:
    """Every file's bytes, plus the decoded text of every parquet column (compression could hide
    a string from a plain byte search)."""
    out = []
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            out.append((p.name, p.read_bytes()))
            if p.suffix == ".parquet":
                table = pq.read_table(p)
                text = table.to_pandas().to_csv(index=False).encode()
                meta = json.dumps({k.decode(): v.decode(errors="replace") for k, v in
                                   (table.schema.metadata or {}).items()}).encode()
                out.append((p.name + " (decoded)", text + meta))
    return out


def test_ids_stable_for_one_key_and_different_for_another(tmp_path):
    root = build_release(3).write(tmp_path / "r")
    k1, k2 = b"first-key-0123456789abcdef", b"second-key-0123456789abcdef"
    curate(root, tmp_path / "a", key=k1, workers=1)
    curate(root, tmp_path / "b", key=k1, workers=1)
    curate(root, tmp_path / "c", key=k2, workers=1)
    a, b, c = (pd.read_parquet(tmp_path / x / "ratings.parquet") for x in "abc")
    pd.testing.assert_series_equal(a["rater_id"], b["rater_id"])
    assert set(a["rater_id"]).isdisjoint(set(c["rater_id"]))
    # The mapping is one-to-one: same partition of ratings into raters under both keys.
    assert (a.groupby("rater_id").size().sort_values().tolist() == c.groupby("rater_id").size().sort_values().tolist())
    assert a["rater_id"].str.fullmatch(r"R[0-9a-f]{16}").all()
    assert set(a["rater_id"]) == {anonymize(w, k1) for w in WORKERS}


def test_no_worker_id_or_key_in_any_output(tmp_path, caplog):
    rel = build_release(3)
    rel.rows[4]["Answer.overallScore2"] = rel.rows[4]["WorkerId"]  # a WorkerId where a score should be
    rel.rows[5]["AssignmentStatus"] = "Rejected"
    rel.rows.append(dict(rel.rows[6]))  # a repeated submission (its report entry must not name the worker)
    root = rel.write(tmp_path / "r")
    key_file = tmp_path / "keys" / "rater.key"
    caplog.set_level(logging.DEBUG)
    result = curate(root, tmp_path / "out", key_file=key_file, workers=1, on_bad_value="exclude")
    secret = key_file.read_bytes().strip()
    needles = [w.encode() for w in WORKERS] + [secret, secret.hex().encode()]
    for name, data in _all_output_bytes(tmp_path / "out"):
        for needle in needles:
            assert needle not in data, (name, needle[:4])
    logs = caplog.text.encode() + result.summary().encode() + repr(result).encode()
    for needle in needles:
        assert needle not in logs
    report = json.loads((tmp_path / "out" / "curation_report.json").read_text())
    [bad] = [e for e in report["entries"] if e["reason"] == "non_numeric_score"]
    assert bad["row"] == 5 and bad["value"] == "<redacted: WorkerId>"
    assert str(key_file) in caplog.text  # the user is told where the new key is


def test_key_file_created_private_and_reused(tmp_path):
    path = tmp_path / "cfg" / "rater.key"
    k1 = resolve_key(key_file=path)
    assert k1.created and path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    k2 = resolve_key(key_file=path)
    assert not k2.created and k2.secret == k1.secret and k2.fingerprint == k1.fingerprint
    assert k1.secret.decode() not in repr(k1)


def test_key_from_environment_then_default(tmp_path, monkeypatch):
    env_file = tmp_path / "env.key"
    env_file.write_bytes(b"an-env-key-of-enough-length\n")
    env_file.chmod(0o600)
    monkeypatch.setenv("AADB_RATER_KEY_FILE", str(env_file))
    k = resolve_key()
    assert k.secret == b"an-env-key-of-enough-length" and k.source == str(env_file)
    monkeypatch.delenv("AADB_RATER_KEY_FILE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    k = resolve_key()
    assert k.created and k.source == str(tmp_path / "home" / ".config" / "aadb_toolkit" / "rater.key")


def test_short_or_empty_key_rejected(tmp_path):
    with pytest.raises(InputError, match="at least 16 bytes"):
        resolve_key(key=b"short")
    (tmp_path / "k").write_bytes(b"\n")
    with pytest.raises(InputError, match="fewer than 16 bytes") as err:
        resolve_key(key_file=tmp_path / "k")
    assert err.value.file == str(tmp_path / "k")


def test_fingerprint_identifies_key_without_revealing_it():
    fp = key_fingerprint(b"k" * 20)
    assert fp == key_fingerprint(b"k" * 20) != key_fingerprint(b"j" * 20)
    assert len(fp) == 12 and "kkkk" not in fp


def test_cli_curate_with_key_file_and_answer_columns(tmp_path, capsys):
    rel = build_release(1)
    rel.columns = [c.replace("Answer.depthOfField", "Answer.DoF") for c in rel.columns]
    for r in rel.rows:
        for i in range(1, 11):
            r[f"Answer.DoF{i}"] = r.pop(f"Answer.depthOfField{i}")
    root = rel.write(tmp_path / "r")
    args = ["curate", "--release", str(root), "--out", str(tmp_path / "out"), "--key-file", str(tmp_path / "k"),
            "--workers", "1", "--no-progress"]
    assert main(args) == 1  # the default stem is not in this file
    assert "'Answer.depthOfField1'" in capsys.readouterr().err
    assert main(args + ["--answer-column", "depth_of_field=DoF"]) == 0
    out = capsys.readouterr().out
    assert "curated 10 images, 50 ratings, 1 batches" in out and str(tmp_path / "k") in out
    ratings = pd.read_parquet(tmp_path / "out" / "ratings.parquet")
    assert ratings["depth_of_field"].notna().all()
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["answer_columns"]["depth_of_field"] == "Answer.DoF<i>"
    assert (tmp_path / "k").read_bytes().strip() not in out.encode()

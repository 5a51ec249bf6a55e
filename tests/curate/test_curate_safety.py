"""Safety of curation (issue 9): nothing outside the release is read, no key characters reach an
output, the key is never destroyed or written into the release, a folder the toolkit did not
write is never replaced, and answer numbers follow one documented rule."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pandas as pd
import pytest
from curate_release_writer import IMAGE_DIR, LABEL_DIR, build_release

from aadb_toolkit._atomic import MARKER_FILE
from aadb_toolkit.cli import main
from aadb_toolkit.curate import curate, key_fingerprint
from aadb_toolkit.errors import EXCERPT_CHARS, InputError, OutputError

LIGHT = "imgListTrainRegression_Light.txt"


def _secret_key(tmp_path: Path) -> tuple[Path, bytes]:
    path = tmp_path / "keys" / "rater.key"
    path.parent.mkdir()
    secret = b"0123456789abcdef" * 4  # 64 hex characters, like a generated key
    path.write_bytes(secret + b"\n")
    path.chmod(0o600)
    return path, secret


def _all_text(folder: Path) -> str:
    return "\n".join(p.read_bytes().decode("utf-8", "replace") for p in folder.rglob("*") if p.is_file())


def _longest_shared_run(secret: str, text: str) -> int:
    best = 0
    for i in range(len(secret)):
        for j in range(i + best + 1, len(secret) + 1):
            if secret[i:j] in text:
                best = j - i
            else:
                break
    return best


def test_symlinked_label_file_to_the_key_is_not_read(tmp_path):
    key_file, secret = _secret_key(tmp_path)
    root = build_release(3).write(tmp_path / "r")
    (root / LABEL_DIR / LIGHT).unlink()
    (root / LABEL_DIR / LIGHT).symlink_to(key_file)
    result = curate(root, tmp_path / "out", key_file=key_file, workers=1, progress=False)
    text = _all_text(tmp_path / "out") + result.summary()
    assert _longest_shared_run(secret.decode(), text) < 8  # not even a short run of the key's characters
    [entry] = [e for e in result.report["entries"] if e["reason"] == "link_outside_release"]
    assert entry["file"] == f"{LABEL_DIR}/{LIGHT}"
    with pytest.raises(InputError, match="outside the release") as err:
        curate(root, tmp_path / "out2", key_file=key_file, workers=1, progress=False, strict_labels=True)
    assert secret[:8].decode() not in str(err.value)


def test_symlinks_to_outside_files_are_never_read(tmp_path):
    outside = tmp_path / "passwd"
    outside.write_text("root:x:0:0:root:/root:/bin/bash\n" * 3)
    rel = build_release(1)
    root = rel.write(tmp_path / "r")
    name = sorted(rel.images)[0]
    (root / IMAGE_DIR / name).unlink()
    (root / IMAGE_DIR / name).symlink_to(outside)
    result = curate(root, tmp_path / "out", workers=1, progress=False)
    assert "root:x" not in _all_text(tmp_path / "out")
    ignored = [e for e in result.report["entries"] if e["reason"] == "link_outside_release"]
    assert [e["file"] for e in ignored] == [f"{IMAGE_DIR}/{name}"]
    (root / "AADB_AllinAll.csv").rename(tmp_path / "elsewhere.csv")
    (root / "AADB_AllinAll.csv").symlink_to(tmp_path / "elsewhere.csv")
    with pytest.raises(InputError, match="outside the release"):
        curate(root, tmp_path / "out", workers=1, progress=False)


def test_malformed_label_lines_are_quoted_only_as_short_sanitised_excerpts(tmp_path, capsys):
    rel = build_release(3)
    rel.labels[LIGHT] = ("root:x:0:0:root:/root:/bin/bash and then a long tail of secret text\x1b[31m\n"
                         + rel.labels[LIGHT])
    root = rel.write(tmp_path / "r")
    result = curate(root, tmp_path / "out", workers=1, progress=False)
    [bad] = [e for e in result.report["entries"] if e["reason"] == "malformed_label_line"]
    assert len(bad["value"]) <= EXCERPT_CHARS and "\x1b" not in bad["value"] and "secret" not in bad["value"]
    assert main(["curate", "--release", str(root), "--out", str(tmp_path / "o2"), "--strict-labels",
                 "--workers", "1", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "secret" not in err and "\x1b" not in err


def test_fingerprint_is_a_slow_kdf_and_does_not_give_away_a_missing_tail(tmp_path):
    import hashlib
    import hmac

    secret = b"0123456789abcdef" * 4
    fp = key_fingerprint(secret)
    assert fp != hmac.new(secret, b"aadb-key-id", hashlib.sha256).hexdigest()[:12]  # the old, fast fingerprint
    expected = hashlib.scrypt(secret, salt=b"aadb_toolkit rater-key fingerprint v2", n=2 ** 15, r=8, p=1,
                              maxmem=64 * 2 ** 20, dklen=32).hex()[:12]
    assert fp == expected and len(fp) == 12


def test_key_inside_out_or_release_is_refused_and_nothing_is_created(tmp_path):
    root = build_release(1).write(tmp_path / "r")
    with pytest.raises(InputError, match="inside"):
        curate(root, tmp_path / "c", key_file=tmp_path / "c" / "rater.key", workers=1, progress=False)
    assert not (tmp_path / "c").exists()
    with pytest.raises(InputError, match="inside"):
        curate(root, tmp_path / "c", key_file=root / "rater.key", workers=1, progress=False)
    assert not (root / "rater.key").exists()


def test_world_readable_key_is_an_error_unless_allowed(tmp_path, capsys):
    key_file, _ = _secret_key(tmp_path)
    key_file.chmod(0o644)
    root = build_release(1).write(tmp_path / "r")
    args = ["curate", "--release", str(root), "--out", str(tmp_path / "c"), "--key-file", str(key_file),
            "--workers", "1", "--no-progress"]
    assert main(args) == 1
    assert "chmod 600" in capsys.readouterr().err and not (tmp_path / "c").exists()
    assert main(args + ["--allow-insecure-key"]) == 0
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o644  # the toolkit does not change the user's file


def test_out_over_a_folder_with_a_manifest_is_refused(tmp_path):
    root = build_release(1).write(tmp_path / "r")
    web = tmp_path / "web"
    web.mkdir()
    (web / "manifest.json").write_text('{"name": "my web app"}')
    (web / "index.html").write_text("<html></html>")
    with pytest.raises(OutputError, match="index.html"):
        curate(root, web, workers=1, progress=False)
    assert sorted(p.name for p in web.iterdir()) == ["index.html", "manifest.json"]


def test_user_files_in_a_curated_folder_are_never_deleted(tmp_path):
    root = build_release(1).write(tmp_path / "r")
    out = tmp_path / "c"
    curate(root, out, workers=1, progress=False)
    assert json.loads((out / MARKER_FILE).read_text())["kind"] == "curated"
    curate(root, out, workers=1, progress=False)  # its own folder: replaced
    (out / "my_notes.txt").write_text("keep me")
    with pytest.raises(OutputError, match="my_notes.txt"):
        curate(root, out, workers=1, progress=False)
    assert (out / "my_notes.txt").read_text() == "keep me"


def test_non_utf8_image_name_is_a_finding_and_curation_goes_on(tmp_path):
    rel = build_release(1)
    root = rel.write(tmp_path / "r")
    bad = os.fsencode(root / IMAGE_DIR) + b"/caf\xe9.jpg"
    with open(bad, "wb") as fh:
        fh.write(next(iter(rel.images.values())))
    result = curate(root, tmp_path / "out", workers=1, progress=False)
    [entry] = [e for e in result.report["entries"] if e["reason"] == "name_not_utf8"]
    assert entry["file"] == f"{IMAGE_DIR}/caf\\xe9.jpg"
    assert result.n_images == 10
    (tmp_path / "out" / "curation_report.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("text", ["1e0", "\u0663", "0x3", "inf", "3_0"])
def test_scores_outside_the_number_rule_are_refused_and_reported(tmp_path, text):
    rel = build_release(1)
    rel.rows[2]["Answer.overallScore4"] = text
    root = rel.write(tmp_path / "r")
    with pytest.raises(InputError, match="not a number"):
        curate(root, tmp_path / "out", workers=1, progress=False)
    result = curate(root, tmp_path / "out", workers=1, progress=False, on_bad_value="exclude")
    [bad] = [e for e in result.report["entries"] if e["reason"] == "non_numeric_score"]
    assert (bad["row"], bad["column"], bad["value"]) == (3, "Answer.overallScore4", text)
    assert result.n_ratings == 49


def test_accepted_number_spellings_are_reported(tmp_path):
    rel = build_release(1)
    rel.rows[0]["Answer.overallScore1"] = "5.0"
    rel.rows[1]["Answer.overallScore1"] = "5.0"
    rel.rows[1]["Answer.light2"] = "+1"
    root = rel.write(tmp_path / "r")
    result = curate(root, tmp_path / "out", workers=1, progress=False)
    spell = {e["value"]: e for e in result.report["entries"] if e["reason"] == "number_spelling"}
    assert set(spell) == {"5.0", "+1"} and spell["5.0"]["detail"].startswith("2 answer(s)")
    ratings = pd.read_parquet(tmp_path / "out" / "ratings.parquet")
    assert result.n_ratings == 50 and set(ratings["score"]) <= {1, 2, 3, 4, 5}


def test_script_in_csv_cells_is_escaped_in_the_markdown_report(tmp_path):
    rel = build_release(1)
    rel.rows[0]["Answer.overallScore1"] = "<script>alert(1)</script>"
    root = rel.write(tmp_path / "r")
    curate(root, tmp_path / "out", workers=1, progress=False, on_bad_value="exclude")
    md = (tmp_path / "out" / "curation_report.md").read_text()
    assert "\\<script>" in md and "<script" not in md.replace("\\<script", "")


@pytest.mark.parametrize("which", ["label", "image", "csv"])
def test_an_input_hard_linked_to_the_key_is_refused_without_quoting_it(tmp_path, capsys, which):
    """Issue 17, item 1: a hard link to the key inside the release is the key under another name."""
    key_file, secret = _secret_key(tmp_path)
    root = build_release(3).write(tmp_path / "r")
    if which == "label":
        victim = root / LABEL_DIR / LIGHT
    elif which == "image":
        victim = sorted((root / IMAGE_DIR).iterdir())[0]
    else:
        victim = root / "AADB_AllinAll.csv"
    victim.unlink()
    os.link(key_file, victim)
    args = ["curate", "--release", str(root), "--out", str(tmp_path / "c"), "--key-file", str(key_file),
            "--workers", "1", "--no-progress"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "hard link to the rater key" in err and _longest_shared_run(secret.decode(), err) < 8
    assert not (tmp_path / "c").exists()


def test_curation_records_the_sha256_of_every_image_it_decoded(tmp_path):
    import hashlib

    root = build_release(2).write(tmp_path / "r")
    curate(root, tmp_path / "c", key=b"k" * 32, workers=1, progress=False)
    images = pd.read_parquet(tmp_path / "c" / "images.parquet")
    for rel, digest in zip(images["path"], images["sha256"]):
        assert digest == "sha256:" + hashlib.sha256((root / rel).read_bytes()).hexdigest()


def test_an_answer_column_equal_to_the_key_is_refused_without_quoting_it(tmp_path, capsys):
    key_file, secret = _secret_key(tmp_path)
    root = build_release(2).write(tmp_path / "r")
    args = ["curate", "--release", str(root), "--out", str(tmp_path / "c"), "--key-file", str(key_file),
            "--workers", "1", "--no-progress", "--answer-column"]
    for value in (f"score={secret.decode()}", f"{secret.decode()}=DoF"):
        assert main(args + [value]) == 1
        err = capsys.readouterr().err
        assert "rater key" in err and _longest_shared_run(secret.decode(), err) < 8


def _malformed_label_lines(tmp_path: Path, spelled: str) -> list[dict]:
    """Curate a release whose first light label is written ``spelled``; its malformed-line entries."""
    rel = build_release(3)
    first, rest = rel.labels[LIGHT].split("\n", 1)
    rel.labels[LIGHT] = f"{first.rsplit(None, 1)[0]} {spelled}\n{rest}"
    result = curate(rel.write(tmp_path / "r"), tmp_path / "out", workers=1, progress=False)
    return [e for e in result.report["entries"] if e["reason"] == "malformed_label_line"]


@pytest.mark.parametrize("spelled", ["\u0663", "0\u066b5", "1_0", "\uff11", "0x1", "\u00b9"])
def test_label_values_follow_the_one_number_rule(tmp_path, spelled):
    """A label value in another script's digits, with an underscore or in hex is not a number
    (Python's float() reads "٣" as 3 and "1_0" as 10): the line is malformed, never read as a value."""
    [bad] = _malformed_label_lines(tmp_path, spelled)
    assert (bad["file"], bad["row"]) == (f"{LABEL_DIR}/{LIGHT}", 1)


@pytest.mark.parametrize("spelled", ["0.5", "-0.25", "+0.5", ".5", "5e-01", "1E0"])
def test_plain_label_values_are_read(tmp_path, spelled):
    assert _malformed_label_lines(tmp_path, spelled) == []


@pytest.mark.parametrize("which", ["label", "csv"])
@pytest.mark.parametrize("secret", [b"correct-horse-battery-staple-secret", b"0123456789abcdef" * 4])
def test_an_input_that_is_a_copy_of_the_key_is_refused_without_quoting_it(tmp_path, capsys, which, secret):
    """Review 2026-12-04 (afternoon): a copy of the key over a label file (not a link, so the
    device-and-inode check missed it) was curated with ``--on-bad-value exclude`` and its first 31
    characters landed in the curation report as a malformed label line."""
    key_file = tmp_path / "keys" / "rater.key"
    key_file.parent.mkdir()
    key_file.write_bytes(secret + b"\n")
    key_file.chmod(0o600)
    root = build_release(3).write(tmp_path / "r")
    victim = root / LABEL_DIR / LIGHT if which == "label" else root / "AADB_AllinAll.csv"
    victim.write_bytes(secret + b"\n")
    args = ["curate", "--release", str(root), "--out", str(tmp_path / "c"), "--key-file", str(key_file),
            "--workers", "1", "--no-progress", "--on-bad-value", "exclude"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "rater key" in err and _longest_shared_run(secret.decode(), err) < 8
    assert not (tmp_path / "c").exists()

"""Input safety (issue 9): no file outside the data's own folders is read through paths in a
curated table or symlinks, and --compare refuses malformed results and other protocol versions."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from aadb_toolkit import sources
from aadb_toolkit.cli import main
from aadb_toolkit.errors import SourceError


def _copy(tiny_curated: Path, dest: Path) -> Path:
    shutil.copytree(tiny_curated, dest)
    return dest


def test_publish_refuses_image_paths_leading_out_of_the_release(tiny_curated, tmp_path, capsys):
    cur = _copy(tiny_curated, tmp_path / "cur")
    images = pd.read_parquet(cur / "images.parquet")
    images.loc[0, "path"] = "../../../../etc/passwd"
    images.to_parquet(cur / "images.parquet", index=False)
    assert main(["publish", "--curated", str(cur), "--out", str(tmp_path / "pub")]) == 1
    err = capsys.readouterr().err
    assert "outside the release" in err and "Traceback" not in err
    assert not (tmp_path / "pub").exists()
    images.loc[0, "path"] = "/etc/passwd"
    images.to_parquet(cur / "images.parquet", index=False)
    with pytest.raises(SourceError, match="outside the release"):
        sources.load(cur)


def test_a_symlinked_image_leading_out_of_the_release_is_not_read(tiny_curated, tmp_path):
    cur = _copy(tiny_curated, tmp_path / "cur")
    manifest = json.loads((cur / "manifest.json").read_text())
    release = _copy(Path(manifest["release_root"]), tmp_path / "release")
    manifest["release_root"] = str(release)
    (cur / "manifest.json").write_text(json.dumps(manifest))
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    images = pd.read_parquet(cur / "images.parquet")
    victim = release / images.loc[0, "path"]
    victim.unlink()
    victim.symlink_to(secret)
    data = sources.load(cur)
    assert data.image_bytes(images.loc[1, "image_id"])  # the others are fine
    with pytest.raises(SourceError, match="outside the release"):
        data.image_bytes(images.loc[0, "image_id"])


def _score(tiny_curated: Path, tmp_path: Path) -> tuple[list[str], Path]:
    images = pd.read_parquet(tiny_curated / "images.parquet")
    test = images[images["split"] == "test"]
    sub = tmp_path / "sub.csv"
    sub.write_text("image_id,score\n" + "".join(f"{i},{s}\n" for i, s in zip(test["image_id"], test["score"])))
    base = ["score", "--submission", str(sub), "--protocol", "aadb", "--data", str(tiny_curated), "--n-boot", "10"]
    assert main(base + ["--out", str(tmp_path / "first.json")]) == 0
    return base, tmp_path / "first.json"


@pytest.mark.parametrize("damage", ["version", "metrics_list", "fingerprint_number", "not_json", "metric_text",
                                    "n_images_infinite"])
def test_compare_refuses_malformed_results_and_other_protocol_versions(tiny_curated, tmp_path, capsys, damage):
    base, first = _score(tiny_curated, tmp_path)
    capsys.readouterr()
    doc = json.loads(first.read_text())
    if damage == "version":
        doc["protocol"]["version"] = str(doc["protocol"]["version"]) + ".99"
    elif damage == "metrics_list":
        doc["metrics"] = [1, 2]
    elif damage == "fingerprint_number":
        doc["data"]["fingerprint"] = 12
    elif damage == "metric_text":
        doc["metrics"][doc["protocol"]["main_metric"]]["value"] = "high"
    elif damage == "n_images_infinite":
        doc["data"]["n_images"] = "@@"
    other = tmp_path / "other.json"
    other.write_text("{not json" if damage == "not_json" else json.dumps(doc).replace('"@@"', "1e999"))
    code = main(base + ["--out", str(tmp_path / "second.json"), "--compare", str(other),
                        "--leaderboard", str(tmp_path / "lb.sqlite"), "--name", "x"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert ("not comparable" if damage == "version" else str(other)) in err
    assert not (tmp_path / "second.json").exists()


def test_a_published_folder_never_reads_shards_outside_it(tiny_curated, tmp_path):
    from aadb_toolkit import hub

    pub = tmp_path / "pub"
    hub.publish(sources.load(tiny_curated), pub)
    readme = (pub / "README.md").read_text()
    assert "path: data/train-*" in readme
    (pub / "README.md").write_text(readme.replace("path: data/train-*", "path: ../elsewhere/train-*"))
    with pytest.raises(SourceError, match="missing"):
        sources.load(pub)
    (pub / "README.md").write_text(readme)
    [shard] = sorted((pub / "data").glob("train-*"))
    outside = tmp_path / "elsewhere.parquet"
    shard.rename(outside)
    shard.symlink_to(outside)  # a link leading out of the folder
    with pytest.raises(SourceError, match="missing"):
        sources.load(pub)


# --- issue 17, item 2: the key never reaches stderr; one quoting rule -------------------------
SECRET = "0123456789abcdef" * 4  # 64 hex characters, like a generated key
CUSTOM_SECRET = "Zq-custom-key_3f9a8c7d6e5b4a39281706f5e4d3c2b1"  # a key the user chose, not hex


def _key_8grams(secret: str, text: str) -> list[str]:
    return [secret[i:i + 8] for i in range(len(secret) - 7) if secret[i:i + 8] in text]


def _key_file(tmp_path: Path, monkeypatch, secret: str = SECRET) -> Path:
    key = tmp_path / "keys" / "rater.key"
    key.parent.mkdir(exist_ok=True)
    key.write_text(secret + "\n")
    key.chmod(0o600)
    monkeypatch.setenv("AADB_RATER_KEY_FILE", str(key))
    return key


def _piaa_inputs(tiny_curated: Path, tmp_path: Path) -> tuple[Path, Path]:
    ep_csv = tmp_path / "ep.csv"
    assert main(["piaa", "episodes", "--data", str(tiny_curated), "--out", str(ep_csv), "--k", "10",
                 "--repeats", "1"]) == 0
    episodes = pd.read_csv(ep_csv)
    q = episodes[episodes["role"] == "query"]
    sub = tmp_path / "piaa.csv"
    sub.write_text("rater_id,k,episode,image_id,score\n" + "".join(
        f"{r.rater_id},{r.k},{r.episode},{r.image_id},{i % 5}\n" for i, r in enumerate(q.itertuples())))
    return ep_csv, sub


@pytest.mark.parametrize("secret", [SECRET, CUSTOM_SECRET])
@pytest.mark.parametrize("where", ["submission", "generic", "episodes", "compare", "personalize", "link"])
def test_the_key_file_given_as_any_input_is_refused_without_quoting_it(tiny_curated, tmp_path, monkeypatch,
                                                                       capsys, where, secret):
    key = _key_file(tmp_path, monkeypatch, secret)
    if where == "link":  # a hard link to the key under another name
        os.link(key, tmp_path / "sub_link.csv")
    out = ["--out", str(tmp_path / "r.json")]
    if where in ("submission", "link"):
        argv = ["score", "--submission", str(key if where == "submission" else tmp_path / "sub_link.csv"),
                "--protocol", "aadb", "--data", str(tiny_curated), *out]
    elif where == "compare":
        base, _ = _score(tiny_curated, tmp_path)
        argv = [*base, "--compare", str(key), *out]
    elif where == "personalize":
        argv = ["personalize", "--run", str(tmp_path / "no-run"), "--data", str(tiny_curated), "--episodes",
                str(key), "--out", str(tmp_path / "p.csv")]
    else:
        ep_csv, sub = _piaa_inputs(tiny_curated, tmp_path)
        argv = ["score", "--submission", str(sub), "--protocol", "piaa", "--data", str(tiny_curated), "--n-boot",
                "10", "--episodes", str(key if where == "episodes" else ep_csv), *out]
        if where == "generic":
            argv += ["--generic", str(key)]
    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "rater key" in err and not _key_8grams(secret, err) and "Traceback" not in err


def test_a_huge_episodes_header_is_quoted_in_at_most_32_characters(tiny_curated, tmp_path, capsys):
    bad = tmp_path / "ep.csv"
    bad.write_text("x" * 5000 + ",y\n1,2\n")
    assert main(["score", "--submission", str(bad), "--protocol", "piaa", "--data", str(tiny_curated),
                 "--episodes", str(bad), "--out", str(tmp_path / "r.json")]) == 1
    err = capsys.readouterr().err
    assert "x" * 33 not in err and "Traceback" not in err


def test_a_submission_header_is_quoted_in_at_most_32_characters(tiny_curated, tmp_path, capsys):
    bad = tmp_path / "sub.csv"
    bad.write_text("h" * 200 + "\nimg.jpg,0.5\n")  # two lines: a one-line file is not quoted at all
    assert main(["score", "--submission", str(bad), "--protocol", "aadb", "--data", str(tiny_curated),
                 "--out", str(tmp_path / "r.json")]) == 1
    err = capsys.readouterr().err
    assert "header is" in err and "h" * 33 not in err


def test_one_quoting_rule():
    from aadb_toolkit.errors import EXCERPT_CHARS, excerpt, quote

    assert EXCERPT_CHARS == 32
    assert excerpt("a" * 500, 80) == "a" * 31 + "…"  # no caller gets more than 32
    assert quote("line1\nline2\x1b[31m") == repr("line1?line2?[31m")


def test_a_key_the_commands_do_not_know_is_recognised_by_the_curated_fingerprint(tiny_curated, tmp_path, capsys):
    """A custom key kept elsewhere (not --key-file, not $AADB_RATER_KEY_FILE): the curated manifest's
    key fingerprint still identifies it, so it is refused unquoted."""
    import shutil

    from aadb_toolkit.curate import key_fingerprint

    cur = tmp_path / "cur"
    shutil.copytree(tiny_curated, cur)
    manifest = json.loads((cur / "manifest.json").read_text())
    manifest["key_fingerprint"] = key_fingerprint(CUSTOM_SECRET.encode())
    (cur / "manifest.json").write_text(json.dumps(manifest))
    hidden = tmp_path / "somewhere" / "my.key"
    hidden.parent.mkdir()
    hidden.write_text(CUSTOM_SECRET + "\n")
    assert main(["score", "--submission", str(hidden), "--protocol", "aadb", "--data", str(cur),
                 "--out", str(tmp_path / "r.json")]) == 1
    err = capsys.readouterr().err
    assert "rater key" in err and not _key_8grams(CUSTOM_SECRET, err)


@pytest.mark.parametrize("command", ["score_aadb", "score_piaa_episodes", "personalize_episodes"])
def test_a_one_line_input_is_never_quoted_even_where_no_key_fingerprint_is_recorded(tiny_curated, tmp_path, capsys,
                                                                                      command):
    """Review 2026-12-04: with a published folder as --data (which records no key fingerprint) a
    custom key kept elsewhere, given as --episodes or --submission, was quoted in the header error
    ("header is 'correct-horse-battery-staple-se…'"). A key is one line, and no valid input of the
    toolkit is: a one-line file's content is never quoted."""
    data = tmp_path / "pub"
    assert main(["publish", "--data", str(tiny_curated), "--out", str(data), "--no-progress"]) == 0
    hidden = tmp_path / "somewhere" / "my.key"
    hidden.parent.mkdir()
    hidden.write_text(CUSTOM_SECRET + "\n")
    capsys.readouterr()
    args = {"score_aadb": ["score", "--submission", str(hidden), "--protocol", "aadb"],
            "score_piaa_episodes": ["score", "--submission", str(hidden), "--protocol", "piaa", "--episodes",
                                    str(hidden)],
            "personalize_episodes": ["personalize", "--run", str(tmp_path / "no-run"), "--episodes", str(hidden)],
            }[command]
    out = tmp_path / ("p.csv" if command.startswith("personalize") else "r.json")
    assert main([*args, "--data", str(data), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "one line" in err and not _key_8grams(CUSTOM_SECRET, err) and "Traceback" not in err

"""Input safety (issue 9): no file outside the data's own folders is read through paths in a
curated table or symlinks, and --compare refuses malformed results and other protocol versions."""

from __future__ import annotations

import json
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


@pytest.mark.parametrize("damage", ["version", "metrics_list", "fingerprint_number", "not_json", "metric_text"])
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
    other = tmp_path / "other.json"
    other.write_text("{not json" if damage == "not_json" else json.dumps(doc))
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

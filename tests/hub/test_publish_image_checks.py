"""Published images are checked (issue 17, item 1): a curated folder's ``release_root`` and
``path`` are not capabilities. Every image must match the sha256 recorded at curation and decode
as an image of the expected format, so no other file (the rater key, ``/etc/passwd``) can be
smuggled into a published dataset."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from aadb_toolkit import hub, sources
from aadb_toolkit.cli import main
from aadb_toolkit.data import AADBData
from aadb_toolkit.errors import InputError

SECRET = "0123456789abcdef" * 4  # 64 hex characters, like a generated key


def _hostile_copy(tiny_curated: Path, dest: Path, release_root: str, path: str | None) -> Path:
    """A copy of the tiny curated folder whose manifest and image paths an attacker edited."""
    shutil.copytree(tiny_curated, dest)
    manifest = json.loads((dest / "manifest.json").read_text())
    manifest["release_root"] = release_root
    (dest / "manifest.json").write_text(json.dumps(manifest))
    if path is not None:
        images = pd.read_parquet(dest / "images.parquet")
        images["path"] = path
        images.to_parquet(dest / "images.parquet", index=False)
    return dest


def _key(tmp_path: Path, monkeypatch) -> Path:
    keys = tmp_path / "keys"
    keys.mkdir()
    key = keys / "rater.key"
    key.write_text(SECRET + "\n")
    key.chmod(0o600)
    monkeypatch.setenv("AADB_RATER_KEY_FILE", str(key))
    return key


def _no_key_in(text: str) -> bool:
    return not any(SECRET[i:i + 8] in text for i in range(len(SECRET) - 7))


def _published_bytes(out: Path) -> bytes:
    return b"".join(p.read_bytes() for p in out.rglob("*.parquet")) if out.exists() else b""


def test_publish_refuses_a_release_root_pointing_at_the_key(tiny_curated, tmp_path, monkeypatch, capsys):
    key = _key(tmp_path, monkeypatch)
    h = _hostile_copy(tiny_curated, tmp_path / "h", str(key.parent), key.name)
    assert main(["publish", "--data", str(h), "--out", str(tmp_path / "p")]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and _no_key_in(err)
    assert SECRET.encode()[:16] not in _published_bytes(tmp_path / "p")
    assert not (tmp_path / "p").exists()


def test_a_folder_holding_the_key_is_refused_as_release_root_even_with_valid_paths(tiny_curated, tmp_path,
                                                                                   monkeypatch, capsys):
    release = tmp_path / "release"
    shutil.copytree(tiny_curated.parent / "release", release)
    key = release / "rater.key"
    key.write_text(SECRET + "\n")
    key.chmod(0o600)
    monkeypatch.setenv("AADB_RATER_KEY_FILE", str(key))
    h = _hostile_copy(tiny_curated, tmp_path / "h", str(release), None)
    assert main(["publish", "--data", str(h), "--out", str(tmp_path / "p")]) == 1
    err = capsys.readouterr().err
    assert "rater key" in err and "Traceback" not in err and _no_key_in(err)


def test_publish_never_carries_etc_passwd(tiny_curated, tmp_path, capsys):
    h = _hostile_copy(tiny_curated, tmp_path / "h", "/etc", "passwd")
    assert main(["publish", "--data", str(h), "--out", str(tmp_path / "p")]) == 1
    assert "Traceback" not in capsys.readouterr().err
    assert b"root:" not in _published_bytes(tmp_path / "p")


def test_release_root_slash_is_a_clear_error(tiny_curated, tmp_path, capsys):
    h = _hostile_copy(tiny_curated, tmp_path / "h", "/", "etc/passwd")
    assert main(["publish", "--data", str(h), "--out", str(tmp_path / "p")]) == 1
    err = capsys.readouterr().err
    assert "release_root" in err and "Traceback" not in err


def test_an_image_changed_since_curation_is_refused(tiny_curated, tmp_path, capsys):
    release = tmp_path / "release"
    shutil.copytree(tiny_curated.parent / "release", release)
    h = _hostile_copy(tiny_curated, tmp_path / "h", str(release), None)
    images = pd.read_parquet(h / "images.parquet")
    a, b = (release / images["path"].iloc[i] for i in (0, 1))
    a.write_bytes(b.read_bytes())  # a valid JPEG, but not the bytes curation checked
    assert main(["publish", "--data", str(h), "--out", str(tmp_path / "p")]) == 1
    err = capsys.readouterr().err
    assert "sha256" in err and images["image_id"].iloc[0][:20] in err and "Traceback" not in err
    assert not (tmp_path / "p").exists()


def test_a_curated_folder_without_image_hashes_must_be_curated_again(tiny_curated, tmp_path, capsys):
    h = _hostile_copy(tiny_curated, tmp_path / "h", str((tiny_curated.parent / "release").resolve()), None)
    images = pd.read_parquet(h / "images.parquet").drop(columns="sha256")
    images.to_parquet(h / "images.parquet", index=False)
    assert main(["publish", "--data", str(h), "--out", str(tmp_path / "p")]) == 1
    err = capsys.readouterr().err
    assert "aadb curate" in err and "sha256" in err
    assert not (tmp_path / "p").exists()


def _memory_data(tiny_curated: Path, payload: bytes) -> AADBData:
    data = sources.load(tiny_curated)
    first = data.images["image_id"].iloc[0]
    return AADBData(images=data.images, ratings=data.ratings, origin="mem",
                    read_image_bytes=lambda i: payload if i == first else data.image_bytes(i))


@pytest.mark.parametrize("payload", [SECRET.encode() + b"\n", b"", "png"])
def test_bytes_that_are_not_an_image_of_the_expected_format_are_not_published(tiny_curated, tmp_path, payload):
    if payload == "png":  # an image, but not of the format its name and flags say
        buf = io.BytesIO()
        Image.new("RGB", (48, 48)).save(buf, format="PNG")
        payload = buf.getvalue()
    with pytest.raises(InputError, match="expected format|not decode") as err:
        hub.publish(_memory_data(tiny_curated, payload), tmp_path / "p")
    assert _no_key_in(str(err.value))
    assert not (tmp_path / "p").exists()


def test_the_unchanged_tiny_folder_still_publishes(tiny_curated, tmp_path):
    assert hub.publish(sources.load(tiny_curated), tmp_path / "p").n_images

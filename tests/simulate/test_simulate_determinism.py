"""Same seed → byte-identical release; another seed → a different one."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from aadb_toolkit._atomic import MARKER_FILE

from aadb_toolkit.errors import InputError
from aadb_toolkit.simulate import simulate, truth_dir_for


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_is_byte_identical_and_another_seed_differs(tmp_path):
    kw = dict(n_images=100, quirks=True, random_rater_share=0.1, image_size=(48, 32))
    a = simulate(tmp_path / "a", seed=11, **kw)
    b = simulate(tmp_path / "b", seed=11, **kw)
    c = simulate(tmp_path / "c", seed=12, **kw)
    da, db, dc = _digest(a.release_dir), _digest(b.release_dir), _digest(c.release_dir)
    assert da == db and len(da) > 100
    assert da["AADB_AllinAll.csv"] != dc["AADB_AllinAll.csv"]
    images_a = {k for k in da if k.startswith("datasetImages_originalSize/")}
    images_c = {k for k in dc if k.startswith("datasetImages_originalSize/")}
    assert images_a and not images_a & images_c  # other image names, not just other pixels
    for name in ("images.parquet", "ratings.parquet", "workers.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(a.truth_dir / name), pd.read_parquet(b.truth_dir / name))
    assert (a.truth_dir / "quirks.json").read_bytes() == (b.truth_dir / "quirks.json").read_bytes()


def test_rerun_replaces_a_release_and_truth_sits_beside_it(tmp_path):
    first = simulate(tmp_path / "r", n_images=20, seed=1, image_size=(32, 24))
    assert first.truth_dir == truth_dir_for(tmp_path / "r") == tmp_path / "r.truth"
    assert not any(p.name.endswith((".parquet", ".json")) for p in first.release_dir.rglob("*")
                   if p.name != MARKER_FILE)  # only the toolkit's output marker
    second = simulate(tmp_path / "r", n_images=30, seed=2, image_size=(32, 24))
    assert len(list((second.release_dir / "datasetImages_originalSize").iterdir())) == 30
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r", "r.truth"]  # no staging left over


def test_bad_arguments_are_clear_errors_and_write_nothing(tmp_path):
    with pytest.raises(InputError, match="multiple of 10"):
        simulate(tmp_path / "r", n_images=25)
    with pytest.raises(InputError, match="random_rater_share"):
        simulate(tmp_path / "r", n_images=20, random_rater_share=1.5)
    with pytest.raises(InputError, match="seed"):
        simulate(tmp_path / "r", n_images=20, seed=-1)
    with pytest.raises(InputError, match="image_size"):
        simulate(tmp_path / "r", n_images=20, image_size=(8, 8))
    precious = tmp_path / "notes"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="not a simulated release folder"):
        simulate(precious, n_images=20)
    assert (precious / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes"]

"""A small synthetic AVA with images, shared by the AVA tests (importable: tests is on the path)."""

from __future__ import annotations

from pathlib import Path

from aadb_toolkit.simulate import write_synthetic_ava

N_IMAGES, SEED, SIZE = 400, 7, (72, 54)


def make_small_ava(folder: Path) -> Path:
    """400 images of 72×54 (about 30 test, 7 validation): seconds to write."""
    return write_synthetic_ava(folder / "AVA_dataset", N_IMAGES, seed=SEED, image_size=SIZE, progress=False)

"""The generative model's parameters, read once from ``model.toml`` (configs are data)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .. import schema

MODEL_FILE = Path(__file__).with_name("model.toml")

#: Independent random streams: each part of the release draws from its own generator, so e.g.
#: the assignment plan is the same whether or not images are drawn.
STREAMS = {"workload": 1, "workers": 2, "images": 3, "pixels": 4, "ratings": 5, "ids": 6,
           "times": 7, "quirks": 8, "splits": 9}


def rng(seed: int, stream: str, *more: int) -> np.random.Generator:
    """A generator for one named stream of one seed (and optionally one item of it)."""
    return np.random.default_rng([seed, STREAMS[stream], *more])


@dataclass(frozen=True)
class ContentType:
    """One content type: its share of images, quality offset, typical hue and attribute weights."""

    name: str
    share: float
    offset: float
    hue: float
    weights: np.ndarray  # shape (11,), schema.ATTRIBUTES order, normalised to unit length


@dataclass(frozen=True)
class Model:
    """All parameters of the generator (see model.toml and docs/synthetic.md)."""

    images: dict[str, Any]
    content_types: tuple[ContentType, ...]
    raters: dict[str, Any]
    workload: dict[str, float]
    quirks: dict[str, float]

    @property
    def content_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.content_types)

    @property
    def weight_matrix(self) -> np.ndarray:
        """Attribute weights, shape (n_content_types, 11)."""
        return np.stack([c.weights for c in self.content_types])


@lru_cache(maxsize=1)
def load_model(path: Path = MODEL_FILE) -> Model:
    """Parse and check ``model.toml``; a malformed file raises ``ValueError`` naming the key."""
    with open(path, "rb") as fh:
        raw = tomllib.load(fh)
    types = []
    for name, spec in raw["content_types"].items():
        missing = set(schema.ATTRIBUTES) - set(spec["weights"])
        extra = set(spec["weights"]) - set(schema.ATTRIBUTES)
        if missing or extra:
            raise ValueError(f"{path}: content_types.{name}.weights: missing {sorted(missing)}, "
                             f"unknown {sorted(extra)}")
        w = np.array([float(spec["weights"][a]) for a in schema.ATTRIBUTES])
        types.append(ContentType(name, float(spec["share"]), float(spec["offset"]), float(spec["hue"]),
                                 w / np.linalg.norm(w)))
    shares = sum(t.share for t in types)
    if abs(shares - 1.0) > 1e-9:
        raise ValueError(f"{path}: content type shares sum to {shares}, not 1")
    return Model(raw["images"], tuple(types), raw["raters"], raw["workload"], raw["quirks"])

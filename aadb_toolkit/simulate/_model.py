"""The generative model's parameters, read from ``model.toml`` (configs are data), and the named
*settings* of the generator: partial model files under ``settings/`` (``planted_taste.toml``, …)
whose keys replace the default's, plus dotted ``--set`` overrides (docs/synthetic.md, "Settings")."""

from __future__ import annotations

import copy
import json
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .. import schema
from .._registry import lookup
from ..data import sha256_fingerprint
from ..errors import InputError

MODEL_FILE = Path(__file__).with_name("model.toml")
#: Folder of the named settings: each file holds only the keys it changes from ``model.toml``.
SETTINGS_DIR = Path(__file__).with_name("settings")
#: Name of the unchanged ``model.toml`` (calibrated to the paper's Table 6).
DEFAULT_SETTING = "default"

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
    #: the setting's name ("default", a file under settings/, or a path) and its dotted overrides
    setting: str = DEFAULT_SETTING
    overrides: Mapping[str, Any] = field(default_factory=dict)
    #: every parameter after the setting and the overrides (what the truth records)
    parameters: Mapping[str, Any] = field(default_factory=dict)

    @property
    def content_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.content_types)

    @property
    def weight_matrix(self) -> np.ndarray:
        """Attribute weights, shape (n_content_types, 11), after the content × attribute
        interaction strength λ = ``images.interaction``: each content type's (unit) weights
        become mean + λ·(own − mean), renormalised (λ = 1: the tables as written; 0: one
        weighting for every content type; > 1: the differences between content types magnified)."""
        w = np.stack([c.weights for c in self.content_types])
        lam = float(self.images.get("interaction", 1.0))
        if lam == 1.0:
            return w
        mixed = w.mean(axis=0) + lam * (w - w.mean(axis=0))
        return mixed / np.linalg.norm(mixed, axis=1, keepdims=True)

    def record(self) -> dict[str, Any]:
        """The setting as the truth and provenance record it: name, overrides, every parameter
        and a sha256 of the parameters' canonical JSON."""
        params = json.loads(json.dumps(self.parameters, sort_keys=True))
        return {"setting": self.setting, "overrides": dict(self.overrides), "parameters": params,
                "sha256": sha256_fingerprint([json.dumps(params, sort_keys=True)])}


@lru_cache(maxsize=1)
def load_model(path: Path = MODEL_FILE) -> Model:
    """Parse and check ``model.toml``; a malformed file raises ``ValueError`` naming the key."""
    with open(path, "rb") as fh:
        raw = tomllib.load(fh)
    return _parse(raw, path)


def setting_names() -> list[str]:
    """The named settings: ``default`` and every ``settings/*.toml``."""
    return [DEFAULT_SETTING, *sorted(p.stem for p in SETTINGS_DIR.glob("*.toml"))]


def _merge(base: dict[str, Any], part: Mapping[str, Any], where: str, source: str) -> None:
    """Replace ``base``'s values by ``part``'s in place; a key the default lacks is an error."""
    for key, value in part.items():
        here = f"{where}.{key}" if where else key
        if key not in base:
            lookup(base, key, what=f"model parameter in {source}", field=here)
        if isinstance(base[key], dict):  # a partial table (e.g. some attribute weights) replaces those named
            if not isinstance(value, Mapping):
                raise InputError(f"{source}: {here} is a table, got {value!r}", field=here)
            _merge(base[key], value, here, source)
        else:
            numeric = (int, float)
            ok = (isinstance(value, bool) == isinstance(base[key], bool)
                  and (isinstance(value, numeric) if isinstance(base[key], numeric) else isinstance(value, type(base[key]))))
            if not ok:
                raise InputError(f"{source}: {here} must be a {type(base[key]).__name__}, got {value!r}", field=here)
            base[key] = float(value) if isinstance(base[key], float) and isinstance(value, int) else value


def parse_setting_override(text: str) -> tuple[str, Any]:
    """``"raters.taste_sd=0.5"`` → ``("raters.taste_sd", 0.5)`` (the value read as TOML)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise InputError(f"expected KEY=VALUE such as raters.taste_sd=0.5, got {text!r}", field="--set")
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()
    return key.strip(), parsed


def load_setting(setting: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> Model:
    """The model of a named setting (or a partial model file's path) with dotted ``overrides``
    (``{"raters.taste_sd": 0.5}``) on top; ``None`` and ``"default"`` are ``model.toml`` itself."""
    name = DEFAULT_SETTING if setting is None else str(setting)
    items = tuple(sorted((overrides or {}).items()))
    return _load_setting(name, json.dumps(items))


@lru_cache(maxsize=16)
def _load_setting(name: str, items_json: str) -> Model:
    with open(MODEL_FILE, "rb") as fh:
        raw = tomllib.load(fh)
    if name != DEFAULT_SETTING:
        path = Path(name) if name.endswith(".toml") else None
        if path is None:
            known = {n: SETTINGS_DIR / f"{n}.toml" for n in setting_names() if n != DEFAULT_SETTING}
            path = lookup(known, name, what="simulator setting", field="model")
        try:
            with open(path, "rb") as fh:
                part = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise InputError(f"cannot read the simulator setting: {exc}", file=str(path)) from exc
        part.pop("description", None)
        _merge(raw, part, "", str(path))
    overrides = dict(json.loads(items_json))
    for key, value in overrides.items():
        node: Any = value
        for part_key in reversed(key.split(".")):
            node = {part_key: node}
        _merge(raw, node, "", "--set")
    try:
        model = _parse(copy.deepcopy(raw), Path(name))
    except ValueError as exc:
        raise InputError(str(exc), field="model") from exc
    return Model(model.images, model.content_types, model.raters, model.workload, model.quirks,
                 setting=name, overrides=overrides, parameters=raw)


def _parse(raw: dict[str, Any], path: Path) -> Model:
    """Check a full parameter table and build the :class:`Model`."""
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
    return Model(raw["images"], tuple(types), raw["raters"], raw["workload"], raw["quirks"],
                 parameters=raw)

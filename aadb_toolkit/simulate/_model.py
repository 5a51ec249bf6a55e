"""The generative model's parameters, read from ``model.toml`` (configs are data), and the named
*settings* of the generator: partial model files under ``settings/`` (``planted_taste.toml``, …)
whose keys replace the default's, plus dotted ``--set`` overrides (docs/synthetic.md, "Settings")."""

from __future__ import annotations

import copy
import json
import math
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .. import schema
from .._numbers import MAX_COUNT
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

    def record(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The setting as the truth and provenance record it: name, overrides, the generation
        ``options`` besides seed and size that change a release's bytes (``quirks``,
        ``random_rater_share``, ``image_size``), every parameter, and a sha256 of the canonical
        JSON of the parameters and those options: two releases of one seed and size with the
        same sha256 are byte-identical."""
        params = json.loads(json.dumps(self.parameters, sort_keys=True))
        options = json.loads(json.dumps(dict(options), sort_keys=True))
        canonical = json.dumps({"options": options, "parameters": params}, sort_keys=True)
        return {"setting": self.setting, "overrides": dict(self.overrides), "options": options,
                "parameters": params, "sha256": sha256_fingerprint([canonical])}


@lru_cache(maxsize=1)
def load_model(path: Path = MODEL_FILE) -> Model:
    """Parse and check ``model.toml``; a malformed file raises :class:`InputError` (a
    ``ValueError``) naming the key."""
    with open(path, "rb") as fh:
        raw = tomllib.load(fh)
    return _parse(raw, str(path))


def setting_names() -> list[str]:
    """The named settings: ``default`` and every ``settings/*.toml``."""
    return [DEFAULT_SETTING, *sorted(p.stem for p in SETTINGS_DIR.glob("*.toml"))]


@dataclass(frozen=True)
class Domain:
    """The values one parameter may take (closed bounds, always finite) and what it is, so that a
    bad model file or ``--set`` is refused with its range before anything is drawn, instead of
    ending in NaN scores or a numpy error (docs/synthetic.md, "Parameter domains")."""

    lo: float
    hi: float = math.inf
    what: str = ""
    integer: bool = False

    def holds(self, value: Any) -> bool:
        """Whether ``value`` (a number of the parameter's type) lies in the domain."""
        if self.integer:  # exact; the generator counts in int64: no more than MAX_COUNT
            return self.lo <= value <= min(self.hi, MAX_COUNT)
        try:
            value = float(value)
        except OverflowError:  # an integer too large for a float
            return False
        return math.isfinite(value) and self.lo <= value <= self.hi

    def text(self) -> str:
        """``"a finite number from 0 to 1"``, ``"an integer >= 2"``, ..."""
        kind = "an integer" if self.integer else "a finite number"
        if self.hi < math.inf:
            return f"{kind} from {self.lo:g} to {self.hi:g}"
        return kind if self.lo == -math.inf else f"{kind} >= {self.lo:g}"


_SD = Domain(0.0, what="a standard deviation")
_SHARE = Domain(0.0, 1.0, what="a share")
#: Every parameter's domain, by dotted key (``*``: any content type, attribute or key of the table);
#: docs/synthetic.md, "Parameter domains", lists the same table with the reasons.
DOMAINS: dict[str, Domain] = {
    "images.skill_share": Domain(0.0, 1.0, "the share of the photographer's skill in each strength"),
    "images.spread": _SD,
    "images.jpeg_quality": Domain(1, 95, "Pillow's JPEG quality scale; above 95 is not recommended", integer=True),
    "images.interaction": Domain(0.0, what="an interaction strength: 0 none, 1 the tables as written"),
    "content_types.*.share": Domain(0.0, 1.0, "a share of the images"),
    "content_types.*.offset": Domain(-math.inf, what="a quality offset"),
    "content_types.*.hue": Domain(0.0, 1.0, "a hue on the colour wheel"),
    "content_types.*.weights.*": Domain(-math.inf, what="an attribute weight, normalised with the others"),
    "raters.workers_per_1000_images": Domain(0.0, 500.0, "a pool size: 1,000 images have 500 rating slots"),
    "raters.gain": Domain(0.0, what="how strongly scores follow quality"),
    "raters.bias_sd": _SD, "raters.scale_log_sd": _SD, "raters.taste_sd": _SD, "raters.taste_attribute_sd": _SD,
    "raters.attribute_informativeness": Domain(0.0, 1.0, "the weight of the visible strengths in the votes"),
    "raters.range_effect": Domain(0.0, what="an exponent: 0 switches the range effect off"),
    "raters.range_ref_sd": _SD, "raters.session_light": _SD, "raters.session_heavy": _SD,
    "raters.noise_light": _SD, "raters.noise_heavy": _SD, "raters.noise_log_sd": _SD,
    "raters.heavy_at_hits": Domain(2, what="a number of HITs; its logarithm divides", integer=True),
    "raters.careless_share": _SHARE,
    "raters.careless_max_hits": Domain(0, what="a number of HITs", integer=True),
    "raters.careless_signal": Domain(0.0, 1.0, "a factor on a careless worker's scale"),
    "raters.vote_threshold": Domain(0.0, what="a threshold on the size of strength plus noise"),
    "raters.vote_noise": _SD,
    "raters.vote_noise_power": Domain(0.0, what="an exponent: noisier raters do not vote more cleanly"),
    "raters.submitted_share": _SHARE,
    "workload.*": Domain(0.0, 1.0, "a share of the workers (a survival quantile) or of the HITs"),
    "quirks.*": Domain(0.0, 1.0, "a rate per HIT, assignment or image"),
}
#: The workload curve's survival quantiles, heaviest group first: they must not decrease.
_WORKLOAD_ORDER = ("over_200_images", "over_100_images", "two_batches_from", "one_batch_from")


def _domain(key: str) -> Domain:
    """The domain of the parameter at dotted ``key``."""
    parts = key.split(".")
    if parts[0] == "content_types" and len(parts) > 2:
        parts = ["content_types", "*", parts[2], *(["*"] if len(parts) > 3 else [])]
    found = DOMAINS.get(".".join(parts)) or DOMAINS.get(f"{parts[0]}.*")
    if found is None:  # a parameter added to model.toml without its domain: a bug, not an input
        raise RuntimeError(f"model parameter {key} has no domain in _model.DOMAINS (docs/synthetic.md)")
    return found


def _check_value(key: str, value: Any, source: str) -> None:
    """Raise :class:`InputError` naming ``key`` and its range unless ``value`` is in its domain."""
    domain = _domain(key)
    if not domain.holds(value):
        raise InputError(f"{source}: {key} must be {domain.text()} ({domain.what}), got {value!r}", field=key)


def _same_kind(default: Any, value: Any) -> bool:
    """Whether ``value`` may replace ``default``: a bool only a bool, an int only an int (a float
    would be recorded as given but used truncated), an int or a float a float."""
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def _merge(base: dict[str, Any], part: Mapping[str, Any], where: str, source: str) -> None:
    """Replace ``base``'s values by ``part``'s in place; a key the default lacks, a value of
    another type or one outside its domain is an error naming ``source`` and the key."""
    for key, value in part.items():
        here = f"{where}.{key}" if where else key
        if key not in base:
            lookup(base, key, what=f"model parameter in {source}", field=here)
        if isinstance(base[key], dict):  # a partial table (e.g. some attribute weights) replaces those named
            if not isinstance(value, Mapping):
                raise InputError(f"{source}: {here} is a table, got {value!r}", field=here)
            _merge(base[key], value, here, source)
        else:
            if not _same_kind(base[key], value):
                kind = type(base[key]).__name__
                raise InputError(f"{source}: {here} must be {'an' if kind[0] in 'aeiou' else 'a'} {kind}, "
                                 f"got {value!r}", field=here)
            _check_value(here, value, source)
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
    (``{"raters.taste_sd": 0.5}``) on top; ``None`` and ``"default"`` are ``model.toml`` itself.
    The setting file is read on every call: the cache is keyed on its text, so a file edited
    between two calls is used as it is now."""
    name = DEFAULT_SETTING if setting is None else str(setting)
    items = json.dumps(tuple(sorted((overrides or {}).items())))
    if name == DEFAULT_SETTING:
        return _load_setting(name, items, None, None)
    path = _setting_path(name)
    return _load_setting(name, items, str(path), _read_setting_text(path))


def _setting_path(name: str) -> Path:
    """A partial model file's path as given (``*.toml``), or the file of a named setting."""
    if name.endswith(".toml"):
        return Path(name)
    known = {n: SETTINGS_DIR / f"{n}.toml" for n in setting_names() if n != DEFAULT_SETTING}
    return lookup(known, name, what="simulator setting", field="model")


def _read_setting_text(path: Path) -> str:
    """The text of a partial model file (TOML, hence UTF-8); unreadable or not UTF-8 is an error."""
    try:
        return path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the simulator setting: {exc.strerror or exc}", file=str(path)) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"is not UTF-8 text (byte {exc.start}); a model file is TOML, which is UTF-8",
                         file=str(path)) from None


@lru_cache(maxsize=16)
def _load_setting(name: str, items_json: str, source: str | None, text: str | None) -> Model:
    """The model of setting ``name``: ``model.toml``, then the setting file's ``text`` (read from
    ``source``; None for the default), then the dotted overrides, every value checked."""
    with open(MODEL_FILE, "rb") as fh:
        raw = tomllib.load(fh)
    if text is not None:
        try:
            part = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"cannot read the simulator setting: {exc}", file=source) from None
        part.pop("description", None)
        _merge(raw, part, "", str(source))
    overrides = dict(json.loads(items_json))
    for key, value in overrides.items():
        node: Any = value
        for part_key in reversed(key.split(".")):
            node = {part_key: node}
        _merge(raw, node, "", "--set")
    model = _parse(copy.deepcopy(raw), name)
    return Model(model.images, model.content_types, model.raters, model.workload, model.quirks,
                 setting=name, overrides=overrides, parameters=raw)


def _leaves(table: Mapping[str, Any], where: str = ""):
    """``(dotted key, value)`` of every parameter of a (nested) table."""
    for key, value in table.items():
        here = f"{where}.{key}" if where else key
        if isinstance(value, Mapping):
            yield from _leaves(value, here)
        else:
            yield here, value


def _parse(raw: dict[str, Any], source: str) -> Model:
    """Check a full parameter table (every value in its domain, then the rules that tie values
    together) and build the :class:`Model`; a violation raises :class:`InputError` naming the key."""
    for key, value in _leaves(raw):
        _check_value(key, value, source)
    types = [_content_type(name, spec, source) for name, spec in raw["content_types"].items()]
    shares = sum(t.share for t in types)
    if abs(shares - 1.0) > 1e-9:
        raise InputError(f"{source}: content type shares sum to {shares}, not 1", field="content_types")
    _check_workload(raw["workload"], source)
    model = Model(raw["images"], tuple(types), raw["raters"], raw["workload"], raw["quirks"], parameters=raw)
    _check_weight_matrix(model, source)
    return model


def _content_type(name: str, spec: Mapping[str, Any], source: str) -> ContentType:
    """One content type, its attribute weights normalised to unit length (all zero is refused:
    0 / 0 would make every quality, and so every score, NaN)."""
    key = f"content_types.{name}.weights"
    missing = set(schema.ATTRIBUTES) - set(spec["weights"])
    extra = set(spec["weights"]) - set(schema.ATTRIBUTES)
    if missing or extra:
        raise InputError(f"{source}: {key}: missing {sorted(missing)}, unknown {sorted(extra)}", field=key)
    w = np.array([float(spec["weights"][a]) for a in schema.ATTRIBUTES])
    with np.errstate(over="ignore"):
        norm = np.linalg.norm(w)
    if not (np.isfinite(norm) and norm > 0):
        raise InputError(f"{source}: {key} must not all be zero, nor so large that their squares overflow "
                         f"(they are normalised to unit length), got length {norm:g}", field=key)
    return ContentType(name, float(spec["share"]), float(spec["offset"]), float(spec["hue"]), w / norm)


def _check_workload(workload: Mapping[str, float], source: str) -> None:
    """The workload curve's survival quantiles may not decrease from the heaviest group to the lightest."""
    for low, high in zip(_WORKLOAD_ORDER, _WORKLOAD_ORDER[1:]):
        if workload[low] > workload[high]:
            raise InputError(f"{source}: workload.{low} ({workload[low]:g}) must be <= workload.{high} "
                             f"({workload[high]:g}): the quantiles run from the heaviest workers to the lightest",
                             field=f"workload.{low}")


def _check_weight_matrix(model: Model, source: str) -> None:
    """Every content type keeps usable (unit-length) weights after the interaction strength: λ = 0
    on tables whose mean is zero would leave NaN weights, a λ so large that it overflows zero ones."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        w = model.weight_matrix
        usable = np.isfinite(w).all(axis=1) & np.isclose(np.linalg.norm(w, axis=1), 1.0)
    if not usable.all():
        bad = model.content_names[int(np.argmax(~usable))]
        raise InputError(f"{source}: images.interaction = {model.images['interaction']:g} leaves content type "
                         f"{bad!r} no usable attribute weights (their mix is zero or overflows)",
                         field="images.interaction")

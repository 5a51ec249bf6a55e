"""The scored result: a versioned JSON document that says what was scored (protocol and its version,
submission hash), on what (data fingerprint, number of images), how (seed, bootstrap resamples,
toolkit version), whether the data was synthetic, and what came out (metrics with confidence
intervals, protocol details).

Results whose data fingerprints differ were computed on different test data and are never ranked
together; :func:`comparable` is the one check for that.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import __version__, schema
from .._atomic import small_json_object, write_json
from .._jsonfile import read_json_object
from .._numbers import COUNT, MAX_COUNT
from ..data import dataset_label, setting_record
from ..errors import InputError, excerpt, quote
from ..piaa.episodes import EPISODE_SPLIT_NAME
from ..submissions import MODEL_SIDECAR_MAX_BYTES, MODEL_SIDECAR_SUFFIX, is_model_sidecar  # noqa: F401 (re-exported)

#: Version of the result document layout; bump when a field changes meaning.
RESULT_SCHEMA_VERSION: int = 1
RESULT_FORMAT: str = "aadb-result"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Metric:
    """One metric value with an optional confidence interval (``ci_level`` e.g. 0.95)."""

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    ci_level: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``value`` and, when there is an interval, ``ci_low``/``ci_high``/``ci_level``."""
        d: dict[str, Any] = {"value": _num(self.value)}
        if self.ci_low is not None or self.ci_high is not None:
            d.update(ci_low=_num(self.ci_low), ci_high=_num(self.ci_high), ci_level=self.ci_level)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Metric":
        """Inverse of :meth:`to_dict`."""
        return cls(value=d.get("value"), ci_low=d.get("ci_low"), ci_high=d.get("ci_high"),
                   ci_level=d.get("ci_level"))


@dataclass(frozen=True)
class PairedData:
    """The aligned ground truth and predictions a rank metric was computed on (kept in memory and in
    the leaderboard database for significance tests; not written to the JSON document)."""

    image_ids: tuple[str, ...]
    truth: np.ndarray
    predictions: np.ndarray

    @classmethod
    def from_series(cls, truth: pd.Series, predictions: pd.Series) -> "PairedData":
        """Align two Series indexed by image_id, sorted by image_id."""
        t = truth.copy()
        t.index = t.index.astype(str)
        t = t.sort_index()
        p = predictions.copy()
        p.index = p.index.astype(str)
        p = p.sort_index()
        if t.index.has_duplicates or not t.index.equals(p.index):
            raise ValueError("truth and predictions cover different image ids (or repeat one)")
        return cls(tuple(t.index), t.to_numpy(dtype=float), p.to_numpy(dtype=float))


@dataclass(frozen=True)
class Result:
    """A scored submission (see the module docstring); build with :func:`make_result`."""

    protocol: str
    protocol_version: str
    main_metric: str
    metrics: dict[str, Metric]
    data_fingerprint: str
    submission_sha256: str
    n_images: int
    seed: int
    n_boot: int
    toolkit_version: str = __version__
    created_utc: str = ""
    dataset: str = ""
    split: str = "test"
    synthetic: bool = False
    test_list: str | None = None
    #: For simulated data, the generator's setting that drew it (``{"setting", "overrides", "sha256"}``).
    synthetic_setting: dict[str, Any] | None = None
    details: dict[str, Any] = field(default_factory=dict)
    paired: PairedData | None = field(default=None, compare=False, repr=False)
    #: The model's identity from `aadb predict`'s sidecar (name, config_sha256, run_id, …), or None.
    model: dict[str, Any] | None = None
    #: Versions that produced the numbers (python, numpy, torch, toolkit; git commit in a checkout).
    environment: dict[str, Any] = field(default_factory=dict)
    #: When the evaluation finished and how long it took (``finished_utc``, ``seconds``).
    evaluation: dict[str, Any] = field(default_factory=dict)

    @property
    def main_value(self) -> float | None:
        """Value of the protocol's main metric (what the leaderboard ranks by)."""
        return self.metrics[self.main_metric].value

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (schema :data:`RESULT_SCHEMA_VERSION`)."""
        return {
            "format": RESULT_FORMAT,
            "schema_version": RESULT_SCHEMA_VERSION,
            "protocol": {"name": self.protocol, "version": self.protocol_version, "main_metric": self.main_metric},
            "metrics": {k: m.to_dict() for k, m in self.metrics.items()},
            "data": {"dataset": self.dataset, "split": self.split, "fingerprint": self.data_fingerprint,
                     "n_images": self.n_images, "synthetic": self.synthetic, "test_list": self.test_list,
                     **({"synthetic_setting": self.synthetic_setting} if self.synthetic_setting else {})},
            "submission": {"sha256": self.submission_sha256},
            "settings": {"seed": self.seed, "n_boot": self.n_boot},
            "toolkit_version": self.toolkit_version,
            "created_utc": self.created_utc,
            "model": _jsonable(self.model),
            "environment": _jsonable(self.environment),
            "evaluation": _jsonable(self.evaluation),
            "details": _jsonable(self.details),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, file: str | None = None) -> "Result":
        """Parse a result document, checking its format and schema version."""
        if not isinstance(d, dict) or d.get("format") != RESULT_FORMAT:
            raise InputError(f"not an aadb result document (format is {quote(d.get('format') if isinstance(d, dict) else None)})",
                             file=file)
        if d.get("schema_version") != RESULT_SCHEMA_VERSION:
            raise InputError(f"result schema_version {quote(d.get('schema_version'))} is not supported "
                             f"(this toolkit reads {RESULT_SCHEMA_VERSION})", file=file)
        try:
            p, data, s = d["protocol"], d["data"], d["settings"]
            _check_fields(d, p, data)
            return cls(
                protocol=p["name"], protocol_version=p["version"], main_metric=p["main_metric"],
                metrics={k: Metric.from_dict(v) for k, v in d["metrics"].items()},
                data_fingerprint=data["fingerprint"], submission_sha256=d["submission"]["sha256"],
                n_images=_count(data["n_images"], "data.n_images"), seed=_count(s["seed"], "settings.seed"),
                n_boot=_count(s["n_boot"], "settings.n_boot"),
                toolkit_version=d["toolkit_version"], created_utc=d.get("created_utc", ""),
                dataset=data.get("dataset", ""), split=data.get("split", "test"), details=d.get("details", {}),
                synthetic=_flag(data.get("synthetic", False)), test_list=data.get("test_list"),
                synthetic_setting=_setting(data.get("synthetic_setting")), model=d.get("model"), environment=d.get("environment") or {}, evaluation=d.get("evaluation") or {},
            )
        except _FieldError as exc:  # our own message: the whole field name, values already quoted
            raise InputError(f"malformed result document: {exc}", file=file) from exc
        except KeyError as exc:
            raise InputError(f"malformed result document: missing field {quote(exc.args[0])}", file=file) from exc
        except (TypeError, ValueError, AttributeError, OverflowError) as exc:  # may hold file content: an excerpt only
            raise InputError(f"malformed result document: {excerpt(repr(exc))}", file=file) from exc


class _FieldError(ValueError):
    """A result document's field has the wrong type or value; the message names the field in full
    and repeats a value only through :func:`~aadb_toolkit.errors.quote`."""


def _check_fields(d: dict[str, Any], protocol: Any, data: Any) -> None:
    """Raise ValueError naming the first field of a result document with the wrong type."""
    text = {"protocol.name": protocol.get("name"), "protocol.main_metric": protocol.get("main_metric"),
            "data.fingerprint": data.get("fingerprint"), "submission.sha256": d["submission"].get("sha256")}
    for name, v in text.items():
        if not isinstance(v, str):
            raise _FieldError(f"{name} must be a string, got {type(v).__name__}")
    if not isinstance(d["metrics"], dict) or not all(isinstance(m, dict) for m in d["metrics"].values()):
        raise _FieldError("metrics must map names to objects")
    for k, m in d["metrics"].items():
        for f in ("value", "ci_low", "ci_high"):
            if m.get(f) is not None and (isinstance(m[f], bool) or not isinstance(m[f], (int, float))):
                raise _FieldError(f"metrics.{quote(k)}.{f} must be a number or null")


def make_result(*, provenance: Any = None, **kwargs: Any) -> Result:
    """Build a :class:`Result` stamped with the toolkit version, the environment and the current UTC
    time; a data :class:`~aadb_toolkit.data.Provenance` fills in ``synthetic``, ``test_list`` and marks the
    ``dataset`` label synthetic (``"aadb"`` becomes ``"synthetic-aadb"``)."""
    kwargs.setdefault("created_utc", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    kwargs.setdefault("environment", environment())
    if provenance is not None:
        kwargs.setdefault("synthetic", bool(provenance.synthetic))
        kwargs.setdefault("test_list", provenance.test_list)
        if getattr(provenance, "setting", None) is not None:
            kwargs.setdefault("synthetic_setting", dict(provenance.setting))
        if kwargs.get("dataset"):
            kwargs["dataset"] = dataset_label(kwargs["dataset"], bool(provenance.synthetic))
    return Result(**kwargs)


# MAX_COUNT (int64, _numbers) is the largest count or seed a result document may hold: SQLite's
# INTEGER (the leaderboard stores ``n_images``) and far above any real number of images or seed.


def _count(value: Any, name: str) -> int:
    """A count or seed (``n_images``, ``seed``, ``n_boot``): a whole number from 0 to :data:`MAX_COUNT`,
    ``100.0`` read as 100. JSON allows ``1e999`` (infinity to Python), on which ``int()`` raises
    OverflowError, so each case is checked here and is a malformed document naming the field."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _FieldError(f"{name} must be a number, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):  # (an int of 400 digits is no float)
        raise _FieldError(f"{name} is not a finite number")
    if value != int(value):
        raise _FieldError(f"{name} is not a whole number ({quote(value)})")
    if not 0 <= value <= MAX_COUNT:
        raise _FieldError(f"{name} is out of range ({quote(value)}; 0 to {MAX_COUNT})")
    return int(value)


def _setting(value: Any) -> dict[str, Any] | None:
    """``data.synthetic_setting``: absent, or a setting record (checked like every input)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _FieldError("data.synthetic_setting must be an object")
    try:
        return setting_record(value)
    except ValueError as exc:
        raise _FieldError(f"data.synthetic_setting: {exc.args[0]}") from None  # fixed texts, no file content


def _flag(value: Any) -> bool:
    """A JSON boolean; anything else is a malformed document."""
    if not isinstance(value, bool):
        raise _FieldError(f"data.synthetic must be true or false, got {quote(value)}")
    return value


def environment() -> dict[str, Any]:
    """The versions a result depends on, and the git commit when the toolkit runs from a checkout."""
    from importlib import metadata

    def version(package: str) -> str | None:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    return {"python": platform.python_version(), "platform": sys.platform, "aadb_toolkit": __version__,
            "numpy": np.__version__, "pandas": pd.__version__, "scipy": version("scipy"), "torch": version("torch"),
            "git_commit": _git_commit()}


def _git_commit() -> str | None:
    checkout = Path(__file__).resolve().parents[2]
    if not ((checkout / ".git").exists() and (checkout / "pyproject.toml").is_file()):
        return None
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=checkout, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and len(commit) == 40 else None


_HEX16, _HEX64 = re.compile(r"[0-9a-f]{16}"), re.compile(r"[0-9a-f]{64}")
_NAME_MAX_CHARS = 128


def _paper_rows(table: object) -> list[str] | None:
    from .. import paper

    rows = getattr(paper, table, None) if isinstance(table, str) and table.startswith("TABLE") else None
    return [str(k) for k in rows] if isinstance(rows, dict) else None


#: The fields of a model sidecar (what :func:`aadb_toolkit.models.predict.model_identity` writes,
#: plus the predictions' hash), each with its check; only these are recorded in a result.
SIDECAR_FIELDS: dict[str, Any] = {
    "name": lambda v, d: isinstance(v, str) and 0 < len(v) <= _NAME_MAX_CHARS and v.isprintable(),
    "config_sha256": lambda v, d: isinstance(v, str) and bool(_HEX64.fullmatch(v)),
    "weights_sha256": lambda v, d: isinstance(v, str) and bool(_HEX64.fullmatch(v)),
    "run_id": lambda v, d: isinstance(v, str) and bool(_HEX16.fullmatch(v)) and v == str(d.get("weights_sha256"))[:16],
    "weights": lambda v, d: v in ("best", "last"),
    "split": lambda v, d: v in (*schema.SPLITS, EPISODE_SPLIT_NAME),  # the last: piaa's queries
    "paper_table": lambda v, d: v is None or _paper_rows(v) is not None,
    "paper_row": lambda v, d: (v is None and d.get("paper_table") is None) or v in (_paper_rows(d.get("paper_table")) or ()),
    "members": lambda v, d: isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 1000,
    "predictions_sha256": lambda v, d: isinstance(v, str) and v.startswith("sha256:") and bool(_HEX64.fullmatch(v[7:])),
    "backbone": lambda v, d: _is_backbone(v),
    "trained_on": lambda v, d: isinstance(v, list) and len(v) <= 32 and all(
        isinstance(e, str) and bool(_TRAINED_ON.fullmatch(e)) for e in v),
    "personalizer": lambda v, d: _is_personalizer(v),
}
_OPTIONAL_SIDECAR_FIELDS = frozenset({"members", "backbone", "trained_on", "personalizer"})
#: a ``trained_on`` entry: ``dataset`` or ``dataset:split``
_TRAINED_ON = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}(:[a-z0-9_.-]{1,32})?")


def _short_text(v: object, n: int = 256) -> bool:
    return v is None or (isinstance(v, str) and len(v) <= n and v.isprintable())


def _is_personalizer(v: object) -> bool:
    """A personalized submission's reference personalizer (``aadb personalize``): its method, the
    ridge penalty as given (``auto``: chosen on the train split, or a positive number) and, where
    penalties were chosen on the train split, each one per k (:func:`_is_chosen_penalty`)."""
    if not (isinstance(v, dict) and set(v) - {"chosen"} == {"method", "alpha"} and isinstance(v["method"], str)):
        return False
    return (0 < len(v["method"]) <= 32 and v["method"].isprintable() and (v["alpha"] == "auto" or _positive(v["alpha"]))
            and ("chosen" not in v or _is_chosen_penalty(v["chosen"])))


def _is_chosen_penalty(v: object) -> bool:
    """``{"alpha" | "pull": {"<k>": penalty}}`` (``aadb_toolkit.piaa.personalize.personalizer_record``):
    one penalty name, and per k (at most 32 of them) a positive number or ``"inf"`` (no correction)."""
    if not (isinstance(v, dict) and len(v) == 1 and set(v) <= {"alpha", "pull"}):
        return False
    per_k = next(iter(v.values()))
    return isinstance(per_k, dict) and 0 < len(per_k) <= 32 and all(
        isinstance(k, str) and COUNT.fullmatch(k) is not None and len(k) <= 6 and (p == "inf" or _positive(p)) for k, p in per_k.items())


def _positive(v: object) -> bool:
    """A finite positive JSON number (not a boolean)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def _is_backbone(v: object) -> bool:
    """A sidecar's backbone identity: family, weights id, weights sha256, pretraining data."""
    keys = {"family", "weights_id", "weights_sha256", "pretraining_data"}
    return (isinstance(v, dict) and set(v) <= keys and isinstance(v.get("family"), str) and _short_text(v["family"], 64)
            and _short_text(v.get("weights_id")) and _short_text(v.get("pretraining_data"))
            and (v.get("weights_sha256") is None or (isinstance(v["weights_sha256"], str)
                                                     and bool(_HEX64.fullmatch(v["weights_sha256"])))))


def read_model_sidecar(submission: str | os.PathLike[str], submission_sha256: str) -> dict[str, Any] | None:
    """The model identity written beside a predictions CSV, or None when there is none. Its size
    and every field (:data:`SIDECAR_FIELDS`) are checked, and only those fields are returned; a
    sidecar that belongs to other bytes (the CSV was edited or replaced) is ignored, with a warning."""
    path = Path(str(submission) + MODEL_SIDECAR_SUFFIX)
    if not path.is_file():
        return None
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"cannot read the model sidecar: {excerpt(exc)}", file=str(path)) from exc
    if size > MODEL_SIDECAR_MAX_BYTES:
        raise InputError(f"not a model sidecar: {size:,} bytes, over the limit of {MODEL_SIDECAR_MAX_BYTES:,} "
                         "bytes", file=str(path))
    d = read_json_object(path, "the model sidecar")
    bad = [k for k, ok in SIDECAR_FIELDS.items()
           if (k in d or k not in _OPTIONAL_SIDECAR_FIELDS) and not ok(d.get(k), d)]
    if bad:
        raise InputError(f"not a model sidecar the toolkit wrote: field(s) {', '.join(bad)} missing or malformed "
                         "(aadb predict writes it; delete it or predict again)", file=str(path))
    if d["predictions_sha256"] != submission_sha256:
        log.warning("%s: written for other predictions than %s; the model is not recorded", path, submission)
        return None
    extra = sorted(set(d) - set(SIDECAR_FIELDS))
    if extra:
        log.warning("%s: field(s) %s are not part of a model sidecar and are not recorded", path,
                    ", ".join(quote(k) for k in extra[:5]))
    return {k: d[k] for k in SIDECAR_FIELDS if k in d}


def contamination(model: dict[str, Any] | None, dataset: str, split: str) -> list[str]:
    """The entries of a model identity that overlap the scored data: a ``trained_on`` entry naming
    the scored data set with no split, ``all`` or a scored split (e.g. a predictor trained on all
    of AVA, scored on AVA's test set; or on AADB's validation split, scored by piaa on
    ``validation+test``), or backbone pretraining data that names it. A synthetic data set counts
    as the one it stands in for (``synthetic-aadb`` as ``aadb``), as runs trained on it record."""
    if not model:
        return []
    scored = {d.removeprefix("synthetic-") for d in dataset.lower().split("+")}
    splits = {"", "all", *split.lower().split("+")}
    hits = []
    for entry in model.get("trained_on") or []:
        name, _, part = str(entry).lower().partition(":")
        if name in scored and part in splits:
            hits.append(str(entry))
    pretraining = str((model.get("backbone") or {}).get("pretraining_data") or "")
    hits += [f"pretraining:{pretraining}" for d in sorted(scored) if d and d in pretraining.lower().replace("-", " ").split()]
    return hits


def write_result(path: str | os.PathLike[str], result: Result) -> Path:
    """Write the result document atomically (a failure never leaves a half-written file)."""
    write_json(path, result.to_dict())
    return Path(path)


def read_result(path: str | os.PathLike[str]) -> Result:
    """Read a result document written by :func:`write_result`."""
    return Result.from_dict(read_json_object(path, "result document"), file=str(path))


def is_result_file(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` holds a result document (the toolkit's ``format``), so writing a result
    over it replaces a result, never another file."""
    d = small_json_object(path, _MAX_RESULT_BYTES)
    return d is not None and d.get("format") == RESULT_FORMAT


_MAX_RESULT_BYTES = 256 * 2 ** 20


def comparable(a: Result, b: Result) -> bool:
    """True when two results can be ranked together: same protocol, protocol version (a new version
    may score differently) and data fingerprint, and both on real or both on synthetic data."""
    return (a.protocol == b.protocol and str(a.protocol_version) == str(b.protocol_version)
            and a.data_fingerprint == b.data_fingerprint and a.synthetic == b.synthetic)


def _num(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def _jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays and NaN (→ None) so the document is strict JSON."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return None if math.isnan(f) or math.isinf(f) else f
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj

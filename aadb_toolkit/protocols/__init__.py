"""Benchmark protocols (docs/protocols.md): each is a declared :class:`Protocol` (name, version, main
metric, the data and splits it needs, the inputs it takes) in one typed registry.

Every protocol module exposes ``evaluate(data, predictions, **inputs) -> Result``: loaded data
(:class:`~aadb_toolkit.data.AADBData`) and predictions in memory (a DataFrame, a Series or an
array, checked with the same rules and messages as a file). Use :func:`evaluate` to score in memory,
:func:`score_submission` (the one adapter from files) to score files, :func:`evaluate_model` to
predict with a model and score in one go, and :func:`get_protocol` to look one up.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from .. import schema
from .._numbers import check_seed
from .._registry import lookup
from ..data import AADBData
from ..errors import InputError
from ..submissions import DEFAULT_MAX_BYTES
from .results import Result, read_result, write_result

__all__ = ["Input", "Protocol", "PROTOCOLS", "ReportedRow", "UnknownProtocolError", "evaluate", "evaluate_model",
           "get_protocol", "score_submission", "Result", "read_result", "write_result"]


@dataclass(frozen=True)
class Input:
    """An input a protocol takes besides the data and the predictions: a keyword of its
    ``evaluate`` and of :func:`score_submission`, and a flag of ``aadb score`` (built from this).

    ``kind`` says what it is: ``predictions`` (more predictions, checked like the submission),
    ``source`` (another data source, loaded by ``sources.load``) or ``episodes`` (an episodes
    table). For a model scored by :func:`evaluate_model`, ``split`` names the split it predicts
    for a ``predictions`` input."""

    name: str
    kind: str
    noun: str  # what messages call it, e.g. "the submitter's validation predictions"
    help: str
    required: bool = False
    split: str | None = None
    metavar: str = "FILE"
    option: str = ""  # the flag when it is not the name's (``--ava`` for ``ava_data``)
    aliases: tuple[str, ...] = ()  # older spellings of the flag, accepted and hidden from help

    @property
    def flag(self) -> str:
        """The ``aadb score`` flag, e.g. ``--validation``."""
        return self.option or "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class ReportedRow:
    """A number the paper reports for a protocol (on its own data): shown on the protocol's
    leaderboard, never ranked against results on other data."""

    name: str
    metrics: dict[str, float]
    source: str


def _resolve(entry: str):
    module, _, attr = entry.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class Protocol:
    """A benchmark protocol, declared: bump ``version`` whenever its numbers could change.

    ``module`` implements it: ``evaluate(data, predictions, **inputs)`` (in memory) and
    ``read_files(data, submission, max_bytes=..., **inputs)`` (the files of :func:`score_submission`
    turned into ``evaluate``'s arguments). ``predicts`` says what a model provides for it
    (``scores`` of a split, per-image ``attributes``; empty: :func:`evaluate_model` does not apply).
    Its leaderboard is rendered from the declaration alone: ranked by ``main_metric``, showing
    ``board_columns`` (empty: the main metric, then every metric the results carry), with the
    paper's rows from ``reported`` (a ``"module:attribute"`` tuple of :class:`ReportedRow`).
    """

    name: str
    version: str
    main_metric: str
    dataset: str  # "aadb", "ava" or "aadb+ava"
    splits: tuple[str, ...]  # splits whose ground truth it reads
    module: str  # the module with evaluate() and read_files()
    description: str
    inputs: tuple[Input, ...] = ()
    predicts: str = "scores"
    header: tuple[str, ...] = ("image_id", "score")  # the columns of its prediction files
    higher_is_better: bool = True
    reported: str = ""
    board_columns: tuple[str, ...] = ()

    def implementation(self) -> ModuleType:
        """Import and return the module that implements the protocol."""
        return importlib.import_module(self.module)

    def input(self, name: str) -> Input | None:
        """The declared input called ``name``, or None when the protocol takes none such."""
        return next((i for i in self.inputs if i.name == name), None)

    def reported_rows(self) -> tuple[ReportedRow, ...]:
        """The paper's reported rows of this protocol (none when it declares none)."""
        return tuple(_resolve(self.reported)) if self.reported else ()


_VALIDATION = Input("validation", "predictions", "the submitter's validation predictions",
                    "validation predictions CSV (ava protocol: chooses the accuracy threshold)", required=True,
                    split="validation")
_AVA_DATA = Input("ava_data", "source", "the AVA folder", "AVA folder (cross-dataset protocol)", required=True,
                  metavar="DIR", option="--ava", aliases=("--ava-data",))
_GENERIC = Input("generic", "predictions", "the submitter's unpersonalized predictions (--generic)",
                 "piaa protocol: the unpersonalized predictions of the same queries (piaa layout, or image_id,score "
                 "for the query images), scored as a reference")
_EPISODES = Input("episodes", "episodes", "an episodes file", "piaa protocol: episodes CSV (default: the protocol's "
                  "episodes of --data, as aadb piaa episodes writes them)")

#: The registry: protocol name → declaration. Add a protocol by adding a row.
PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (
    Protocol("aadb", "1", "spearman", "aadb", ("test",), "aadb_toolkit.protocols.aadb_protocol",
             "Spearman ρ (bootstrap 95% CI), Pearson r and Kendall τ against the mean score on AADB test "
             "(paper Table 2)", reported="aadb_toolkit.protocols.aadb_protocol:REPORTED"),
    Protocol("ava", "1", "spearman", "ava", ("validation", "test"), "aadb_toolkit.protocols.ava_protocol",
             "Spearman ρ on the AVA standard test list and binary accuracy (mean vote > 5) at the threshold "
             "chosen on the submitter's validation predictions (paper Table 3)", inputs=(_VALIDATION,),
             reported="aadb_toolkit.protocols.ava_protocol:REPORTED"),
    Protocol("human", "2", "share_beaten", "aadb", ("test",), "aadb_toolkit.protocols.human_protocol",
             "the model against each AADB rater on that rater's own test images, by rater-workload group "
             "(paper Table 6)", reported="aadb_toolkit.protocols.human_protocol:REPORTED"),
    Protocol("cross-dataset", "1", "mean_transfer_rho", "aadb+ava", ("test",),
             "aadb_toolkit.protocols.cross_dataset_protocol",
             "trained on A, tested on B for A, B in {AADB, AVA}, from a manifest of four prediction files "
             "(paper Table 7)", inputs=(_AVA_DATA,), predicts="",
             reported="aadb_toolkit.protocols.cross_dataset_protocol:REPORTED"),
    Protocol("piaa", "1", "mean_rho", "aadb", ("validation", "test"), "aadb_toolkit.protocols.piaa_protocol",
             "personalized k-shot aesthetics: per-rater Spearman ρ against each rater's own scores on the queries "
             "of seeded episodes (k = 10, 100 support images of the rater's validation/test ratings), mean over "
             "raters with a bootstrap CI, beside generic, leave-one-out and rater-consistency references",
             inputs=(_GENERIC, _EPISODES), predicts="", board_columns=tuple(
                 f"{m}_k{k}" for k in (10, 100) for m in ("rho", "generic_rho", "share_beats_generic", "loo_rho",
                                                          "consistency_rho", "n_raters")),
             header=("rater_id", "k", "episode", "image_id", "score")),
    Protocol("attributes", "2", "mean_rho", "aadb", ("test",), "aadb_toolkit.protocols.attributes_protocol",
             "per-attribute Spearman ρ (bootstrap 95% CI) of a model's predictions of the 11 attributes against "
             "each attribute's mean vote on AADB test, and their mean (the attribute predictions of paper "
             "Fig. 1 and Fig. 7)", predicts="attributes", header=("image_id", "attribute", "score"),
             board_columns=("mean_rho", *(f"rho[{a}]" for a in schema.ATTRIBUTES))),
)}


class UnknownProtocolError(InputError):
    """A protocol name that is not in the registry."""


def get_protocol(name: str) -> Protocol:
    """The declared protocol called ``name``; an unknown name raises with close-match suggestions."""
    return lookup(PROTOCOLS, name, what="protocol", error=UnknownProtocolError, cutoff=0.5)


def layout_hints(protocol: str) -> dict[tuple[str, ...], str]:
    """header → what a file with that header is, for each layout other than the protocol's own: a
    file of another protocol's layout is named as such at once (its rows are not checked)."""
    own = get_protocol(protocol).header
    users: dict[tuple[str, ...], list[str]] = {}
    for p in PROTOCOLS.values():
        if p.header != own:
            users.setdefault(p.header, []).append(p.name)
    return {h: f"this is {'an' if names[0][0] in 'aeiou' else 'a'} {names[0]}-format file (the layout of the "
               f"{', '.join(names)} protocol{'s' if len(names) > 1 else ''}); the {protocol} protocol reads "
               f"{','.join(own)}" for h, names in users.items()}


def all_inputs() -> tuple[Input, ...]:
    """Every input any protocol declares, once each (``aadb score`` has one flag per input)."""
    return tuple({i.name: i for p in PROTOCOLS.values() for i in p.inputs}.values())


def _check_inputs(p: Protocol, inputs: dict[str, Any], n_boot: int, seed: int = 0) -> None:
    """Refuse inputs the protocol does not declare, missing required ones, a negative ``n_boot`` and a
    seed outside every command's range (:func:`~aadb_toolkit._numbers.check_seed`), before anything
    is read."""
    for name, value in inputs.items():
        if value is not None and p.input(name) is None:
            known = {i.name: i for i in all_inputs()}
            if name not in known:
                raise TypeError(f"unknown input {name!r}; protocols take: {', '.join(known)}")
            takers = ", ".join(q.name for q in PROTOCOLS.values() if q.input(name) is not None)
            raise InputError(f"the {p.name} protocol takes no {known[name].flag} (an input of: {takers})")
    for i in p.inputs:
        if i.required and inputs.get(i.name) is None:
            raise InputError(f"the {p.name} protocol needs {i.noun} ({i.flag} {i.metavar})")
    if n_boot < 0:
        raise InputError(f"n_boot must be >= 0, got {n_boot}")
    check_seed(seed)


def evaluate(protocol: str, data: AADBData, predictions: Any, *, n_boot: int = 1000, seed: int = 0,
             progress: bool = False, model: dict | None = None, **inputs: Any) -> Result:
    """Score predictions in memory under a protocol: ``data`` loaded (``sources.load``), the
    predictions and the declared ``inputs`` as DataFrames, Series or arrays (checked with the same
    rules and messages as files; see each protocol's ``evaluate``). ``model`` (e.g.
    :func:`aadb_toolkit.models.predict.model_identity`) is recorded in the result."""
    p = get_protocol(protocol)
    _check_inputs(p, inputs, n_boot, seed)
    started = time.monotonic()
    given = {k: v for k, v in inputs.items() if v is not None}
    result = p.implementation().evaluate(data, predictions, n_boot=n_boot, seed=seed, progress=progress, **given)
    if model is not None:  # as `aadb predict`'s sidecar ties the identity to the predictions it wrote
        model = {**model, "predictions_sha256": predictions_sha256(result)}
    return _stamped(result, model, time.monotonic() - started)


def score_submission(protocol: str, submission: str | os.PathLike[str], data: str | os.PathLike[str], *,
                     n_boot: int = 1000, seed: int = 0, max_bytes: int = DEFAULT_MAX_BYTES, progress: bool = False,
                     **inputs: str | os.PathLike[str] | None) -> Result:
    """The one adapter from files: validate and score a submission file under a protocol. Loads
    ``data`` once (any source ``sources.load`` reads), loads the declared source inputs, reads and
    validates every file (nothing is scored if any fails), and calls the protocol's ``evaluate``.
    The result carries the aligned predictions for significance tests, and the model identity from
    the submission's sidecar when there is one."""
    from .. import sources
    from .results import read_model_sidecar

    p = get_protocol(protocol)
    _check_inputs(p, inputs, n_boot, seed)
    started = time.monotonic()
    loaded = sources.load(data, images=False)
    given: dict[str, Any] = {}
    for i in p.inputs:
        value = inputs.get(i.name)
        if value is not None:
            given[i.name] = sources.load(value, images=False) if i.kind == "source" else Path(value)
    module = p.implementation()
    arguments = module.read_files(loaded, Path(submission), max_bytes=max_bytes, **given)
    result = module.evaluate(loaded, n_boot=n_boot, seed=seed, progress=progress, **arguments)
    model = result.model or read_model_sidecar(submission, predictions_sha256(result))
    return _stamped(result, model, time.monotonic() - started)


def predictions_sha256(result: Result) -> str:
    """The hash of the one predictions file a model sidecar belongs to: the submission's, or, where
    the result covers several files (ava: test and validation), the test predictions' own."""
    return str(result.details.get("test_submission_sha256") or result.submission_sha256)


def evaluate_model(protocol: str, model: Any, data: AADBData, *, n_boot: int = 1000, seed: int = 0,
                   progress: bool = False, device: str | None = None, **inputs: Any) -> Result:
    """Predict and score in one go, in memory: ``model`` is a trained run folder, or a function
    ``predict(data, split) -> DataFrame`` in the layout the protocol scores (``image_id,score``;
    for ``attributes`` ``image_id,attribute,score``). Only protocols whose predictions a model
    makes from images alone apply (not ``piaa`` nor ``cross-dataset``)."""
    p = get_protocol(protocol)
    check_seed(seed)  # before the model predicts
    if not p.predicts:
        raise InputError(f"the {p.name} protocol scores files a model does not write by itself; use "
                         "`aadb score` (see docs/protocols.md)")
    identity = None
    if not callable(model):
        from ..models.predict import model_identity, predictor

        run = model
        identity = model_identity(run)
        model = predictor(run, what=p.predicts, device=device, progress=progress)
    given = dict(inputs)
    for i in p.inputs:
        if i.kind == "predictions" and i.split is not None and given.get(i.name) is None:
            given[i.name] = model(data, i.split)
    predictions = model(data, p.splits[-1])
    return evaluate(p.name, data, predictions, n_boot=n_boot, seed=seed, progress=progress, model=identity, **given)


def _stamped(result: Result, model: dict | None, seconds: float) -> Result:
    """The result with the model identity and the evaluation time."""
    import datetime as dt

    from .results import contamination

    evaluation = {"finished_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                  "seconds": round(seconds, 3)}
    if model is not None and "trained_on" in model:  # the model's identity says what it saw
        model = {**model, "contamination": contamination(model, result.dataset, result.split)}
    return dataclasses.replace(result, model=model if model is not None else result.model,
                               evaluation={**evaluation, **result.evaluation})

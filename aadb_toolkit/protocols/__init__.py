"""Benchmark protocols (docs/protocols.md): each is a declared :class:`Protocol` (name, version, main metric,
the data and splits it needs) in one typed registry, with a lazily imported scoring function.

Use :func:`score_submission` to score a file, :func:`get_protocol` to look one up (unknown names get
close-match suggestions), and :mod:`.results` for the result document.
"""

from __future__ import annotations

import importlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .._registry import lookup
from ..errors import InputError
from ..submissions import DEFAULT_MAX_BYTES
from .results import Result, read_result, write_result

__all__ = ["Protocol", "PROTOCOLS", "ReportedRow", "ScoreRequest", "UnknownProtocolError", "get_protocol", "score_submission",
           "Result", "read_result", "write_result"]


@dataclass(frozen=True)
class ScoreRequest:
    """What a protocol needs to score one submission (see each protocol for what ``data`` is)."""

    submission: Path
    data: str | Path
    validation: Path | None = None
    ava_data: Path | None = None
    n_boot: int = 1000
    seed: int = 0
    max_bytes: int = DEFAULT_MAX_BYTES
    progress: bool = False
    generic: Path | None = None  # piaa: the submitter's unpersonalized predictions
    episodes: Path | None = None  # piaa: an episodes file (default: the protocol's episodes of the data)


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

    Its leaderboard is rendered from the declaration alone: ranked by ``main_metric``, showing
    ``board_columns`` (empty: the main metric, then every metric the results carry), with the
    paper's rows from ``reported`` (a ``"module:attribute"`` tuple of :class:`ReportedRow`).
    """

    name: str
    version: str
    main_metric: str
    dataset: str  # "aadb", "ava" or "aadb+ava"
    splits: tuple[str, ...]  # splits whose ground truth it reads
    entry: str  # "module:function" taking a ScoreRequest, returning a Result
    description: str
    needs_validation: bool = False
    needs_ava_data: bool = False
    higher_is_better: bool = True
    reported: str = ""
    board_columns: tuple[str, ...] = ()
    personalized: bool = False  # scores per-rater episodes; takes --generic and --episodes

    def function(self) -> Callable[[ScoreRequest], Result]:
        """Import and return the scoring function."""
        return _resolve(self.entry)

    def reported_rows(self) -> tuple[ReportedRow, ...]:
        """The paper's reported rows of this protocol (none when it declares none)."""
        return tuple(_resolve(self.reported)) if self.reported else ()


#: The registry: protocol name → declaration. Add a protocol by adding a row.
PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (
    Protocol("aadb", "1", "spearman", "aadb", ("test",), "aadb_toolkit.protocols.aadb_protocol:score",
             "Spearman ρ (bootstrap 95% CI), Pearson r and Kendall τ against the mean score on AADB test "
             "(paper Table 2)", reported="aadb_toolkit.protocols.aadb_protocol:REPORTED"),
    Protocol("ava", "1", "spearman", "ava", ("validation", "test"), "aadb_toolkit.protocols.ava_protocol:score",
             "Spearman ρ on the AVA standard test list and binary accuracy (mean vote > 5) at the threshold "
             "chosen on the submitter's validation predictions (paper Table 3)", needs_validation=True,
             reported="aadb_toolkit.protocols.ava_protocol:REPORTED"),
    Protocol("human", "1", "share_beaten", "aadb", ("test",), "aadb_toolkit.protocols.human_protocol:score",
             "the model against each AADB rater on that rater's own test images, by rater-workload group "
             "(paper Table 6)", reported="aadb_toolkit.protocols.human_protocol:REPORTED"),
    Protocol("cross-dataset", "1", "mean_transfer_rho", "aadb+ava", ("test",),
             "aadb_toolkit.protocols.cross_dataset_protocol:score",
             "trained on A, tested on B for A, B in {AADB, AVA}, from a manifest of four prediction files "
             "(paper Table 7)", needs_ava_data=True, reported="aadb_toolkit.protocols.cross_dataset_protocol:REPORTED"),
    Protocol("piaa", "1", "mean_rho", "aadb", ("validation", "test"), "aadb_toolkit.protocols.piaa_protocol:score",
             "personalized k-shot aesthetics: per-rater Spearman ρ against each rater's own scores on the queries "
             "of seeded episodes (k = 10, 100 support images of the rater's validation/test ratings), mean over "
             "raters with a bootstrap CI, beside generic, leave-one-out and rater-consistency references",
             personalized=True, board_columns=tuple(
                 f"{m}_k{k}" for k in (10, 100) for m in ("rho", "generic_rho", "share_beats_generic", "loo_rho",
                                                          "consistency_rho", "n_raters"))),
)}


class UnknownProtocolError(InputError):
    """A protocol name that is not in the registry."""


def get_protocol(name: str) -> Protocol:
    """The declared protocol called ``name``; an unknown name raises with close-match suggestions."""
    return lookup(PROTOCOLS, name, what="protocol", error=UnknownProtocolError, cutoff=0.5)


def score_submission(protocol: str, submission: str | os.PathLike[str], data: str | os.PathLike[str], *,
                     validation: str | os.PathLike[str] | None = None, ava_data: str | os.PathLike[str] | None = None,
                     n_boot: int = 1000, seed: int = 0, max_bytes: int = DEFAULT_MAX_BYTES,
                     progress: bool = False, generic: str | os.PathLike[str] | None = None,
                     episodes: str | os.PathLike[str] | None = None) -> Result:
    """Validate and score one submission under a protocol; returns the :class:`Result` (with the
    aligned predictions attached for significance tests). Nothing is scored if validation fails."""
    p = get_protocol(protocol)
    if validation is not None and not p.needs_validation:
        raise InputError(f"the {p.name} protocol takes no validation predictions (--validation)")
    if p.needs_validation and validation is None:
        raise InputError(f"the {p.name} protocol needs the submitter's validation predictions (--validation FILE)")
    if p.needs_ava_data and ava_data is None:
        raise InputError(f"the {p.name} protocol needs the AVA folder too (--ava DIR)")
    if ava_data is not None and not p.needs_ava_data:
        raise InputError(f"the {p.name} protocol takes no --ava")
    if (generic is not None or episodes is not None) and not p.personalized:
        raise InputError(f"the {p.name} protocol takes no --generic or --episodes (only personalized protocols do)")
    if n_boot < 0:
        raise InputError(f"n_boot must be >= 0, got {n_boot}")
    request = ScoreRequest(submission=Path(submission), data=data,
                           validation=Path(validation) if validation is not None else None,
                           ava_data=Path(ava_data) if ava_data is not None else None,
                           n_boot=n_boot, seed=seed, max_bytes=max_bytes, progress=progress,
                           generic=Path(generic) if generic is not None else None,
                           episodes=Path(episodes) if episodes is not None else None)
    started = time.monotonic()
    result = p.function()(request)
    return _with_provenance(result, request.submission, time.monotonic() - started)


def _with_provenance(result: Result, submission: Path, seconds: float) -> Result:
    """The result with the model identity from the submission's sidecar and the evaluation time."""
    import dataclasses
    import datetime as dt

    from .results import read_model_sidecar

    model = result.model
    if model is None and submission.is_file():
        model = read_model_sidecar(submission, result.submission_sha256)
    evaluation = {"finished_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                  "seconds": round(seconds, 3)}
    return dataclasses.replace(result, model=model, evaluation={**evaluation, **result.evaluation})

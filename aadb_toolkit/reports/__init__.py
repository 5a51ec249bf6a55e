"""Reports: each kind is one module under ``aadb_toolkit.reports`` declared in :data:`REPORTS`.

A report module declares its command-line options as data (``OPTIONS``, a tuple of
:class:`Option`) and provides ``write_report(data, out_dir, **options) -> dict[str, Path]`` taking loaded data.
``aadb report <kind>`` builds its parser from the declaration; add a kind by adding a row below.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from .._registry import lookup


@dataclass(frozen=True)
class ReportKind:
    """A report kind: its command name, the module that writes it, and a one-line description."""

    name: str
    module: str
    help: str


@dataclass(frozen=True)
class Option:
    """One command-line option of a report kind (passed to ``write_report`` as keyword ``dest``)."""

    flag: str
    dest: str
    help: str
    type: Any = str
    default: Any = None
    choices: tuple[Any, ...] | None = None
    nargs: str | None = None
    action: str | None = None
    aliases: tuple[str, ...] = ()  # older spellings, accepted but hidden from --help


#: report kind → declaration. The registry is data; add a kind by adding a row.
REPORTS: dict[str, ReportKind] = {
    "human-consistency": ReportKind(
        "human-consistency", "aadb_toolkit.reports.human_consistency",
        "batch consistency, Table 6 / Fig. 6 human consistency, Krippendorff's α and per-rater reliability"),
}


def get(name: str) -> ModuleType:
    """Import the module of report kind ``name``; unknown names get close-match suggestions."""
    return importlib.import_module(lookup(REPORTS, name, what="report kind").module)

"""Ensembles (paper §5.3): ``members`` copies of one variant trained with seeds ``seed + k`` into
``out/members/k`` (by :func:`~.trainer.train`), whose predictions are averaged (by
:func:`~.predict.predict`). Members are ordinary run folders, so each one resumes and is reused
like any run. This module only knows the ensemble file."""

from __future__ import annotations

import json
from pathlib import Path

from .._atomic import write_json
from ..errors import InputError
from .config import ModelConfig

ENSEMBLE_FILE = "ensemble.json"
ENSEMBLE_FORMAT = "aadb-ensemble"


def member_dirs(run: str | Path) -> list[Path] | None:
    """The member run folders of an ensemble run folder, or None when ``run`` is a single run."""
    path = Path(run) / ENSEMBLE_FILE
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read ensemble file: {exc}", file=str(path)) from exc
    if not isinstance(doc, dict) or doc.get("format") != ENSEMBLE_FORMAT or not isinstance(doc.get("members"), list):
        raise InputError(f"not an {ENSEMBLE_FORMAT} file", file=str(path))
    if not doc["members"] or not all(isinstance(m, str) and m for m in doc["members"]):
        raise InputError("an ensemble needs at least one member, each a folder name", file=str(path),
                         field="members")
    root = Path(run).resolve()
    dirs = [(root / str(m)).resolve() for m in doc["members"]]
    if any(root not in d.parents for d in dirs):
        raise InputError("an ensemble member lies outside the ensemble's folder", file=str(path))
    return dirs


def write_ensemble_file(out: Path, cfg: ModelConfig, members: list[str]) -> None:
    """Write ``ensemble.json``: the members' folders (relative) and the config."""
    write_json(out / ENSEMBLE_FILE, {"format": ENSEMBLE_FORMAT, "name": cfg.name, "members": members,
                                     "config": cfg.to_dict()})

"""Ensembles (paper §5.3): ``members`` copies of one variant trained with seeds ``seed + k`` into
``out/members/k`` (by :func:`~.trainer.train`), whose predictions are averaged (by
:func:`~.predict.predict`). Members are ordinary run folders, so each one resumes and is reused
like any run. This module only knows the ensemble file and the member folders it lists."""

from __future__ import annotations

import shutil
from pathlib import Path

from .._atomic import write_json
from .._jsonfile import read_json_object
from ..errors import InputError
from .config import ModelConfig

ENSEMBLE_FILE = "ensemble.json"
ENSEMBLE_FORMAT = "aadb-ensemble"
#: the folder of a run folder that holds an ensemble's members (``members/k``)
MEMBERS_DIR = "members"


def member_dirs(run: str | Path) -> list[Path] | None:
    """The member run folders of an ensemble run folder, or None when ``run`` is a single run."""
    path = Path(run) / ENSEMBLE_FILE
    if not path.is_file():
        return None
    doc = read_json_object(path, "ensemble file")
    if doc.get("format") != ENSEMBLE_FORMAT or not isinstance(doc.get("members"), list):
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


def clear_ensemble(out: Path) -> list[Path]:
    """Remove the ensemble a run folder held (when a single model is trained there afresh): the
    member folders its ``ensemble.json`` lists, then ``members/`` if nothing else is left in it,
    then the file. Only what the toolkit wrote goes: a listed member that is not a real folder
    ``members/<name>`` of ``out`` stays, as does everything when the file cannot be read (it is
    removed alone, as before). Members go first: an interrupted removal leaves the record of what
    is left, which the next fresh start removes. Returns the member folders removed."""
    try:
        listed = member_dirs(out) or []
    except InputError:  # a damaged record: which folders the toolkit wrote is unknown
        listed = []
    members = Path(out) / MEMBERS_DIR
    ours = [members / d.name for d in listed if d.parent == members.resolve()]
    removed = [d for d in ours if not members.is_symlink() and d.is_dir() and not d.is_symlink()]
    for d in removed:
        shutil.rmtree(d)
    if removed and not any(members.iterdir()):
        members.rmdir()
    (Path(out) / ENSEMBLE_FILE).unlink(missing_ok=True)
    return removed

"""Ensembles (paper §5.3): ``members`` copies of one variant trained with seeds ``seed + k`` into
``out/members/k``, whose predictions are averaged. Members are ordinary run folders, so each one
resumes and is reused like any run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .._atomic import write_json
from ..errors import InputError
from ..sources import AADBData
from .config import ModelConfig, config_from_dict

ENSEMBLE_FILE = "ensemble.json"
ENSEMBLE_FORMAT = "aadb-ensemble"


def member_dirs(run: str | Path) -> list[Path] | None:
    """The member run folders of an ensemble run folder, or None when ``run`` is a single run."""
    path = Path(run) / ENSEMBLE_FILE
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read ensemble file: {exc}", file=str(path)) from exc
    if doc.get("format") != ENSEMBLE_FORMAT or not isinstance(doc.get("members"), list):
        raise InputError(f"not an {ENSEMBLE_FORMAT} file", file=str(path))
    root = Path(run).resolve()
    dirs = [(root / str(m)).resolve() for m in doc["members"]]
    if any(root not in d.parents for d in dirs):
        raise InputError("an ensemble member lies outside the ensemble's folder", file=str(path))
    return dirs


def train_ensemble(cfg: ModelConfig, data: AADBData, out: Path, *, device: str, **train_kwargs):
    """Train every member (seed ``train.seed + k``), then write ``ensemble.json`` and ``run.json``
    with the validation ρ of the averaged predictions."""
    from .predict import predict
    from .trainer import RUN_SUMMARY, RunResult, _spearman, train

    out = out.absolute()
    single = cfg.to_dict()
    single["ensemble"] = {"members": 1}
    results = []
    for k in range(cfg.ensemble.members):
        member = {**single, "train": {**single["train"], "seed": cfg.train.seed + k}}
        results.append(train(config_from_dict(member, source=f"{cfg.name} member {k}"), data,
                             out / "members" / str(k), device=device, **train_kwargs))
    rel = [f"members/{k}" for k in range(cfg.ensemble.members)]
    write_json(out / ENSEMBLE_FILE, {"format": ENSEMBLE_FORMAT, "name": cfg.name, "members": rel,
                                     "config": cfg.to_dict()})
    val = data.split("validation")
    rho = None
    if not val.empty:
        preds = np.mean([predict(r.run_dir, data, "validation", device=device)["score"].to_numpy()
                         for r in results], axis=0)
        rho = _spearman(preds, val["score"].to_numpy(float))
    write_json(out / RUN_SUMMARY, {"format": "aadb-run", "name": cfg.name, "ensemble_members": rel,
                                   "best_val_rho": rho, "global_step": sum(r.global_step for r in results),
                                   "stopped": "completed" if all(r.stopped == "completed" for r in results)
                                   else "incomplete"})
    first = results[0]
    return RunResult(run_dir=out, config=cfg, device=device, world_size=first.world_size,
                     epochs_completed=first.epochs_completed, global_step=sum(r.global_step for r in results),
                     total_steps=sum(r.total_steps for r in results), val_rho=[rho], best_epoch=None,
                     best_val_rho=rho, stopped="completed" if all(r.stopped == "completed" for r in results)
                     else "time_limit", weights_sha256="", elapsed_s=sum(r.elapsed_s for r in results))

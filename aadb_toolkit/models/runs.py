"""The run folder: its file names and formats, reading and writing its files, and loading the
trained model back (:func:`load_model`). One home for the layout that training writes and that
prediction, ``reproduce`` and the CLI read:

- ``config.json`` — the resolved config; ``run.json`` — the summary (:data:`RUN_SUMMARY`);
- ``checkpoint.pt`` — everything needed to resume bit-identically; ``best.pt`` — the kept weights;
- ``metrics.jsonl`` and ``metrics.png`` — the training log and its figure.

Every ``.pt`` file is read with ``weights_only=True`` and carries a format tag that is checked.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import torch

from .._atomic import atomic_path
from ..errors import InputError
from ..sources import AADBData
from .config import ModelConfig, config_from_dict
from .heads import AestheticsHead, build_network


CHECKPOINT = "checkpoint.pt"

BEST = "best.pt"

METRICS = "metrics.jsonl"

PLOT = "metrics.png"

RUN_SUMMARY = "run.json"

CONFIG_FILE = "config.json"

CHECKPOINT_FORMAT = "aadb-checkpoint"

MODEL_FORMAT = "aadb-model"

RUN_FORMAT = "aadb-run"

#: config keys that may change between an interrupted run and its resumption (they do not change the maths).
RESUMABLE_CHANGES = ("train.max_minutes", "train.checkpoint_every_steps", "train.log_every_steps",
                     "train.eval_batch_size", "data.decode_workers")


@dataclass(frozen=True)
class RunResult:
    """What a training run produced: where, how far it got, and its validation ρ per epoch."""

    run_dir: Path
    config: ModelConfig
    device: str
    world_size: int
    epochs_completed: int
    global_step: int
    total_steps: int
    val_rho: list[float | None] = field(default_factory=list)
    best_epoch: int | None = None
    best_val_rho: float | None = None
    stopped: str = "completed"
    weights_sha256: str = ""
    elapsed_s: float = 0.0
    best_step: int | None = None



def state_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """sha256 over a state dict's names and exact tensor bytes (equal iff bit-identical weights)."""
    h = hashlib.sha256()
    for k in sorted(state):
        t = state[k].detach().cpu().contiguous()
        h.update(k.encode())
        h.update(str(t.dtype).encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()



def save_run_file(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)



def load_run_file(path: Path, expected_format: str) -> dict[str, Any]:
    """Read a checkpoint or model file of a run (``weights_only=True``) and check its format tag."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise InputError("no such file", file=str(path)) from exc
    except Exception as exc:  # torch raises several unrelated types for corrupt files
        raise InputError(f"cannot read as a weights-only torch file: {exc}", file=str(path)) from exc
    if not isinstance(obj, dict) or obj.get("format") != expected_format:
        raise InputError(f"not an {expected_format} file", file=str(path))
    return obj



def config_diff(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(a) | set(b)):
        key = f"{prefix}{k}"
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict) and k != "weights":
            out += config_diff(va, vb, f"{key}.")
        elif va != vb:
            out.append(key)
    return out



def config_json(cfg: ModelConfig) -> str:
    return json.dumps(cfg.to_dict(), sort_keys=True)



def plot_metrics(records: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tr = [r for r in records if r.get("kind") == "train"]
    va = [r for r in records if r.get("kind") == "val" and r.get("val_rho") is not None]
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    ax[0].plot([r["step"] for r in tr], [r["loss"] for r in tr], lw=1)
    ax[0].set(xlabel="step", ylabel="training loss", title=title)
    ax[1].plot([r["step"] for r in va], [r["val_rho"] for r in va], "o-")
    ax[1].set(xlabel="step", ylabel="validation Spearman ρ")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)



def read_metrics(path: Path, upto_step: int | None = None) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    recs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in recs if upto_step is None or r.get("step", 0) <= upto_step]



def training_fingerprint(data: AADBData, byte_digests: Mapping[str, str]) -> str:
    """sha256 over the train/validation rows of the images table (ids, splits, targets, attributes),
    the ratings of those images and the image bytes' digests: equal iff the training data is."""
    from ..data import sha256_fingerprint

    rows = data.images[data.images["split"].isin(["train", "validation"])]
    rows = rows.drop(columns=[c for c in ("path", "flags", "source_url", "license") if c in rows.columns])
    r = data.ratings[data.ratings["image_id"].isin(rows["image_id"])]
    return sha256_fingerprint([
        pd.util.hash_pandas_object(rows.reset_index(drop=True), index=False).to_numpy().tobytes(),
        pd.util.hash_pandas_object(r.reset_index(drop=True), index=False).to_numpy().tobytes(),
        *(f"{k}={byte_digests[k]}\n" for k in sorted(byte_digests)),
    ])



def load_model(run: str | Path, *, which: str = "best", device: str = "cpu") -> tuple[torch.nn.Module, ModelConfig]:
    """The trained network of a run folder (``best.pt``, or the last checkpoint with ``which="last"``)."""
    run = Path(run)
    path = run / (BEST if which == "best" else CHECKPOINT)
    obj = load_run_file(path, MODEL_FORMAT if which == "best" else CHECKPOINT_FORMAT)
    cfg = config_from_dict(json.loads(obj["config"]), source=str(path))
    net = build_network(cfg)
    net.load_state_dict(obj["model"])
    head = net.classifier[6]
    if isinstance(head, AestheticsHead):  # the final stage's branches
        head.active = frozenset(cfg.stages[-1].branches) if cfg.stages else frozenset(cfg.branches)
    return net.to(device).eval(), cfg



def metrics_frame(run: str | Path) -> pd.DataFrame:
    """The run's metrics log as a table (one row per logged record)."""
    return pd.DataFrame(read_metrics(Path(run) / METRICS))



def read_run_json(run: str | Path, name: str) -> dict[str, Any] | None:
    """A JSON file of a run folder (:data:`RUN_SUMMARY` or :data:`CONFIG_FILE`) as a dict, or None
    when it is missing or unreadable (an unfinished or foreign folder, judged by the caller)."""
    try:
        obj = json.loads((Path(run) / name).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return obj if isinstance(obj, dict) else None

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
import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import torch

from .._atomic import atomic_path
from .._jsonfile import json_object_or_none
from ..errors import InputError, excerpt
from ..sources import AADBData
from .config import ModelConfig, config_from_dict
from .heads import AestheticsHead
from .archs._base import load_weights_only
from .network import build_network, upgrade_state

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"
METRICS = "metrics.jsonl"
PLOT = "metrics.png"
RUN_SUMMARY = "run.json"
CONFIG_FILE = "config.json"
CHECKPOINT_FORMAT = "aadb-checkpoint"
MODEL_FORMAT = "aadb-model"
RUN_FORMAT = "aadb-run"
#: A frozen-mode run's backbone, kept once: it never trains there, so its run files hold the head only.
BACKBONE_FILE = "backbone.pt"
BACKBONE_FORMAT = "aadb-frozen-backbone"
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
        t = state[k].detach().cpu().contiguous().reshape(-1)  # 0-dim buffers too
        h.update(k.encode())
        h.update(str(t.dtype).encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()



def save_run_file(obj: Any, path: Path) -> None:
    """Write a checkpoint or model file atomically. It is serialised in memory first and written
    with Python's own file I/O, so a full disk or a file-size limit is an :class:`OSError` naming the
    file (torch's writer reports it as an opaque RuntimeError), and nothing half-written is left."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    try:
        with atomic_path(path) as tmp:
            _write(tmp, buf.getbuffer())
    except OSError as exc:
        if exc.filename is not None:
            raise
        raise OSError(exc.errno, exc.strerror, str(path)) from exc  # a write error names no file by itself



def _write(tmp: Path, data: memoryview) -> None:
    with open(tmp, "wb") as fh:
        fh.write(data)



def run_weights(net: torch.nn.Module, frozen_backbone: Mapping[str, str] | None) -> dict[str, Any]:
    """The weight entries of a run file: ``model``, every weight, or with a ``frozen_backbone``
    record (:func:`keep_frozen_backbone`) the head's only, beside that record."""
    state = net.state_dict()
    if frozen_backbone is None:
        return {"model": state}
    return {"model": {k: v for k, v in state.items() if not k.startswith("backbone.")},
            "frozen_backbone": dict(frozen_backbone)}


def keep_frozen_backbone(net: torch.nn.Module, out: Path) -> dict[str, str]:
    """Write the backbone's weights to ``out/BACKBONE_FILE`` (atomically) unless it holds them
    already; returns the record run files keep (the file's name and the weights' sha256)."""
    state = {k: v for k, v in net.state_dict().items() if k.startswith("backbone.")}
    sha = state_sha256(state)
    path = out / BACKBONE_FILE
    try:
        kept = state_sha256(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["model"])
    except Exception:  # missing, damaged or not ours: written anew
        kept = None
    if kept != sha:
        save_run_file({"format": BACKBONE_FORMAT, "version": 1, "sha256": sha, "model": state}, path)
    return {"file": BACKBONE_FILE, "sha256": sha}


def with_frozen_backbone(obj: Mapping[str, Any], state: Any, run: Path, source: str) -> Any:
    """The weights ``state`` of the run file ``obj`` (read from ``source`` in the run folder
    ``run``) with its frozen backbone put back from ``BACKBONE_FILE``, which must hold exactly the
    weights whose sha256 the run file records; ``state`` as is for a run file that keeps them all."""
    record = obj.get("frozen_backbone")
    if record is None:
        return state
    if not isinstance(record, Mapping) or record.get("file") != BACKBONE_FILE or not isinstance(record.get("sha256"), str):
        raise InputError(f"its frozen-backbone record is not {{'file': {BACKBONE_FILE!r}, 'sha256': …}}",
                         file=source, field="frozen_backbone")
    path = run / BACKBONE_FILE
    weights = load_run_file(path, BACKBONE_FORMAT).get("model")
    if (not isinstance(weights, Mapping) or not all(isinstance(v, torch.Tensor) for v in weights.values())
            or state_sha256(weights) != record["sha256"]):
        raise InputError(f"does not hold the backbone weights {source} records (sha256 {record['sha256'][:12]}…): the "
                         "run folder is damaged or mixed with another run's files", file=str(path))
    return {**weights, **state} if isinstance(state, Mapping) else state


def refuse_link(path: Path) -> Path:
    """``path``, a file of a run folder, unless it is a symbolic link: the toolkit writes every run
    file itself, in place, so a link is somebody else's and may lead anywhere (the rater key, say);
    it is refused unread."""
    if path.is_symlink():
        raise InputError("is a symbolic link; a run folder's files are the toolkit's own and a link in it is "
                         "never followed — remove it (a rerun in a new folder writes the run anew)", file=str(path))
    return path


def load_run_file(path: Path, expected_format: str) -> dict[str, Any]:
    """Read a checkpoint or model file of a run (``weights_only=True``) and check its format tag."""
    obj = load_weights_only(refuse_link(path))
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
    """The records of a run's ``metrics.jsonl`` (up to ``upto_step``). A last line cut short (a
    kill or a full disk during an append) is dropped with a warning — resuming rewrites the log from
    the checkpoint's step anyway; any other unreadable line is an :class:`InputError` naming it."""
    if not refuse_link(path).is_file():
        return []
    try:
        lines = path.read_bytes().decode("utf-8", errors="replace").split("\n")
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", file=str(path)) from exc
    recs = []
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except (ValueError, RecursionError):
            rec = None
        if isinstance(rec, dict):
            recs.append(rec)
        elif i == len(lines):  # no newline after it: an append that did not finish
            log.warning("%s: dropping its last line, which was cut short", path)
        else:
            raise InputError(f"not a JSON object: {excerpt(line)!r}", file=str(path), row=i)
    return [r for r in recs if upto_step is None or _step(r) <= upto_step]



def _step(rec: dict[str, Any]) -> float:
    step = rec.get("step", 0)
    return step if isinstance(step, (int, float)) else 0



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



def data_fingerprint(data: AADBData) -> str:
    """The ``data_fingerprint`` a run trained on ``data`` records (in its checkpoints and ``run.json``):
    :func:`training_fingerprint` over the bytes of its train and validation images. A finished run is
    reused (by ``aadb reproduce``) or resumed only when this matches."""
    return training_fingerprint(data, training_digests(data))



def training_digests(data: AADBData) -> dict[str, str]:
    """The image bytes' digests that :func:`training_fingerprint` covers: the train split's and,
    when there is one, the validation split's (keyed as the trainer's decode passes are named)."""
    from .pipeline import bytes_fingerprint

    digests = {"decode train": bytes_fingerprint(data, list(data.split("train")["image_id"]))}
    val = data.split("validation")
    if not val.empty:
        digests["decode validation"] = bytes_fingerprint(data, list(val["image_id"]))
    return digests



def load_model(run: str | Path, *, which: str = "best", device: str = "cpu") -> tuple[torch.nn.Module, ModelConfig]:
    """The trained network of a run folder (``best.pt``, or the last checkpoint with ``which="last"``)."""
    run = Path(run)
    path = run / (BEST if which == "best" else CHECKPOINT)
    obj = load_run_file(path, MODEL_FORMAT if which == "best" else CHECKPOINT_FORMAT)
    try:
        raw = json.loads(obj["config"])
    except (KeyError, TypeError, ValueError, RecursionError) as exc:
        raise InputError("its config is missing or not JSON", file=str(path), field="config") from exc
    if not isinstance(raw, dict):
        raise InputError("its config is not a JSON object", file=str(path), field="config")
    cfg = config_from_dict(raw, source=str(path))  # validated: sizes bounded, as for a config file
    net = build_network(cfg, backbone_architecture(obj, str(path)))
    state = upgrade_state(obj["model"]) if isinstance(obj.get("model"), Mapping) else obj.get("model")
    state = with_frozen_backbone(obj, state, run, str(path))
    if isinstance(state, dict):
        for k, default in (("head.score_shift", 0.0), ("head.score_scale", 1.0)):  # runs written before them
            if k in net.state_dict() and k not in state:
                state[k] = torch.tensor(default)
    check_state_dict(state, net, str(path))
    net.load_state_dict(state)
    head = net.head
    if isinstance(head, AestheticsHead):  # the final stage's branches
        head.active = frozenset(cfg.stages[-1].branches) if cfg.stages else frozenset(cfg.branches)
    return net.to(device).eval(), cfg



def backbone_architecture(obj: Mapping[str, Any], source: str = "<run file>") -> dict[str, Any] | None:
    """The backbone architecture a run file records (a transformers config; None for AlexNet)."""
    info = obj.get("backbone")
    try:
        info = json.loads(info) if isinstance(info, str) else info
    except ValueError as exc:
        raise InputError("its backbone record is not JSON", file=source, field="backbone") from exc
    arch = (info or {}).get("architecture") if isinstance(info, dict) or info is None else None
    if info is not None and not isinstance(info, dict) or (arch is not None and not isinstance(arch, dict)):
        raise InputError("its backbone record is not a JSON object", file=source, field="backbone")
    return arch


def check_state_dict(state: Any, net: torch.nn.Module, source: str) -> None:
    """Refuse weights that do not fit ``net``: not a table of tensors, names missing or unexpected,
    or tensors of another shape. The message names only the network's own parameter names."""
    if not isinstance(state, Mapping):
        raise InputError("holds no table of weights", file=source, field="model")
    expected = net.state_dict()
    missing = [k for k in expected if k not in state]
    extra = sum(k not in expected for k in state)
    bad = [k for k in expected if k in state and (not isinstance(state[k], torch.Tensor)
                                                  or state[k].shape != expected[k].shape)]
    if missing or extra or bad:
        first = (missing + bad)[:1]
        raise InputError(f"its weights do not fit the network of its config: {len(missing)} missing, {extra} "
                         f"unexpected, {len(bad)} of another shape{f' (first: {first[0]})' if first else ''}",
                         file=source, field="model")



def metrics_frame(run: str | Path) -> pd.DataFrame:
    """The run's metrics log as a table (one row per logged record)."""
    return pd.DataFrame(read_metrics(Path(run) / METRICS))



def read_run_json(run: str | Path, name: str) -> dict[str, Any] | None:
    """A JSON file of a run folder (:data:`RUN_SUMMARY` or :data:`CONFIG_FILE`) as a dict, or None
    when it is missing or unreadable (an unfinished or foreign folder, judged by the caller)."""
    return json_object_or_none(Path(run) / name)

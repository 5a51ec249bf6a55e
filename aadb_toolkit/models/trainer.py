"""Training of the reference models (paper §4.5): SGD with momentum and weight decay, the lr
annealed ×0.1 at fixed fractions of training, validation ρ after every epoch with the best
weights kept, bf16 autocast on CUDA, and exact resumption from checkpoints written atomically
every N steps and at each epoch end. Data parallel over processes started by ``torchrun``
(DistributedDataParallel; gloo on CPU, nccl on CUDA); only rank 0 writes.

Determinism: every random stream is derived from ``(seed, purpose, epoch or step[, rank])`` —
the epoch's order, each step's crop offsets and each step's dropout masks — so a run resumed
from a checkpoint taken mid-epoch takes exactly the same steps as one that never stopped.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .._atomic import atomic_path, write_json, write_text
from .._ranks import spearman
from ..errors import InputError
from ..sources import AADBData, load
from . import pipeline
from .alexnet_arch import load_trunk_weights, read_state_dict
from .config import ModelConfig, config_from_dict, load_config
from .heads import build_model
from .losses import Batch, total_loss
from .samplers import PairSet, sample_pairs

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"
METRICS = "metrics.jsonl"
PLOT = "metrics.png"
RUN_SUMMARY = "run.json"
CONFIG_FILE = "config.json"
CHECKPOINT_FORMAT = "aadb-checkpoint"
MODEL_FORMAT = "aadb-model"
#: config keys that may change between an interrupted run and its resumption (they do not change the maths).
RESUMABLE_CHANGES = ("train.max_minutes", "train.checkpoint_every_steps", "train.log_every_steps",
                     "train.eval_batch_size", "data.decode_workers")


class TrainingInterrupted(RuntimeError):
    """Raised by the ``stop_after_steps`` hook after the checkpoint of that step was written."""


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


# --- distributed ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    active: bool = False


def _init_distributed(device: str) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    import torch.distributed as dist

    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return _Dist(rank=rank, world=world, local_rank=local, active=True)


def pick_device(device: str | None = None) -> str:
    """``device`` if given, else ``cuda`` (the process's local rank's GPU) when available, else ``cpu``."""
    if device == "cuda":
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    if device:
        return device
    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return "cpu"


def bf16_autocast(amp: str, device: str) -> bool:
    """Whether forward passes run under bf16 autocast: only on CUDA, unless ``train.amp = "off"``.
    (CPU autocast would be slower and change the CPU runs' exact, deterministic numbers.)"""
    return amp != "off" and device.startswith("cuda")


def _barrier(d: _Dist) -> None:
    if d.active:
        import torch.distributed as dist

        dist.barrier()


# --- helpers ---------------------------------------------------------------------------------

def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, np.uint64)[0] % (2**63 - 1))


def state_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """sha256 over a state dict's names and exact tensor bytes (equal iff bit-identical weights)."""
    h = hashlib.sha256()
    for k in sorted(state):
        t = state[k].detach().cpu().contiguous()
        h.update(k.encode())
        h.update(str(t.dtype).encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _save(obj: Any, path: Path) -> None:
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


def _config_diff(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(a) | set(b)):
        key = f"{prefix}{k}"
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict) and k != "weights":
            out += _config_diff(va, vb, f"{key}.")
        elif va != vb:
            out.append(key)
    return out


def _spearman(pred: np.ndarray, truth: np.ndarray) -> float | None:
    rho, status = spearman(pred, truth, min_n=2)
    return rho if status == "ok" else None


@contextlib.contextmanager
def _deterministic(enabled: bool, cuda: bool) -> Iterator[None]:
    prev = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    if enabled:
        if cuda:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=cuda)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev, warn_only=prev_warn)


@contextlib.contextmanager
def _threads(n: int | None, device: str) -> Iterator[None]:
    prev = torch.get_num_threads()
    if n is not None and device == "cpu":
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


@dataclass
class _TrainData:
    ids: list[str]
    targets: torch.Tensor
    labels: torch.Tensor
    pairs: PairSet | None
    n_units: int


def _prepare_train(cfg: ModelConfig, data: AADBData, device: str) -> _TrainData:
    train_df = data.split("train")
    if train_df.empty:
        raise InputError("no training images (split 'train' is empty)", file=data.origin, field="split")
    bad = int(train_df["score"].isna().sum())
    if bad:
        raise InputError(f"{bad} training images have no score (NaN)", file=data.origin, field="score")
    pairs = None
    if cfg.pairs.strategy != "none":
        p = cfg.pairs
        pairs = sample_pairs(train_df, data.ratings, strategy=p.strategy, n_pairs=p.n_pairs, seed=cfg.train.seed,
                             within_share=p.within_share, min_diff=p.cross_min_diff, bias=p.cross_bias,
                             weighting=p.within_weighting)
    targets = torch.tensor(train_df["score"].to_numpy(np.float32), device=device)
    labels = torch.tensor((train_df["score_mean"].to_numpy(float) > cfg.data.binary_threshold).astype(np.int64),
                          device=device)
    n_units = len(pairs) if pairs is not None else len(train_df)
    return _TrainData(list(train_df["image_id"]), targets, labels, pairs, n_units)


def score_images(model: torch.nn.Module, sampler: pipeline.CropSampler, device: str, *, batch_size: int = 256,
                 amp: bool = False) -> np.ndarray:
    """The model's ``score`` for every cached image (centre crop, eval mode), as float64."""
    was_training = model.training
    model.eval()
    n = sampler.pixels.shape[0]
    out = np.empty(n, np.float64)
    with torch.no_grad():
        for start in range(0, n, batch_size):
            idx = np.arange(start, min(n, start + batch_size))
            x = sampler.crops(idx, *sampler.centre(len(idx))).to(device, non_blocking=True)
            with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=amp):
                s = model(x)["score"]
            out[start:start + len(idx)] = s.float().cpu().numpy()
    model.train(was_training)
    return out


def _plot_metrics(records: list[dict[str, Any]], path: Path, title: str) -> None:
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


def _read_metrics(path: Path, upto_step: int | None = None) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    recs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in recs if upto_step is None or r.get("step", 0) <= upto_step]


# --- the trainer -----------------------------------------------------------------------------

def train(config: ModelConfig | str | Path, data: str | Path | AADBData, out: str | Path, *,
          device: str | None = None, init_weights: str | Path | None = None, init_sha256: str | None = None,
          resume: bool = True, max_minutes: float | None = None, overrides: Mapping[str, Any] | None = None,
          progress: bool | None = None, cache_dir: str | Path | None = None,
          stop_after_steps: int | None = None) -> RunResult:
    """Train one model variant on the train split, validating each epoch, into the run folder ``out``.

    ``config`` is a :class:`ModelConfig` or a TOML path (``overrides`` are dotted keys applied on
    top); ``init_weights`` is a local standard-keyed AlexNet state dict (else training starts from
    scratch, with a warning). With ``resume`` an existing checkpoint in ``out`` is continued
    exactly. ``stop_after_steps`` is a test hook: raise :class:`TrainingInterrupted` once that many
    global steps are done and checkpointed.
    """
    cfg = config if isinstance(config, ModelConfig) else load_config(config)
    if overrides:
        cfg = cfg.replace(overrides)
    if max_minutes is not None:
        cfg = cfg.replace({"train.max_minutes": max_minutes})
    device = pick_device(device)
    if cfg.train.amp == "bf16" and not device.startswith("cuda"):
        raise InputError(f"bf16 autocast runs on CUDA only, and the device is {device!r}; set train.amp to "
                         "'auto' or 'off'", field="train.amp")
    dist_info = _init_distributed(device)
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    cuda_devices = [torch.device(device).index or 0] if device.startswith("cuda") else []
    with _deterministic(cfg.train.deterministic, device.startswith("cuda")), _threads(cfg.train.cpu_threads, device), \
            torch.random.fork_rng(devices=cuda_devices):  # the caller's RNG state is left as it was
        return _train(cfg, data, Path(out), device, dist_info, init_weights, init_sha256, resume, progress,
                      cache_dir, stop_after_steps)


def _train(cfg: ModelConfig, data_src: str | Path | AADBData, out: Path, device: str, d: _Dist,
           init_weights: str | Path | None, init_sha256: str | None, resume: bool, progress: bool | None,
           cache_dir: str | Path | None, stop_after_steps: int | None) -> RunResult:
    t_start = time.monotonic()
    is_main = d.rank == 0
    data = data_src if isinstance(data_src, AADBData) else load(data_src)
    out = out.absolute()
    ckpt_path = out / CHECKPOINT
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        if not resume:
            for name in (CHECKPOINT, BEST, METRICS, PLOT, RUN_SUMMARY):
                (out / name).unlink(missing_ok=True)
    _barrier(d)
    amp = bf16_autocast(cfg.train.amp, device)
    amp_device = "cuda" if device.startswith("cuda") else "cpu"

    # data: training units (images or pairs), cached pixels
    td = _prepare_train(cfg, data, device)
    val_df = data.split("validation")
    cache_root = Path(cache_dir) if cache_dir is not None else out / "cache"
    cache_dev = device if cfg.data.cache_on_device else "cpu"
    # tqdm: None = auto (hidden when not a TTY); only rank 0 shows progress
    bar_disabled = True if (not is_main or progress is False) else (None if progress is None else False)

    def pixels(ids: list[str], desc: str) -> torch.Tensor:
        if is_main:
            arr = pipeline.load_or_build_cache(data, ids, cfg.data.warp_size, cache_dir=cache_root,
                                               workers=cfg.data.decode_workers,
                                               progress=None if bar_disabled is None else not bar_disabled, desc=desc)
        _barrier(d)
        if not is_main:
            arr = pipeline.load_or_build_cache(data, ids, cfg.data.warp_size, cache_dir=cache_root,
                                               workers=cfg.data.decode_workers, progress=False, write=False)
        return torch.from_numpy(arr).to(cache_dev)

    train_sampler = pipeline.CropSampler(pixels(td.ids, "decode train"), cfg.data.crop_size, cfg.data.mean, cfg.data.std)
    val_sampler = None
    if not val_df.empty:
        val_sampler = pipeline.CropSampler(pixels(list(val_df["image_id"]), "decode validation"),
                                           cfg.data.crop_size, cfg.data.mean, cfg.data.std)
    val_truth = val_df["score"].to_numpy(float)

    # model and optimiser
    torch.manual_seed(cfg.train.seed)
    net = build_model(cfg.model.head, width=cfg.model.width, dropout=cfg.model.dropout).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=cfg.optim.lr, momentum=cfg.optim.momentum,
                          weight_decay=cfg.optim.weight_decay)
    B = cfg.optim.batch_size
    if B < d.world:
        raise InputError(f"batch_size {B} is smaller than the number of processes {d.world}", field="optim.batch_size")
    steps_per_epoch = max(1, td.n_units // B)
    total_steps = steps_per_epoch * cfg.optim.epochs
    milestones = [int(round(f * total_steps)) for f in cfg.optim.anneal_at]

    def lr_at(step: int) -> float:
        return cfg.optim.lr * cfg.optim.anneal_factor ** sum(step >= m for m in milestones)

    schedule = {"base_lr": cfg.optim.lr, "factor": cfg.optim.anneal_factor, "milestones": milestones}
    epoch, step_in_epoch, global_step = 0, 0, 0
    val_rhos: list[float | None] = []
    best: dict[str, Any] = {"epoch": None, "rho": None}
    elapsed_before = 0.0
    cfg_json = json.dumps(cfg.to_dict(), sort_keys=True)

    if resume and ckpt_path.is_file():
        ck = load_run_file(ckpt_path, CHECKPOINT_FORMAT)
        diff = [k for k in _config_diff(json.loads(ck["config"]), cfg.to_dict()) if k not in RESUMABLE_CHANGES]
        if diff:
            raise InputError(f"run folder holds a checkpoint of a different config (differs in {diff}); "
                             "pass resume=False (--no-resume) or another --out", file=str(ckpt_path))
        net.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        epoch, step_in_epoch, global_step = int(ck["epoch"]), int(ck["step_in_epoch"]), int(ck["global_step"])
        val_rhos = list(ck["val_rho"])
        best = dict(ck["best"])
        elapsed_before = float(ck["elapsed_s"])
        torch.set_rng_state(ck["rng"]["torch"])
        if is_main:
            log.info("resuming %s at epoch %d step %d", out, epoch, global_step)
    else:
        if init_weights is not None:
            loaded = load_trunk_weights(net, read_state_dict(init_weights, sha256=init_sha256), source=str(init_weights))
            if is_main:
                log.info("initialised %d front-end tensors from %s", len(loaded), init_weights)
        elif is_main:
            warnings.warn("no --init-weights: training AlexNet from scratch (the paper fine-tunes ImageNet weights)",
                          stacklevel=3)
    model: torch.nn.Module = net
    if d.active:
        from torch.nn.parallel import DistributedDataParallel as DDP

        model = DDP(net, device_ids=[torch.device(device).index] if device.startswith("cuda") else None)

    metrics_path = out / METRICS
    if is_main:
        recs = _read_metrics(metrics_path, upto_step=global_step)
        write_text(metrics_path, "".join(json.dumps(r) + "\n" for r in recs))
        write_text(out / CONFIG_FILE, json.dumps(cfg.to_dict(), indent=2, sort_keys=True) + "\n")

    def checkpoint(ep: int, s_in_ep: int) -> None:
        if not is_main:
            return
        rng = {"torch": torch.get_rng_state()}
        _save({"format": CHECKPOINT_FORMAT, "version": 1, "config": cfg_json, "model": net.state_dict(),
               "optimizer": opt.state_dict(), "schedule": schedule, "epoch": ep, "step_in_epoch": s_in_ep,
               "global_step": global_step, "rng": rng, "val_rho": val_rhos, "best": best,
               "elapsed_s": elapsed_before + time.monotonic() - t_start, "world_size": d.world}, ckpt_path)

    def validate(ep: int) -> float | None:
        if val_sampler is None:
            return None
        pred = score_images(net, val_sampler, device, batch_size=cfg.train.eval_batch_size, amp=amp)
        return _spearman(pred, val_truth)

    def keep_best(ep: int, rho: float | None) -> None:
        better = best["rho"] is None or (rho is not None and rho > best["rho"])
        if val_sampler is not None and rho is None and best["epoch"] is not None:
            better = False
        if better:
            best.update(epoch=ep, rho=rho)
            if is_main:
                _save({"format": MODEL_FORMAT, "version": 1, "config": cfg_json, "model": net.state_dict(),
                       "epoch": ep, "global_step": global_step, "val_rho": rho}, out / BEST)

    def log_record(rec: dict[str, Any]) -> None:
        if is_main:
            with open(metrics_path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(rec) + "\n")

    weights = dict(cfg.loss.weights)
    margin = cfg.loss.rank_margin
    stopped = "completed"
    time_limit = cfg.train.max_minutes * 60 if cfg.train.max_minutes else None
    model.train()
    window: list[torch.Tensor] = []
    t_window = time.monotonic()
    while epoch < cfg.optim.epochs and stopped == "completed":
        order = np.random.default_rng([cfg.train.seed, 1, epoch]).permutation(td.n_units)
        bar = tqdm(total=steps_per_epoch, initial=step_in_epoch, desc=f"{cfg.name} epoch {epoch + 1}/{cfg.optim.epochs}",
                   disable=bar_disabled, leave=False)
        while step_in_epoch < steps_per_epoch:
            units = order[step_in_epoch * B:(step_in_epoch + 1) * B] if td.n_units >= B else order
            per_unit = 2 if td.pairs is not None else 1
            rng = np.random.default_rng([cfg.train.seed, 2, global_step])
            oy, ox, fl = (a.reshape(len(units), per_unit) for a in
                          train_sampler.random_offsets(rng, len(units) * per_unit, cfg.data.hflip))
            mine = slice(d.rank, None, d.world)
            units, oy, ox, fl = units[mine], oy[mine], ox[mine], fl[mine]
            if td.pairs is not None:
                n = len(units)
                idx = np.concatenate([td.pairs.first[units], td.pairs.second[units]])
                oy, ox, fl = (np.concatenate([a[:, 0], a[:, 1]]) for a in (oy, ox, fl))
                ar = torch.arange(n, device=device)
                extra = {"pair_first": ar, "pair_second": ar + n, "pair_delta": torch.ones(n, device=device)}
            else:
                idx = units
                oy, ox, fl = oy[:, 0], ox[:, 0], fl[:, 0]
                extra = {}
            idx_t = torch.as_tensor(idx, device=device)
            batch = Batch(targets=td.targets[idx_t], labels=td.labels[idx_t], **extra)
            x = train_sampler.crops(idx, oy, ox, fl).to(device, non_blocking=True)
            lr = lr_at(global_step)
            for g in opt.param_groups:
                g["lr"] = lr
            torch.manual_seed(_seed(cfg.train.seed, 3, global_step, d.rank))
            with torch.autocast(amp_device, dtype=torch.bfloat16, enabled=amp):
                outputs = model(x)
            loss, parts = total_loss(outputs, batch, weights, margin)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            global_step += 1
            step_in_epoch += 1
            bar.update(1)
            window.append(torch.stack([loss.detach(), *parts.values()]))
            if global_step % cfg.train.log_every_steps == 0 or step_in_epoch == steps_per_epoch:
                vals = torch.stack(window).float().mean(0).cpu().tolist()
                if not math.isfinite(vals[0]):
                    raise FloatingPointError(f"training loss is {vals[0]} at step {global_step}; lower optim.lr")
                dt = time.monotonic() - t_window
                n_img = len(window) * len(idx) * d.world
                log_record({"kind": "train", "epoch": epoch, "step": global_step, "lr": lr, "loss": vals[0],
                            **{f"loss_{k}": v for k, v in zip(parts, vals[1:])},
                            "images_per_s": n_img / dt if dt > 0 else None})
                bar.set_postfix(loss=f"{vals[0]:.4f}")
                window, t_window = [], time.monotonic()
            at_end = step_in_epoch == steps_per_epoch
            if global_step % cfg.train.checkpoint_every_steps == 0 and not at_end:
                checkpoint(epoch, step_in_epoch)
            if stop_after_steps is not None and global_step >= stop_after_steps and not at_end:
                checkpoint(epoch, step_in_epoch)
                _barrier(d)
                raise TrainingInterrupted(f"stopped after {global_step} steps (checkpoint written)")
            if time_limit is not None and _agree_flag(d, time.monotonic() - t_start > time_limit):
                stopped = "time_limit"
                break
        bar.close()
        if stopped == "completed":
            rho = validate(epoch)
            val_rhos.append(rho)
            keep_best(epoch, rho)
            epoch += 1
            step_in_epoch = 0
            log_record({"kind": "val", "epoch": epoch - 1, "step": global_step, "val_rho": rho})
            checkpoint(epoch, 0)
        else:
            rho = validate(epoch)
            keep_best(epoch, rho)
            log_record({"kind": "val", "epoch": epoch, "step": global_step, "val_rho": rho, "partial_epoch": True})
            checkpoint(epoch, step_in_epoch)
        if is_main:
            _plot_metrics(_read_metrics(metrics_path), out / PLOT, cfg.name)
        if stop_after_steps is not None and global_step >= stop_after_steps and epoch < cfg.optim.epochs:
            _barrier(d)
            raise TrainingInterrupted(f"stopped after {global_step} steps (checkpoint written)")

    sha = state_sha256(net.state_dict())
    if d.active:
        import torch.distributed as dist

        shas: list[Any] = [None] * d.world
        dist.all_gather_object(shas, sha)
        if len(set(shas)) != 1:
            raise RuntimeError(f"data-parallel ranks ended with different weights: {shas}")
    if is_main and not (out / BEST).is_file():
        keep_best(epoch, None)
    elapsed = elapsed_before + time.monotonic() - t_start
    result = RunResult(run_dir=out, config=cfg, device=device, world_size=d.world, epochs_completed=epoch,
                       global_step=global_step, total_steps=total_steps, val_rho=val_rhos, best_epoch=best["epoch"],
                       best_val_rho=best["rho"], stopped=stopped, weights_sha256=sha, elapsed_s=elapsed)
    if is_main:
        write_json(out / RUN_SUMMARY, {
            "name": cfg.name, "device": device, "world_size": d.world, "ranks_agree": True,
            "epochs_completed": epoch, "global_step": global_step, "total_steps": total_steps,
            "val_rho": val_rhos, "best_epoch": best["epoch"], "best_val_rho": best["rho"], "stopped": stopped,
            "weights_sha256": sha, "elapsed_s": round(elapsed, 3), "n_train_images": len(td.ids),
            "n_pairs": len(td.pairs) if td.pairs is not None else 0,
            "n_validation_images": len(val_df), "data_origin": data.origin,
            "init_weights": str(init_weights) if init_weights is not None else None,
        })
    _barrier(d)
    return result


def _agree_flag(d: _Dist, flag: bool) -> bool:
    """Rank 0's decision, shared by every rank (so all stop at the same step)."""
    if not d.active:
        return flag
    import torch.distributed as dist

    dev = f"cuda:{torch.cuda.current_device()}" if dist.get_backend() == "nccl" else "cpu"
    t = torch.tensor([1 if flag else 0], dtype=torch.int64, device=dev)  # NCCL needs a CUDA tensor
    dist.broadcast(t, src=0)
    return bool(t.item())


def load_model(run: str | Path, *, which: str = "best", device: str = "cpu") -> tuple[torch.nn.Module, ModelConfig]:
    """The trained network of a run folder (``best.pt``, or the last checkpoint with ``which="last"``)."""
    run = Path(run)
    path = run / (BEST if which == "best" else CHECKPOINT)
    obj = load_run_file(path, MODEL_FORMAT if which == "best" else CHECKPOINT_FORMAT)
    cfg = config_from_dict(json.loads(obj["config"]), source=str(path))
    net = build_model(cfg.model.head, width=cfg.model.width, dropout=cfg.model.dropout)
    net.load_state_dict(obj["model"])
    return net.to(device).eval(), cfg


def metrics_frame(run: str | Path) -> pd.DataFrame:
    """The run's metrics log as a table (one row per logged record)."""
    return pd.DataFrame(_read_metrics(Path(run) / METRICS))

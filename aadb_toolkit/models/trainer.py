"""Training of the reference models (paper §4.5): SGD with momentum and weight decay, the lr
annealed ×0.1 at fixed fractions of each stage, validation ρ every N steps (or each epoch) with
the best weights of the final stage kept, bf16 autocast on CUDA, and exact resumption from
checkpoints written atomically every N steps and at each validation. Data parallel over
processes started by ``torchrun`` (DistributedDataParallel; gloo on CPU, nccl on CUDA); only
rank 0 writes. The loop is small pieces — a fixed :class:`_Run`, a checkpointed
:class:`TrainState`, :func:`train_step`, :func:`validate`, :func:`keep_best`,
:func:`save_checkpoint`, :func:`log_record` — over a plan of stages (:func:`stage_plan`).

Determinism: every random stream is derived from ``(seed, purpose, epoch or step[, rank])`` —
the epoch's order, each step's crop offsets and each step's dropout masks — so a run resumed
from a checkpoint taken mid-epoch takes exactly the same steps as one that never stopped.
"""

from __future__ import annotations

import contextlib
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

from .._atomic import write_json, write_text
from .._lock import folder_lock
from .._ranks import spearman
from ..errors import InputError, excerpt
from ..sources import AADBData, load
from . import pipeline
from .alexnet_arch import load_trunk_weights, read_state_dict
from .config import ModelConfig, StageSection, config_from_dict, load_config
from .content import column_labels, fit_content
from .devices import bf16_autocast, pick_device
from .ensemble import write_ensemble_file
from .heads import AestheticsHead, attribute_columns, build_network
from .inference import fc7_features, score_images
from .losses import Batch, total_loss
from .runs import (BEST, CHECKPOINT, CHECKPOINT_FORMAT, CONFIG_FILE, METRICS, MODEL_FORMAT, PLOT,
                   RESUMABLE_CHANGES, RUN_FORMAT, RUN_SUMMARY, RunResult, check_state_dict, config_diff, config_json,
                   load_model, load_run_file, plot_metrics, read_metrics, save_run_file, state_sha256,
                   training_digests, training_fingerprint)
from .samplers import PairSet, sample_pairs

log = logging.getLogger(__name__)


class TrainingInterrupted(RuntimeError):
    """Raised by the ``stop_after_steps`` hook after the checkpoint of that step was written."""


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


def _barrier(d: _Dist) -> None:
    if d.active:
        import torch.distributed as dist

        dist.barrier()


# --- helpers ---------------------------------------------------------------------------------

def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, np.uint64)[0] % (2**63 - 1))


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
def _fast_mode(enabled: bool) -> Iterator[None]:
    """``cudnn.benchmark`` for the run when the opt-in fast mode is on (restored afterwards)."""
    prev = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = prev or enabled
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = prev


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
    attributes: torch.Tensor | None
    content_labels: torch.Tensor | None

    def n_units(self, pairs: bool) -> int:
        """Training units of a stage: sampled pairs (rank loss) or images."""
        return len(self.pairs) if pairs and self.pairs is not None else len(self.ids)


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
                             weighting=p.within_weighting, same_hit=p.same_hit, ties=p.ties)
    targets = torch.tensor(train_df["score"].to_numpy(np.float32), device=device)
    labels = torch.tensor((train_df["score_mean"].to_numpy(float) > cfg.data.binary_threshold).astype(np.int64),
                          device=device)
    attributes = None
    if cfg.attributes is not None:
        cols = attribute_columns(cfg.attributes.columns)
        missing = [c for c in cols if c not in train_df.columns]
        if missing:
            raise InputError(f"the images table has no attribute column(s) {missing}", file=data.origin,
                             field="attributes.columns")
        values = train_df[list(cols)].apply(pd.to_numeric, errors="coerce").to_numpy(np.float32)
        attributes = torch.tensor(values, device=device)
    content_labels = None
    if cfg.content is not None and cfg.content.labels.startswith("column:"):
        col = cfg.content.labels.removeprefix("column:")
        if col not in train_df.columns:
            raise InputError(f"the images table has no column {col!r}", file=data.origin, field="content.labels")
        content_labels = column_labels(pd.to_numeric(train_df[col], errors="coerce").to_numpy(float),
                                       cfg.content.clusters, col)
    return _TrainData(list(train_df["image_id"]), targets, labels, pairs, attributes, content_labels)


# --- the stage plan -------------------------------------------------------------------------

@dataclass(frozen=True)
class _Stage:
    """One stage of training: global steps ``[start, start + steps)`` with its own loss and lr schedule."""

    index: int
    name: str
    start: int
    steps: int
    weights: dict[str, float]
    branches: frozenset[str]
    uses_pairs: bool
    steps_per_epoch: int
    last: bool

    @property
    def end(self) -> int:
        return self.start + self.steps


def stage_plan(cfg: ModelConfig, td: _TrainData) -> list[_Stage]:
    """The stages of a config (one implicit stage when it has no ``[[stages]]``), with step counts."""
    B = cfg.optim.batch_size
    specs = cfg.stages or (StageSection(name="train", share=1.0, weights=None, branches=cfg.branches),)
    plan, start = [], 0
    for i, st in enumerate(specs):
        weights = dict(st.weights if st.weights is not None else cfg.loss.weights)
        pairs = td.pairs is not None and "rank" in weights  # ω_r = 0 still trains on the pair batches
        spe = max(1, td.n_units(pairs) // B)
        if cfg.optim.steps is None:
            steps = spe * cfg.optim.epochs
        elif i < len(specs) - 1:
            steps = max(1, int(round(st.share * cfg.optim.steps)))
        else:
            steps = max(1, cfg.optim.steps - start)
        plan.append(_Stage(i, st.name, start, steps, weights, frozenset(st.branches), pairs, spe, i == len(specs) - 1))
        start += steps
    return plan


def _stage_at(plan: list[_Stage], step: int) -> _Stage:
    return next((s for s in plan if step < s.end), plan[-1])


def _lr_at(cfg: ModelConfig, stage: _Stage, step: int) -> float:
    """×``anneal_factor`` at each ``anneal_at`` fraction of the stage's steps."""
    milestones = [stage.start + int(round(f * stage.steps)) for f in cfg.optim.anneal_at]
    return cfg.optim.lr * cfg.optim.anneal_factor ** sum(step >= m for m in milestones)


def _units(cfg: ModelConfig, stage: _Stage, td: _TrainData, step: int) -> np.ndarray:
    """The training units (image or pair indices) of global ``step``: a seeded permutation per epoch."""
    B, n = cfg.optim.batch_size, td.n_units(stage.uses_pairs)
    local = step - stage.start
    epoch, pos = divmod(local, stage.steps_per_epoch)
    key = [cfg.train.seed, 1, epoch] if stage.index == 0 else [cfg.train.seed, 1, stage.index, epoch]
    order = np.random.default_rng(key).permutation(n)
    return order[pos * B:(pos + 1) * B] if n >= B else order


def _is_validation_step(cfg: ModelConfig, stage: _Stage, step: int) -> bool:
    """Validation after global ``step`` (1-based count of steps done): every N steps, or at each epoch's end."""
    if step == stage.end:
        return True
    every = cfg.train.validate_every_steps
    if every is not None:
        return step % every == 0
    return (step - stage.start) % stage.steps_per_epoch == 0


# --- state, one step, validation, checkpoints ---------------------------------------------

@dataclass
class _Run:
    """What stays fixed during a run: config, data, samplers, device and where files go."""

    cfg: ModelConfig
    out: Path
    device: str
    d: _Dist
    amp: bool
    td: _TrainData
    plan: list[_Stage]
    train_sampler: pipeline.CropSampler
    val_sampler: pipeline.CropSampler | None
    val_truth: np.ndarray
    fingerprint: str
    bar_disabled: bool | None
    t_start: float
    #: the checkpoint to resume from, read and checked by :func:`_setup` before anything was written
    checkpoint: dict[str, Any] | None = None

    @property
    def is_main(self) -> bool:
        return self.d.rank == 0

    @property
    def total_steps(self) -> int:
        return self.plan[-1].end


@dataclass
class TrainState:
    """What changes during a run and is checkpointed: weights, optimiser, step, validation history."""

    net: torch.nn.Module
    opt: torch.optim.Optimizer
    model: torch.nn.Module
    global_step: int = 0
    val_rho: list[float | None] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=lambda: {"epoch": None, "step": None, "rho": None})
    elapsed_before: float = 0.0


def _epoch_of(stage: _Stage, step: int) -> tuple[int, int]:
    return divmod(step - stage.start, stage.steps_per_epoch)


def _completed_epoch(stage: _Stage, step: int) -> int:
    """The epoch (0-based, within the stage) that the step count ``step`` lies in or just finished."""
    return max(0, step - stage.start - 1) // stage.steps_per_epoch


def _to_device(arrays: list[np.ndarray], device: str) -> list[torch.Tensor]:
    """Several int64 arrays as device tensors with one (pinned, non-blocking) host→device copy."""
    flat = torch.from_numpy(np.concatenate([np.asarray(a, np.int64).ravel() for a in arrays]))
    if device.startswith("cuda"):
        flat = flat.pin_memory().to(device, non_blocking=True)
    parts, k = [], 0
    for a in arrays:
        parts.append(flat[k:k + np.asarray(a).size])
        k += np.asarray(a).size
    return parts


def train_step(run: _Run, state: TrainState, stage: _Stage) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
    """One SGD step at ``state.global_step``; returns the (device) loss, its parts and the images seen."""
    cfg, td, step = run.cfg, run.td, state.global_step
    units = _units(cfg, stage, td, step)
    per_unit = 2 if stage.uses_pairs else 1
    rng = np.random.default_rng([cfg.train.seed, 2, step])
    oy, ox, fl = (a.reshape(len(units), per_unit) for a in
                  run.train_sampler.random_offsets(rng, len(units) * per_unit, cfg.data.hflip))
    mine = slice(run.d.rank, None, run.d.world)
    units, oy, ox, fl = units[mine], oy[mine], ox[mine], fl[mine]
    if stage.uses_pairs:
        n = len(units)
        idx = np.concatenate([td.pairs.first[units], td.pairs.second[units]])
        oy, ox, fl = (np.concatenate([a[:, 0], a[:, 1]]) for a in (oy, ox, fl))
    else:
        idx, oy, ox, fl = units, oy[:, 0], ox[:, 0], fl[:, 0]
    idx_t, oy_t, ox_t, fl_t = _to_device([idx, oy, ox, fl], run.device)
    extra: dict[str, Any] = {}
    if stage.uses_pairs:
        ar = torch.arange(n, device=run.device)
        extra = {"pair_first": ar, "pair_second": ar + n, "pair_delta": torch.ones(n, device=run.device)}
    if td.attributes is not None:
        extra.update(attributes=td.attributes[idx_t], attribute_kind=cfg.attributes.loss)
    batch = Batch(targets=td.targets[idx_t], labels=td.labels[idx_t], **extra)
    cache_idx = idx_t.to(run.train_sampler.pixels.device)
    x = run.train_sampler.crops(cache_idx, oy_t.to(cache_idx.device), ox_t.to(cache_idx.device),
                                fl_t.to(cache_idx.device).bool()).to(run.device, non_blocking=True)
    if cfg.train.fast and run.device.startswith("cuda"):
        x = x.contiguous(memory_format=torch.channels_last)
    lr = _lr_at(cfg, stage, step)
    for g in state.opt.param_groups:
        g["lr"] = lr
    torch.manual_seed(_seed(cfg.train.seed, 3, step, run.d.rank))
    with torch.autocast("cuda" if run.device.startswith("cuda") else "cpu", dtype=torch.bfloat16, enabled=run.amp):
        outputs = state.model(x)
    loss, parts = total_loss(outputs, batch, stage.weights, cfg.loss.rank_margin)
    state.opt.zero_grad(set_to_none=True)
    loss.backward()
    state.opt.step()
    state.global_step += 1
    return loss.detach(), parts, len(idx) * run.d.world


def validate(run: _Run, state: TrainState) -> float | None:
    """Spearman ρ of the network's scores on the validation split (None without one)."""
    if run.val_sampler is None:
        return None
    pred = score_images(state.net, run.val_sampler, run.device, batch_size=run.cfg.train.eval_batch_size, amp=run.amp)
    return _spearman(pred, run.val_truth)


def keep_best(run: _Run, state: TrainState, stage: _Stage, rho: float | None) -> None:
    """Keep ``best.pt``: the highest validation ρ among the final stage's validations (the same
    rule for every variant); a run without validation keeps its last weights."""
    if not stage.last:
        return
    best = state.best
    better = best["rho"] is None or (rho is not None and rho > best["rho"])
    if run.val_sampler is not None and rho is None and best["step"] is not None:
        better = False
    if better:
        epoch = _completed_epoch(stage, state.global_step)
        best.update(epoch=epoch, step=state.global_step, rho=rho)
        if run.is_main:
            save_run_file({"format": MODEL_FORMAT, "version": 2, "config": config_json(run.cfg), "model": state.net.state_dict(),
                   "epoch": epoch, "global_step": state.global_step, "val_rho": rho}, run.out / BEST)


def save_checkpoint(run: _Run, state: TrainState) -> None:
    """Write ``checkpoint.pt`` atomically (rank 0): everything needed to continue bit-identically."""
    if not run.is_main:
        return
    stage = _stage_at(run.plan, state.global_step)
    epoch, in_epoch = _epoch_of(stage, state.global_step)
    save_run_file({"format": CHECKPOINT_FORMAT, "version": 2, "config": config_json(run.cfg), "model": state.net.state_dict(),
           "optimizer": state.opt.state_dict(), "stage": stage.index, "epoch": epoch, "step_in_epoch": in_epoch,
           "global_step": state.global_step, "rng": {"torch": torch.get_rng_state()}, "val_rho": state.val_rho,
           "best": state.best, "elapsed_s": state.elapsed_before + time.monotonic() - run.t_start,
           "world_size": run.d.world, "device_kind": _device_kind(run.device), "data_fingerprint": run.fingerprint},
          run.out / CHECKPOINT)


def _device_kind(device: str) -> str:
    return torch.device(device).type


def _check_resumable(ck: dict[str, Any], cfg: ModelConfig, fingerprint: str, world: int, device: str,
                     path: Path) -> None:
    """Refuse a checkpoint of another config, data set, world size or device kind, saying which."""
    try:
        old_config = json.loads(ck["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError("the checkpoint's config is not JSON; pass --no-resume or another --out",
                         file=str(path)) from exc
    diff = [k for k in config_diff(old_config, cfg.to_dict()) if k not in RESUMABLE_CHANGES]
    if diff:
        raise InputError(f"run folder holds a checkpoint of a different config (differs in {diff}); "
                         "pass resume=False (--no-resume) or another --out", file=str(path))
    if ck.get("data_fingerprint") != fingerprint:
        raise InputError(f"run folder holds a checkpoint trained on other data (checkpoint data fingerprint "
                         f"{ck.get('data_fingerprint')}, this --data {fingerprint}); resume with the same "
                         "--data, or pass --no-resume / another --out", file=str(path))
    if ck.get("world_size", 1) != world:
        raise InputError(f"the checkpoint was written by {ck.get('world_size')} process(es) and this run has "
                         f"{world}: the global batch order would differ; resume with the same number of "
                         "processes (torchrun --nproc_per_node) or pass --no-resume", file=str(path))
    kind = ck.get("device_kind", "cpu")
    if kind != _device_kind(device):
        raise InputError(f"the checkpoint was trained on {kind} and this run is on {_device_kind(device)}: "
                         f"numerics (bf16 autocast, kernels) differ; resume with --device {kind} or pass --no-resume",
                         file=str(path))


def _restore(ck: dict[str, Any], state: TrainState, path: Path) -> None:
    check_state_dict(ck.get("model"), state.net, str(path))
    try:
        state.net.load_state_dict(ck["model"])
        state.opt.load_state_dict(ck["optimizer"])
        state.global_step = int(ck["global_step"])
        state.val_rho = list(ck["val_rho"])
        state.best = dict(ck["best"])
        state.elapsed_before = float(ck["elapsed_s"])
        torch.set_rng_state(ck["rng"]["torch"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:  # load_state_dict raises RuntimeError
        raise InputError(f"the checkpoint is damaged ({type(exc).__name__}: {excerpt(exc)}); "
                         "pass --no-resume or another --out", file=str(path)) from exc


def log_record(run: _Run, rec: dict[str, Any]) -> None:
    """Append one record to ``metrics.jsonl`` (rank 0)."""
    if run.is_main:
        with open(run.out / METRICS, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec) + "\n")


def _enter_stage(run: _Run, state: TrainState, stage: _Stage) -> None:
    """Switch the head to the stage's branches; fit the content groups the first time they are used."""
    head = state.net.classifier[6]
    if not isinstance(head, AestheticsHead):
        return
    head.active = stage.branches
    if "content" in stage.branches and not bool(head.content_fitted):
        fc7 = fc7_features(state.net, run.train_sampler, run.device, batch_size=run.cfg.train.eval_batch_size,
                           amp=run.amp)
        labels = fit_content(head, torch.from_numpy(fc7), run.td.content_labels, seed=run.cfg.train.seed,
                             restarts=run.cfg.content.kmeans_restarts)
        sizes = torch.bincount(labels[labels >= 0], minlength=head.n_content).tolist()
        log_record(run, {"kind": "content", "stage": stage.name, "step": state.global_step, "group_sizes": sizes})


def _build_state(run: _Run, init_weights: str | Path | None, init_sha256: str | None, resume: bool) -> TrainState:
    cfg = run.cfg
    torch.manual_seed(cfg.train.seed)
    net = build_network(cfg).to(run.device)
    if cfg.train.fast and run.device.startswith("cuda"):
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=cfg.optim.lr, momentum=cfg.optim.momentum,
                          weight_decay=cfg.optim.weight_decay)
    state = TrainState(net=net, opt=opt, model=net)
    if resume and run.checkpoint is not None:
        _restore(run.checkpoint, state, run.out / CHECKPOINT)
        if run.is_main:
            log.info("resuming %s at step %d", run.out, state.global_step)
    elif init_weights is not None:
        loaded = load_trunk_weights(net, read_state_dict(init_weights, sha256=init_sha256), source=str(init_weights))
        if run.is_main:
            log.info("initialised %d front-end tensors from %s", len(loaded), init_weights)
    elif run.is_main:
        warnings.warn("no --init-weights: training AlexNet from scratch (the paper fine-tunes ImageNet weights)",
                      stacklevel=4)
    model: torch.nn.Module = net
    if run.d.active:
        from torch.nn.parallel import DistributedDataParallel as DDP

        model = DDP(net, device_ids=[torch.device(run.device).index] if run.device.startswith("cuda") else None,
                    find_unused_parameters=bool(cfg.branches))  # branch layers idle in early stages
    if cfg.train.fast and run.device.startswith("cuda"):
        model = torch.compile(model)  # cudnn.benchmark is set for the run by _fast_mode
    state.model = model
    return state


# --- the trainer -----------------------------------------------------------------------------

def train(config: ModelConfig | str | Path, data: str | Path | AADBData, out: str | Path, *,
          device: str | None = None, init_weights: str | Path | None = None, init_sha256: str | None = None,
          resume: bool = True, max_minutes: float | None = None, overrides: Mapping[str, Any] | None = None,
          progress: bool | None = None, cache_dir: str | Path | None = None,
          stop_after_steps: int | None = None) -> RunResult:
    """Train one model variant on the train split, validating as configured, into the run folder ``out``.

    ``config`` is a :class:`ModelConfig` or a TOML path (``overrides`` are dotted keys applied on
    top); ``init_weights`` is a local standard-keyed AlexNet state dict (else training starts from
    scratch, with a warning). With ``resume`` an existing checkpoint in ``out`` is continued
    exactly (refused if it was written for another config, data, world size or device kind). A
    config with ``[ensemble] members > 1`` trains its members under ``out/members/``.
    ``stop_after_steps`` is a test hook: raise :class:`TrainingInterrupted` once that many global
    steps are done and checkpointed.
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
    data = data if isinstance(data, AADBData) else load(data)
    with _exclusive(Path(out)):
        if cfg.ensemble.members > 1:
            return _train_ensemble(cfg, data, Path(out), device=device, init_weights=init_weights,
                                   init_sha256=init_sha256, resume=resume, progress=progress, cache_dir=cache_dir,
                                   stop_after_steps=stop_after_steps)
        return _train_single(cfg, data, Path(out), device, init_weights, init_sha256, resume, progress, cache_dir,
                             stop_after_steps)


@contextlib.contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    """Hold the run folder's lock (rank 0; see :mod:`aadb_toolkit._lock`): a second trainer writing to
    the same folder is refused instead of mixing its checkpoints, config and metrics into this run's."""
    if int(os.environ.get("RANK", "0")) != 0:
        yield
        return
    out.absolute().mkdir(parents=True, exist_ok=True)
    with folder_lock(out, "run folder"):
        yield


def _train_single(cfg: ModelConfig, data: AADBData, out: Path, device: str, init_weights, init_sha256,
                  resume: bool, progress: bool | None, cache_dir, stop_after_steps: int | None) -> RunResult:
    """One network (the body of :func:`train`, with the run folder locked)."""
    dist_info = _init_distributed(device)
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    cuda_devices = [torch.device(device).index or 0] if device.startswith("cuda") else []
    with _deterministic(cfg.train.deterministic and not cfg.train.fast, device.startswith("cuda")), \
            _threads(cfg.train.cpu_threads, device), _fast_mode(cfg.train.fast and device.startswith("cuda")), \
            torch.random.fork_rng(devices=cuda_devices):
        run = _setup(cfg, data, Path(out), device, dist_info, resume, progress, cache_dir)
        state = _build_state(run, init_weights, init_sha256, resume)
        if run.is_main:
            recs = read_metrics(run.out / METRICS, upto_step=state.global_step)
            write_text(run.out / METRICS, "".join(json.dumps(r) + "\n" for r in recs))
            write_text(run.out / CONFIG_FILE, json.dumps(cfg.to_dict(), indent=2, sort_keys=True) + "\n")
        stopped = _loop(run, state, stop_after_steps)
        return _finish(run, state, stopped, data, init_weights)


def _train_ensemble(cfg: ModelConfig, data: AADBData, out: Path, *, device: str, **train_kwargs) -> RunResult:
    """Train every member (seed ``train.seed + k``) into ``out/members/k``, then write
    ``ensemble.json`` and ``run.json`` with the validation ρ of the averaged predictions."""
    out = out.absolute()
    single = cfg.to_dict()
    single["ensemble"] = {"members": 1}
    results = [train(config_from_dict({**single, "train": {**single["train"], "seed": cfg.train.seed + k}},
                                      source=f"{cfg.name} member {k}"),
                     data, out / "members" / str(k), device=device, **train_kwargs)
               for k in range(cfg.ensemble.members)]
    rel = [f"members/{k}" for k in range(cfg.ensemble.members)]
    write_ensemble_file(out, cfg, rel)
    val = data.split("validation")
    rho = None
    if not val.empty:
        arr = pipeline.load_or_build_cache(data, list(val["image_id"]), cfg.data.warp_size, progress=False,
                                           cache_dir=train_kwargs.get("cache_dir"))
        sampler = pipeline.CropSampler(torch.from_numpy(arr).to(device), cfg.data.crop_size, cfg.data.mean,
                                       cfg.data.std)
        amp = bf16_autocast(cfg.train.amp, device)
        preds = np.mean([score_images(load_model(r.run_dir, device=device)[0], sampler, device, amp=amp)
                         for r in results], axis=0)
        rho = _spearman(preds, val["score"].to_numpy(float))
    done = all(r.stopped == "completed" for r in results)
    steps = sum(r.global_step for r in results)
    write_json(out / RUN_SUMMARY, {"format": RUN_FORMAT, "name": cfg.name, "ensemble_members": rel,
                                   "best_val_rho": rho, "global_step": steps,
                                   "stopped": "completed" if done else "incomplete"})
    return RunResult(run_dir=out, config=cfg, device=device, world_size=results[0].world_size,
                     epochs_completed=results[0].epochs_completed, global_step=steps,
                     total_steps=sum(r.total_steps for r in results), val_rho=[rho], best_epoch=None,
                     best_val_rho=rho, stopped="completed" if done else "time_limit", weights_sha256="",
                     elapsed_s=sum(r.elapsed_s for r in results))


def _setup(cfg: ModelConfig, data: AADBData, out: Path, device: str, d: _Dist, resume: bool,
           progress: bool | None, cache_dir: str | Path | None) -> _Run:
    """Prepare the training units, check an existing checkpoint (before anything is written, so a
    refused run leaves the folder as it was), then the run folder, the pixel caches and the plan."""
    t_start = time.monotonic()
    out = out.absolute()
    td = _prepare_train(cfg, data, device)
    val_df = data.split("validation")
    B = cfg.optim.batch_size
    if B < d.world:
        raise InputError(f"batch_size {B} is smaller than the number of processes {d.world}", field="optim.batch_size")
    digests = training_digests(data)
    fingerprint = training_fingerprint(data, digests)
    checkpoint = None
    if resume and (out / CHECKPOINT).is_file():
        checkpoint = load_run_file(out / CHECKPOINT, CHECKPOINT_FORMAT)
        _check_resumable(checkpoint, cfg, fingerprint, d.world, device, out / CHECKPOINT)
    if d.rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        if not resume:
            for name in (CHECKPOINT, BEST, METRICS, PLOT, RUN_SUMMARY):
                (out / name).unlink(missing_ok=True)
    _barrier(d)
    own_cache = cache_dir is None
    cache_root = Path(cache_dir) if cache_dir is not None else out / "cache"
    cache_dev = device if cfg.data.cache_on_device else "cpu"
    # tqdm: None = auto (hidden when not a TTY); only rank 0 shows progress
    bar_disabled = True if (d.rank != 0 or progress is False) else (None if progress is None else False)

    def pixels(ids: list[str], desc: str) -> torch.Tensor:
        kw = dict(cache_dir=cache_root, workers=cfg.data.decode_workers, content=digests[desc])
        if d.rank == 0:
            arr = pipeline.load_or_build_cache(data, ids, cfg.data.warp_size, desc=desc,
                                               progress=None if bar_disabled is None else not bar_disabled, **kw)
        _barrier(d)
        if d.rank != 0:
            arr = pipeline.load_or_build_cache(data, ids, cfg.data.warp_size, progress=False, write=False, **kw)
        return torch.from_numpy(arr).to(cache_dev)

    t_cache = time.time()
    train_sampler = pipeline.CropSampler(pixels(td.ids, "decode train"), cfg.data.crop_size, cfg.data.mean,
                                         cfg.data.std)
    val_sampler = None
    if not val_df.empty:
        val_sampler = pipeline.CropSampler(pixels(list(val_df["image_id"]), "decode validation"),
                                           cfg.data.crop_size, cfg.data.mean, cfg.data.std)
    if own_cache and d.rank == 0:  # the run's own cache holds only what this run uses (see prune_cache)
        pipeline.prune_cache(cache_root, used_since=t_cache)
    return _Run(cfg=cfg, out=out, device=device, d=d, amp=bf16_autocast(cfg.train.amp, device), td=td,
                plan=stage_plan(cfg, td), train_sampler=train_sampler, val_sampler=val_sampler,
                val_truth=val_df["score"].to_numpy(float), fingerprint=fingerprint, bar_disabled=bar_disabled,
                t_start=t_start, checkpoint=checkpoint)


def _loop(run: _Run, state: TrainState, stop_after_steps: int | None) -> str:
    """Run the steps from ``state.global_step`` to the end of the plan; returns why it stopped."""
    cfg = run.cfg
    time_limit = cfg.train.max_minutes * 60 if cfg.train.max_minutes else None
    state.model.train()
    window: list[torch.Tensor] = []
    t_window, n_img = time.monotonic(), 0
    bar = tqdm(total=run.total_steps, initial=state.global_step, desc=cfg.name, disable=run.bar_disabled, leave=False)
    current: _Stage | None = None
    try:
        while state.global_step < run.total_steps:
            stage = _stage_at(run.plan, state.global_step)
            if stage is not current:
                _enter_stage(run, state, stage)
                state.model.train()
                current = stage
            loss, parts, n = train_step(run, state, stage)
            n_img += n
            bar.update(1)
            window.append(torch.stack([loss, *parts.values()]))
            step = state.global_step
            at_validation = _is_validation_step(cfg, stage, step)
            if step % cfg.train.log_every_steps == 0 or at_validation:
                _log_window(run, state, stage, window, parts, n_img, time.monotonic() - t_window, bar)
                window, t_window, n_img = [], time.monotonic(), 0
            timed_out = time_limit is not None and _agree_flag(run.d, time.monotonic() - run.t_start > time_limit)
            if at_validation or timed_out:
                rho = validate(run, state)
                state.val_rho.append(rho)
                keep_best(run, state, stage, rho)
                log_record(run, {"kind": "val", "stage": stage.name, "epoch": _completed_epoch(stage, step),
                                 "step": step, "val_rho": rho, **({"partial_epoch": True} if timed_out else {})})
                if run.is_main:
                    plot_metrics(read_metrics(run.out / METRICS), run.out / PLOT, cfg.name)
            if at_validation or timed_out or step % cfg.train.checkpoint_every_steps == 0:
                save_checkpoint(run, state)
            if timed_out:
                return "time_limit"
            if stop_after_steps is not None and step >= stop_after_steps and step < run.total_steps:
                if not (at_validation or step % cfg.train.checkpoint_every_steps == 0):
                    save_checkpoint(run, state)
                _barrier(run.d)
                raise TrainingInterrupted(f"stopped after {step} steps (checkpoint written)")
    finally:
        bar.close()
    return "completed"


def _log_window(run: _Run, state: TrainState, stage: _Stage, window: list[torch.Tensor],
                parts: Mapping[str, torch.Tensor], n_img: int, dt: float, bar: Any) -> None:
    vals = torch.stack(window).float().mean(0).cpu().tolist()  # the only host sync of the step path
    if not math.isfinite(vals[0]):
        raise InputError(f"training diverged: the loss is {vals[0]} at step {state.global_step}; lower optim.lr",
                         field="optim.lr")
    log_record(run, {"kind": "train", "stage": stage.name, "epoch": _epoch_of(stage, state.global_step - 1)[0],
                     "step": state.global_step, "lr": _lr_at(run.cfg, stage, state.global_step - 1), "loss": vals[0],
                     **{f"loss_{k}": v for k, v in zip(parts, vals[1:])},
                     "images_per_s": n_img / dt if dt > 0 else None})
    bar.set_postfix(loss=f"{vals[0]:.4f}", stage=stage.name)


def _finish(run: _Run, state: TrainState, stopped: str, data: AADBData,
            init_weights: str | Path | None) -> RunResult:
    """Check the ranks agree, make sure ``best.pt`` exists, write ``run.json``."""
    sha = state_sha256(state.net.state_dict())
    if run.d.active:
        import torch.distributed as dist

        shas: list[Any] = [None] * run.d.world
        dist.all_gather_object(shas, sha)
        if len(set(shas)) != 1:
            raise RuntimeError(f"data-parallel ranks ended with different weights: {shas}")
    if run.is_main and not (run.out / BEST).is_file():
        keep_best(run, state, run.plan[-1], None)
    last = run.plan[-1]
    epochs = _epoch_of(last, state.global_step)[0] if len(run.plan) == 1 else len(
        [s for s in run.plan if s.end <= state.global_step])
    elapsed = state.elapsed_before + time.monotonic() - run.t_start
    b = state.best
    result = RunResult(run_dir=run.out, config=run.cfg, device=run.device, world_size=run.d.world,
                       epochs_completed=epochs, global_step=state.global_step, total_steps=run.total_steps,
                       val_rho=state.val_rho, best_epoch=b["epoch"], best_val_rho=b["rho"], stopped=stopped,
                       weights_sha256=sha, elapsed_s=elapsed, best_step=b.get("step"))
    if run.is_main:
        write_json(run.out / RUN_SUMMARY, {
            "format": RUN_FORMAT, "name": run.cfg.name, "device": run.device, "device_kind": _device_kind(run.device),
            "world_size": run.d.world, "ranks_agree": True, "epochs_completed": epochs,
            "global_step": state.global_step, "total_steps": run.total_steps,
            "stages": [{"name": s.name, "start": s.start, "steps": s.steps, "branches": sorted(s.branches),
                        "pairs": s.uses_pairs} for s in run.plan],
            "val_rho": state.val_rho, "best_epoch": b["epoch"], "best_step": b.get("step"), "best_val_rho": b["rho"],
            "checkpoint_rule": "highest validation rho among the final stage's validations",
            "validate_every_steps": run.cfg.train.validate_every_steps, "stopped": stopped,
            "weights_sha256": sha, "elapsed_s": round(elapsed, 3), "n_train_images": len(run.td.ids),
            "n_pairs": len(run.td.pairs) if run.td.pairs is not None else 0,
            "n_validation_images": len(run.val_truth), "data_origin": data.origin,
            "data_fingerprint": run.fingerprint,
            "init_weights": str(init_weights) if init_weights is not None else None,
        })
    _barrier(run.d)
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



"""Training of the reference models (paper §4.5): SGD with momentum and weight decay, the lr
annealed ×0.1 at fixed fractions of each stage (or AdamW with a cosine schedule, :mod:`.optim`;
frozen-features mode trains the head on cached backbone features, :mod:`.frozen`), validation ρ every N steps (or each epoch) with
the best weights of any stage kept, bf16 autocast on CUDA, and exact resumption from
checkpoints written atomically every N steps and at each validation. Data parallel over
processes started by ``torchrun`` (DistributedDataParallel; gloo on CPU, nccl on CUDA); only
rank 0 writes. The loop is small pieces — a fixed :class:`_Run`, a checkpointed
:class:`TrainState`, :func:`train_step`, :func:`validate`, :func:`keep_best`,
:func:`save_checkpoint`, :func:`log_record` — over a plan of stages (:func:`stage_plan`).

Determinism: every random stream is derived from ``(seed, purpose, epoch or step[, rank])`` —
the epoch's order, each step's crop offsets and each step's dropout masks — so a run resumed
from a checkpoint taken mid-epoch takes exactly the same steps as one that never stopped.

The step never touches the host: the epoch's permutation is made once per (stage, epoch) and
kept on the pixel cache's device, crop offsets and flips are drawn there by torch, and the loss
is read back only at log boundaries (where the time limit is also checked).
"""

from __future__ import annotations

import contextlib
import dataclasses
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
from .._keyguard import refuse_key_file
from .._lock import folder_lock
from .._ranks import spearman
from ..errors import InputError, excerpt, quote
from ..sources import AADBData, load
from . import frozen, pipeline
from .archs import WeightsInfo, family
from .config import ModelConfig, StageSection, config_from_dict, load_config, stage_weights
from .content import column_labels, fit_content_branch
from .devices import bf16_autocast, cpu_threads, pick_device, seed_torch
from .ensemble import clear_ensemble, write_ensemble_file
from .heads import AestheticsHead, attribute_columns, copy_top
from .inference import score_images, trunk_and_features
from .network import HeadOnFeatures, build_network, upgrade_state
from .optim import build_optimizer, lr_at, set_lr
from .losses import Batch, total_loss
from .runs import (BACKBONE_FILE, BEST, CHECKPOINT, CHECKPOINT_FORMAT, CONFIG_FILE, METRICS, MODEL_FORMAT, PLOT,
                   RESUMABLE_CHANGES, RUN_FORMAT, RUN_SUMMARY, RunResult, backbone_architecture, check_state_dict, config_diff, config_json,
                   keep_frozen_backbone, load_model, load_run_file, plot_metrics, read_metrics, run_weights,
                   save_run_file, state_sha256, training_digests, training_fingerprint, with_frozen_backbone)
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


@contextlib.contextmanager
def _distributed(device: str) -> Iterator[_Dist]:
    """This process's place in a data-parallel run (``torchrun`` sets WORLD_SIZE, RANK, LOCAL_RANK).
    A process group this opens is destroyed on the way out, even after an error: one left alive
    until interpreter exit can abort the process there, and a group the caller opened is left to it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        yield _Dist()
        return
    import torch.distributed as dist

    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    opened = not dist.is_initialized()
    if opened:
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    try:
        yield _Dist(rank=rank, world=world, local_rank=local, active=True)
    finally:
        if opened and dist.is_initialized():
            dist.destroy_process_group()


def _broadcast_object(d: _Dist, obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (itself when not data-parallel)."""
    if not d.active:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


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


@dataclass
class _TrainData:
    """The training split as tensors on the training device (targets, labels, attributes, the
    pairs' image indices), plus host-side facts computed once (target mean and spread, which
    images have attribute labels)."""

    ids: list[str]
    targets: torch.Tensor
    labels: torch.Tensor
    pairs: PairSet | None
    attributes: torch.Tensor | None
    content_labels: torch.Tensor | None
    target_mean: float = 0.0
    target_std: float = 1.0
    high_share: float = 0.5
    #: rows (image indices) with at least one attribute label
    attribute_rows: np.ndarray | None = None
    pair_first: torch.Tensor | None = None
    pair_second: torch.Tensor | None = None

    def n_units(self, pairs: bool, images: str = "all") -> int:
        """Training units of a stage: sampled pairs (rank loss) or images (all, or those with attribute labels)."""
        if pairs and self.pairs is not None:
            return len(self.pairs)
        if images == "attribute_labelled" and self.attribute_rows is not None:
            return len(self.attribute_rows)
        return len(self.ids)


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
                             weighting=p.within_weighting, same_hit=p.same_hit, ties=p.ties,
                             cross_group_size=p.cross_group_size)
    score = train_df["score"].to_numpy(np.float32)
    targets = torch.tensor(score, device=device)
    high = (train_df["score_mean"].to_numpy(float) > cfg.data.binary_threshold).astype(np.int64)
    labels = torch.tensor(high, device=device)
    attributes, attribute_rows = None, None
    if cfg.attributes is not None:
        cols = attribute_columns(cfg.attributes.columns)
        missing = [c for c in cols if c not in train_df.columns]
        if missing:
            raise InputError(f"the images table has no attribute column(s) {missing}", file=data.origin,
                             field="attributes.columns")
        values = train_df[list(cols)].apply(pd.to_numeric, errors="coerce").to_numpy(np.float32)
        if cfg.attributes.loss == "binary":
            _check_binary_targets(cols, values, data.origin)
        attributes = torch.tensor(values, device=device)
        attribute_rows = np.flatnonzero(~np.isnan(values).all(axis=1))
        if any(st.images == "attribute_labelled" for st in cfg.stages) and not len(attribute_rows):
            raise InputError("no training image has an attribute label", file=data.origin, field="attributes.columns")
    content_labels = None
    if cfg.content is not None and cfg.content.labels.startswith("column:"):
        col = cfg.content.labels.removeprefix("column:")
        if col not in train_df.columns:
            raise InputError(f"the images table has no column {col!r}", file=data.origin, field="content.labels")
        content_labels = column_labels(pd.to_numeric(train_df[col], errors="coerce").to_numpy(float),
                                       cfg.content.clusters, col)
    sd = float(score.std())
    pair_first = pair_second = None
    if pairs is not None:  # the pairs' image indices live where the pixels do (see _sample_device)
        dev = device if cfg.data.cache_on_device else "cpu"
        pair_first = torch.as_tensor(np.asarray(pairs.first, np.int64)).to(dev)
        pair_second = torch.as_tensor(np.asarray(pairs.second, np.int64)).to(dev)
    return _TrainData(list(train_df["image_id"]), targets, labels, pairs, attributes, content_labels,
                      target_mean=float(score.mean()), target_std=sd if sd > 0 else 1.0,
                      high_share=float(high.mean()), attribute_rows=attribute_rows,
                      pair_first=pair_first, pair_second=pair_second)


def _check_binary_targets(cols: tuple[str, ...], values: np.ndarray, origin: str) -> None:
    """Refuse ``attributes.loss = "binary"`` on attribute targets outside [0, 1] (AADB's attribute
    means lie in [-1, 1]): binary cross-entropy is defined on [0, 1], and on a target below 0 (or
    above 1) it has no minimum, so it would train without error towards infinite logits."""
    outside = (values < 0) | (values > 1)  # NaN (no label) compares False: masked, as in the loss
    if not outside.any():
        return
    columns = np.flatnonzero(outside.any(axis=0))
    k = int(columns[0])
    bad = values[outside[:, k], k]
    more = f", and so do {len(columns) - 1} more column(s)" if len(columns) > 1 else ""
    raise InputError(f"the binary attribute loss needs targets in [0, 1], but attribute column {quote(cols[k])} "
                     f"holds {len(bad)} training value(s) outside it (e.g. {float(bad[0]):g}){more}; AADB's "
                     'attribute means lie in [-1, 1]: use attributes.loss = "euclidean" for them',
                     file=origin, field="attributes.loss")


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
    freeze: frozenset[str] = frozenset()
    images: str = "all"

    @property
    def end(self) -> int:
        return self.start + self.steps


def stage_plan(cfg: ModelConfig, td: _TrainData) -> list[_Stage]:
    """The stages of a config (one implicit stage when it has no ``[[stages]]``), with step counts."""
    B = cfg.optim.batch_size
    specs = cfg.stages or (StageSection(name="train", share=1.0, weights=None, branches=cfg.branches),)
    plan, start = [], 0
    for i, st in enumerate(specs):
        weights = dict(stage_weights(st, cfg))
        pairs = td.pairs is not None and "rank" in weights  # ω_r = 0 still trains on the pair batches
        spe = max(1, td.n_units(pairs, st.images) // B)
        if cfg.optim.steps is None:
            steps = spe * cfg.optim.epochs
        else:
            steps = _share_steps(st.share, cfg.optim.steps, start, later=len(specs) - 1 - i)
        plan.append(_Stage(i, st.name, start, steps, weights, frozenset(st.branches), pairs, spe, i == len(specs) - 1,
                           frozenset(st.freeze), st.images))
        start += steps
    return plan


def _share_steps(share: float, total: int, start: int, *, later: int) -> int:
    """A stage's steps of ``total`` (``optim.steps``) when ``start`` are taken and ``later`` stages
    follow: its rounded share, at least 1, but leaving each later stage at least 1 (the last stage
    takes the rest). So the stages always add up to exactly ``total``: rounding each share on its
    own (0.5 × 3 → 2 with shares 0.5, 0.49, 0.01) would run the plan past ``optim.steps``.
    A plan the rounding fits is unchanged (a run resumes with the same stages)."""
    if later == 0:
        return total - start
    return min(max(1, round(share * total)), total - start - later)


def _stage_at(plan: list[_Stage], step: int) -> _Stage:
    return next((s for s in plan if step < s.end), plan[-1])


def _lr_at(cfg: ModelConfig, stage: _Stage, step: int) -> float:
    """The stage's schedule (:func:`.optim.lr_at`): warm-up, then step annealing or cosine."""
    return lr_at(cfg.optim, stage.start, stage.steps, step)


def _epoch_permutation(cfg: ModelConfig, stage: _Stage, td: _TrainData, epoch: int) -> np.ndarray:
    """The seeded order of a stage's training units in one epoch (pair indices, or image indices;
    on the attribute-labelled images only where the stage says so)."""
    n = td.n_units(stage.uses_pairs, stage.images)
    key = [cfg.train.seed, 1, epoch] if stage.index == 0 else [cfg.train.seed, 1, stage.index, epoch]
    order = np.random.default_rng(key).permutation(n)
    if not stage.uses_pairs and stage.images == "attribute_labelled" and td.attribute_rows is not None:
        order = td.attribute_rows[order]
    return order


def _units(run: "_Run", stage: _Stage, step: int) -> torch.Tensor:
    """The training units (image or pair indices) of global ``step``, a slice of the epoch's
    permutation. The permutation is made once per epoch and stage and kept on the sampling device,
    so a step slices a device tensor and never goes through the host."""
    B = run.cfg.optim.batch_size
    epoch, pos = divmod(step - stage.start, stage.steps_per_epoch)
    if run.order_key != (stage.index, epoch):
        run.order = torch.as_tensor(_epoch_permutation(run.cfg, stage, run.td, epoch)).to(run.train_sampler.device)
        run.order_key = (stage.index, epoch)
    order = run.order
    return order[pos * B:(pos + 1) * B] if order.shape[0] >= B else order


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
    order: torch.Tensor | None = None
    order_key: tuple[int, int] | None = None
    score_init: dict[str, Any] = field(default_factory=dict)
    #: decode-cache keys of the train/validation pixels (the frozen mode's feature cache extends them)
    pixel_keys: dict[str, str] = field(default_factory=dict)
    cache_root: Path | None = None
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
    best: dict[str, Any] = field(default_factory=lambda: {"epoch": None, "step": None, "rho": None, "stage": None})
    elapsed_before: float = 0.0
    #: global step of the latest validation (-1: none yet), so a stage entry is validated once
    last_val_step: int = -1
    #: what the samplers' outputs go through: the network, or in frozen mode its head on cached features
    on_inputs: torch.nn.Module | None = None
    #: the pretrained weights the backbone started from (run.json, results)
    backbone: WeightsInfo | None = None
    #: frozen mode: the record of the backbone kept once in the run folder (``keep_frozen_backbone``)
    frozen_backbone: dict[str, str] | None = None


def _epoch_of(stage: _Stage, step: int) -> tuple[int, int]:
    return divmod(step - stage.start, stage.steps_per_epoch)


def _completed_epoch(stage: _Stage, step: int) -> int:
    """The epoch (0-based, within the stage) that the step count ``step`` lies in or just finished."""
    return max(0, step - stage.start - 1) // stage.steps_per_epoch


def train_step(run: _Run, state: TrainState, stage: _Stage) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
    """One SGD step at ``state.global_step``; returns the (device) loss, its parts and the images seen.

    Everything here runs on the devices (the units, offsets, gather, crop and flip on the pixel
    cache's device, the rest on the training device): no ``.item()``, numpy or host copy, so a
    GPU step never waits for the host (``tests/models/test_model_device_path.py`` runs it on
    ``meta`` tensors, where any host conversion raises).
    """
    cfg, td, step = run.cfg, run.td, state.global_step
    units = _units(run, stage, step)
    per_unit = 2 if stage.uses_pairs else 1
    m = units.shape[0]
    seed_torch(_seed(cfg.train.seed, 2, step), run.device)  # the global batch's crops: the same for any world size
    oy, ox, fl = (a.view(m, per_unit) for a in run.train_sampler.random_offsets_t(m * per_unit, cfg.data.hflip))
    mine = slice(run.d.rank, None, run.d.world)
    units, oy, ox, fl = units[mine], oy[mine], ox[mine], fl[mine]
    if stage.uses_pairs:
        n = units.shape[0]
        idx = torch.cat([td.pair_first[units], td.pair_second[units]])
        oy, ox, fl = (torch.cat([a[:, 0], a[:, 1]]) for a in (oy, ox, fl))
    else:
        idx, oy, ox, fl = units, oy[:, 0], ox[:, 0], fl[:, 0]
    x = run.train_sampler.crops(idx, oy, ox, fl, device=run.device)
    idx = idx.to(run.device, non_blocking=True)  # a no-op when the cache is on the training device
    extra: dict[str, Any] = {}
    if stage.uses_pairs:
        ar = torch.arange(n, device=run.device)
        extra = {"pair_first": ar, "pair_second": ar + n, "pair_delta": torch.ones(n, device=run.device)}
    if td.attributes is not None:
        extra.update(attributes=td.attributes[idx], attribute_kind=cfg.attributes.loss)
    batch = Batch(targets=td.targets[idx], labels=td.labels[idx], **extra)
    if cfg.train.fast and run.device.startswith("cuda") and x.ndim == 4:  # images (frozen mode: feature rows)
        x = x.contiguous(memory_format=torch.channels_last)
    set_lr(state.opt, _lr_at(cfg, stage, step))
    seed_torch(_seed(cfg.train.seed, 3, step, run.d.rank), run.device)
    with torch.autocast("cuda" if run.device.startswith("cuda") else "cpu", dtype=torch.bfloat16, enabled=run.amp):
        outputs = state.model(x)
    loss, parts = total_loss(*_objective(run, stage, outputs, batch))
    state.opt.zero_grad(set_to_none=True)
    loss.backward()
    state.opt.step()
    state.global_step += 1
    return loss.detach(), parts, int(idx.shape[0]) * run.d.world


def _objective(run: _Run, stage: _Stage, outputs: dict[str, torch.Tensor], batch: Batch):
    """The arguments of :func:`total_loss` for a stage: Eq. 3 as configured, or with
    ``loss.standardise_targets`` the same objective on standardised scores and targets (α and ω_r
    divided by the targets' std, ω_a by std², which leaves Eq. 3 unchanged up to a factor 1/std²)."""
    cfg = run.cfg
    weights, margin = dict(stage.weights), cfg.loss.rank_margin
    if not cfg.loss.standardise_targets:
        return outputs, batch, weights, margin
    mu, sd = run.td.target_mean, run.td.target_std
    outputs = {**outputs, "score": (outputs["score"] - mu) / sd}
    batch = dataclasses.replace(batch, targets=(batch.targets - mu) / sd)
    scale = {"rank": 1 / sd, "attribute": 1 / sd ** 2}
    return outputs, batch, {k: w * scale.get(k, 1.0) for k, w in weights.items()}, margin / sd


def validate(run: _Run, state: TrainState) -> float | None:
    """Spearman ρ of the network's scores on the validation split (None without one)."""
    if run.val_sampler is None:
        return None
    pred = score_images(state.on_inputs or state.net, run.val_sampler, run.device, batch_size=run.cfg.train.eval_batch_size, amp=run.amp)
    return _spearman(pred, run.val_truth)


def keep_best(run: _Run, state: TrainState, stage: _Stage, rho: float | None) -> None:
    """Keep ``best.pt``: the highest validation ρ among all validations of all stages, stage
    entries included (the same rule for every variant), recording the stage it came from; a run
    without validation keeps its last weights. An earlier stage's model is a valid model of the
    variant: its branches are still zero corrections (:class:`~.heads.AestheticsHead`)."""
    best = state.best
    better = best["rho"] is None or (rho is not None and rho > best["rho"])
    if run.val_sampler is not None and rho is None and best["step"] is not None:
        better = False
    if better:
        epoch = _completed_epoch(stage, state.global_step)
        best.update(epoch=epoch, step=state.global_step, rho=rho, stage=stage.name)
        if run.is_main:
            save_run_file({"format": MODEL_FORMAT, "version": 3, "config": config_json(run.cfg),
                           **run_weights(state.net, state.frozen_backbone),
                   "backbone": _backbone_json(state), "epoch": epoch, "global_step": state.global_step, "val_rho": rho,
                   "stage": stage.name}, run.out / BEST)


def save_checkpoint(run: _Run, state: TrainState) -> None:
    """Write ``checkpoint.pt`` atomically (rank 0): everything needed to continue bit-identically."""
    if not run.is_main:
        return
    stage = _stage_at(run.plan, state.global_step)
    epoch, in_epoch = _epoch_of(stage, state.global_step)
    save_run_file({"format": CHECKPOINT_FORMAT, "version": 3, "config": config_json(run.cfg),
           **run_weights(state.net, state.frozen_backbone),
           "backbone": _backbone_json(state),
           "optimizer": state.opt.state_dict(), "stage": stage.index, "epoch": epoch, "step_in_epoch": in_epoch,
           "global_step": state.global_step, "rng": {"torch": torch.get_rng_state()}, "val_rho": state.val_rho,
           "best": state.best, "last_val_step": state.last_val_step,
           "elapsed_s": state.elapsed_before + time.monotonic() - run.t_start,
           "world_size": run.d.world, "device_kind": _device_kind(run.device), "data_fingerprint": run.fingerprint},
          run.out / CHECKPOINT)


def _backbone_json(state: TrainState) -> str:
    """The backbone's identity and architecture as JSON (run files keep it; load_model rebuilds from it)."""
    info = state.backbone or WeightsInfo(state.net.arch, None, None, None, None, state.net.backbone.architecture())
    return json.dumps(info.to_dict(), sort_keys=True)


def _info_args(info: Mapping[str, Any]) -> dict[str, Any]:
    return {"family": info.get("family"), "weights_id": info.get("weights_id"), "source": info.get("source"),
            "sha256": info.get("weights_sha256"), "pretraining_data": info.get("pretraining_data"),
            "architecture": info.get("architecture")}


def _use_cached_features(run: _Run, state: TrainState, progress: bool | None) -> None:
    """Frozen mode: replace the pixel samplers by the backbone's cached features (computed once
    per image; rank 0 writes the cache, the other ranks read or compute their own copy)."""
    digest = frozen.digest_weights(state.net.backbone)
    show = None if run.bar_disabled is None else not run.bar_disabled
    for name in ("train", "val"):
        sampler = getattr(run, f"{name}_sampler")
        if sampler is None:
            continue
        key = frozen.feature_key(run.pixel_keys[name], digest, sampler)
        setattr(run, f"{name}_sampler", frozen.cached_features(
            state.net, sampler, run.device, key=key, cache_dir=run.cache_root, batch_size=run.cfg.train.eval_batch_size,
            amp=run.amp, write=run.is_main, progress=show, desc=f"features {name}"))


def _device_kind(device: str) -> str:
    return torch.device(device).type


def _check_resumable(ck: dict[str, Any], cfg: ModelConfig, fingerprint: str, world: int, device: str,
                     path: Path) -> None:
    """Refuse a checkpoint of another config, data set, world size or device kind, saying which."""
    try:
        old_config = json.loads(ck["config"])
    except (KeyError, TypeError, ValueError, RecursionError) as exc:
        raise InputError("the checkpoint's config is not JSON; pass --no-resume or another --out",
                         file=str(path)) from exc
    if isinstance(old_config, dict):  # fields added since the checkpoint was written: their defaults
        old_config = config_from_dict(old_config, source=str(path)).to_dict()
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
    model = upgrade_state(ck["model"]) if isinstance(ck.get("model"), Mapping) else ck.get("model")
    model = with_frozen_backbone(ck, model, path.parent, str(path))
    state.frozen_backbone = ck.get("frozen_backbone")  # checked against backbone.pt just now
    if isinstance(model, dict):
        for k, default in (("head.score_shift", 0.0), ("head.score_scale", 1.0)):  # written before them
            if k in state.net.state_dict() and k not in model:
                model[k] = torch.tensor(default)
    check_state_dict(model, state.net, str(path))
    try:
        state.net.load_state_dict(model)
        state.opt.load_state_dict(ck["optimizer"])
        state.global_step = int(ck["global_step"])
        state.val_rho = list(ck["val_rho"])
        state.best = {"stage": None, **dict(ck["best"])}
        state.last_val_step = int(ck.get("last_val_step", state.global_step))
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
    """Switch the head to the stage's branches (fitting ContClass the first time the content
    branch is used), set which parameters the stage trains, and wrap the network for data
    parallelism (again: the set of trained parameters may have changed). Predictions do not
    change here: every branch is a correction that starts at zero."""
    head = state.net.head
    if isinstance(head, AestheticsHead):
        head.active = stage.branches
        _fit_content_if_needed(run, state, stage)
        _set_trainable(head, stage)
    state.model = _wrap(run, state.on_inputs or state.net)


def _set_trainable(head: AestheticsHead, stage: _Stage) -> None:
    """The stage trains Reg's score layer always, the branches' own layers when it uses a branch,
    the attribute layer when it uses and does not freeze it, and ContClass never (fitted, frozen).
    So every trained parameter is used by the stage's forward pass."""
    for p in head.branch_parameters():
        p.requires_grad_(bool(stage.branches))
    if head.attribute is not None:
        head.attribute.requires_grad_("attributes" in stage.branches and "attributes" not in stage.freeze)
    for p in head.content_parameters():
        p.requires_grad_(False)


def _wrap(run: _Run, net: torch.nn.Module) -> torch.nn.Module:
    """The module a step calls: ``net``, under DDP when data-parallel (``find_unused_parameters``
    stays off: :func:`_set_trainable` leaves no trained parameter unused), compiled in fast mode."""
    model = net
    if run.d.active:
        from torch.nn.parallel import DistributedDataParallel as DDP

        model = DDP(net, device_ids=[torch.device(run.device).index] if run.device.startswith("cuda") else None,
                    find_unused_parameters=False)
    if run.cfg.train.fast and run.device.startswith("cuda"):
        model = torch.compile(model)  # cudnn.benchmark is set for the run by _fast_mode
    return model


def _fit_content_if_needed(run: _Run, state: TrainState, stage: _Stage) -> None:
    """Fit and freeze ContClass (§4.4, §5.1) when the stage first uses the content branch: its copy
    of the top layers starts from the trained network's, and it is fine-tuned on the content labels
    (k-means clusters of the unit-normalised features when the config names no label column). A
    backbone without a copyable top (or a frozen one) gives ContClass an MLP on its features."""
    head = state.net.head
    if "content" not in stage.branches or bool(head.content_fitted):
        return
    c = run.cfg.content
    on_inputs = state.on_inputs or state.net
    trunk, fc7 = trunk_and_features(on_inputs, run.train_sampler, run.device,
                                    batch_size=run.cfg.train.eval_batch_size, amp=run.amp)
    copy_top(on_inputs, head)
    labels, accuracy = fit_content_branch(head, trunk, fc7, run.td.content_labels, seed=run.cfg.train.seed,
                                          restarts=c.kmeans_restarts, epochs=c.finetune_epochs, lr=c.finetune_lr)
    del trunk, fc7
    if run.d.world > 1:  # every rank fits the same way; rank 0's result is broadcast so they agree exactly
        import torch.distributed as dist

        for t in [*head.content_parameters(), head.centroids]:
            dist.broadcast(t.data, src=0)
    sizes = torch.bincount(labels[labels >= 0].cpu(), minlength=head.n_content).tolist()
    log_record(run, {"kind": "content", "stage": stage.name, "step": state.global_step, "group_sizes": sizes,
                     "content_train_accuracy": accuracy})


def _init_score(net: torch.nn.Module, cfg: ModelConfig, td: _TrainData) -> dict[str, Any]:
    """Start the score where the practitioner options say (``model.score_bias``,
    ``loss.standardise_targets``); returns what was set, for run.json."""
    head = net.head
    layer = getattr(head, "score_layer", None)
    done: dict[str, Any] = {"score_bias": cfg.model.score_bias, "standardise_targets": cfg.loss.standardise_targets,
                            "target_mean": td.target_mean, "target_std": td.target_std}
    with torch.no_grad():
        if cfg.loss.standardise_targets and hasattr(head, "score_shift"):
            head.score_shift.fill_(td.target_mean)
            head.score_scale.fill_(td.target_std)
        if cfg.model.score_bias != "target_mean":
            return done
        if layer is not None:  # the score starts at the training targets' mean
            layer.bias.fill_(0.0 if cfg.loss.standardise_targets else td.target_mean)
        elif cfg.model.head == "binary_confidence":  # P(high) starts at the share of high images
            p = min(max(td.high_share, 1e-3), 1 - 1e-3)
            head.bias.copy_(torch.tensor([0.0, math.log(p / (1 - p))], device=head.bias.device))
    return done


def _build_state(run: _Run, init_weights: str | Path | None, init_sha256: str | None, resume: bool) -> TrainState:
    """The network (its backbone's architecture from the checkpoint being resumed, or from the
    weights' location), its weights (checkpoint, pretrained, or fresh), the optimiser, and the
    module the trainer steps (DDP- or compile-wrapped where configured)."""
    cfg = run.cfg
    fam = family(cfg.model.arch)
    ckpt_path = run.out / CHECKPOINT
    ck = run.checkpoint if resume else None  # read and checked by _setup
    if ck is not None:
        architecture = backbone_architecture(ck, str(ckpt_path))
        info = json.loads(ck["backbone"]) if isinstance(ck.get("backbone"), str) else None
    else:
        architecture = fam.read_architecture(str(init_weights)) if init_weights is not None else None
    seed_torch(cfg.train.seed, run.device)
    net = build_network(cfg, architecture).to(run.device)
    if cfg.train.fast and run.device.startswith("cuda"):
        net = net.to(memory_format=torch.channels_last)
    run.score_init = _init_score(net, cfg, run.td)
    state = TrainState(net=net, opt=build_optimizer(net, cfg.optim), model=net)
    if ck is not None:
        _restore(ck, state, ckpt_path)
        state.backbone = WeightsInfo(**_info_args(info)) if info else None
        if run.is_main:
            log.info("resuming %s at step %d", run.out, state.global_step)
    elif init_weights is not None:
        digest = fam.load_weights(net.backbone, str(init_weights), init_sha256)
        weights_id = cfg.model.weights or Path(str(init_weights)).name
        state.backbone = WeightsInfo(fam.name, weights_id, str(init_weights), digest, fam.pretraining_data(weights_id),
                                     net.backbone.architecture())
        if run.is_main:
            log.info("initialised the %s backbone from %s (sha256 %s)", fam.name, init_weights, digest)
    elif run.is_main:
        warnings.warn(f"no --init-weights: training the {fam.name} backbone from scratch (the paper fine-tunes "
                      "ImageNet weights)", stacklevel=4)
    state.on_inputs = HeadOnFeatures(net) if cfg.model.mode == "frozen" else net
    return state  # the step's module (DDP, compiled) is made at each stage entry (_enter_stage)


# --- the trainer -----------------------------------------------------------------------------

def train(config: ModelConfig | str | Path, data: str | Path | AADBData, out: str | Path, *,
          device: str | None = None, init_weights: str | Path | None = None, init_sha256: str | None = None,
          resume: bool = True, max_minutes: float | None = None, overrides: Mapping[str, Any] | None = None,
          progress: bool | None = None, cache_dir: str | Path | None = None,
          stop_after_steps: int | None = None) -> RunResult:
    """Train one model variant on the train split, validating as configured, into the run folder ``out``.

    ``config`` is a :class:`ModelConfig` or a TOML path (``overrides`` are dotted keys applied on
    top); ``init_weights`` are the backbone's pretrained weights — a local standard-keyed AlexNet
    state dict, or a ``save_pretrained`` folder for the transformers families, checked against
    ``init_sha256`` when given (without them an AlexNet trains from scratch, with a warning).
    ``model.mode = "frozen"`` trains the head on cached backbone features. With ``resume`` an existing checkpoint in ``out`` is continued
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
    if init_weights is not None and Path(init_weights).is_file():  # before the run folder is claimed
        refuse_key_file(init_weights, field="--init-weights")
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
    with _distributed(device) as dist_info:
        if device.startswith("cuda"):
            torch.cuda.set_device(torch.device(device))  # before anything touches CUDA: no context on GPU 0
        cuda_devices = [torch.device(device).index or 0] if device.startswith("cuda") else []
        with _deterministic(cfg.train.deterministic and not cfg.train.fast, device.startswith("cuda")), \
                cpu_threads(cfg.train.cpu_threads, device), _fast_mode(cfg.train.fast and device.startswith("cuda")), \
                torch.random.fork_rng(devices=cuda_devices):
            run = _setup(cfg, data, Path(out), device, dist_info, resume, progress, cache_dir)
            state = _build_state(run, init_weights, init_sha256, resume)
            _clear_stale(run, resume)
            if cfg.model.mode == "frozen":
                if run.is_main and state.frozen_backbone is None:  # kept once: the run files hold the head only
                    state.frozen_backbone = keep_frozen_backbone(state.net, run.out)
                _use_cached_features(run, state, progress)
            if run.is_main:
                recs = read_metrics(run.out / METRICS, upto_step=state.global_step)
                write_text(run.out / METRICS, "".join(json.dumps(r) + "\n" for r in recs))
                write_text(run.out / CONFIG_FILE, json.dumps(cfg.to_dict(), indent=2, sort_keys=True) + "\n")
            stopped = _loop(run, state, stop_after_steps)
            return _finish(run, state, stopped, data, init_weights)


def _train_members(cfg: ModelConfig, data: AADBData, out: Path, device: str, train_kwargs: dict) -> list[RunResult]:
    """Train the members one after another (seed ``train.seed + k``) into ``out/members/k``, within
    one ``train.max_minutes`` budget for them all: each gets what is left, and none starts once it
    is spent or a member stopped early (a rerun resumes where they stopped)."""
    single = cfg.to_dict()
    single["ensemble"] = {"members": 1}
    deadline = time.monotonic() + cfg.train.max_minutes * 60 if cfg.train.max_minutes else None
    results: list[RunResult] = []
    for k in range(cfg.ensemble.members):
        left = None if deadline is None else (deadline - time.monotonic()) / 60
        if results and (results[-1].stopped != "completed" or (left is not None and left <= 0)):
            break
        member = {**single, "train": {**single["train"], "seed": cfg.train.seed + k,
                                      **({"max_minutes": max(left, 1e-6)} if left is not None else {})}}
        results.append(train(config_from_dict(member, source=f"{cfg.name} member {k}"), data,
                             out / "members" / str(k), device=device, **train_kwargs))
    return results


def _clear_stale(run: _Run, resume: bool) -> None:
    """Once the new run's state is built (its init weights read and checked, so a refused run loses
    nothing): without resume, the previous run's files; and on any fresh start, an ensemble's
    record, which would otherwise go on describing the folder (predict reads it first), with the
    members it lists (:func:`~.ensemble.clear_ensemble`)."""
    if not run.is_main:
        return
    if not resume:
        for name in (CHECKPOINT, BEST, METRICS, PLOT, RUN_SUMMARY, BACKBONE_FILE):
            (run.out / name).unlink(missing_ok=True)
    if run.checkpoint is None:  # its members too: they would go on being read as this folder's models
        clear_ensemble(run.out)


def _train_ensemble(cfg: ModelConfig, data: AADBData, out: Path, *, device: str, **train_kwargs) -> RunResult:
    """Train every member (seed ``train.seed + k``) into ``out/members/k``, then write
    ``ensemble.json`` and ``run.json`` with the validation ρ of the averaged predictions."""
    out = out.absolute()
    results = _train_members(cfg, data, out, device, train_kwargs)
    if len(results) < cfg.ensemble.members or results[-1].stopped != "completed":
        return dataclasses.replace(results[-1], run_dir=out, config=cfg, stopped="time_limit")
    rel = [f"members/{k}" for k in range(cfg.ensemble.members)]
    write_ensemble_file(out, cfg, rel)
    val = data.split("validation")
    rho = None
    if not val.empty:
        arr = pipeline.load_or_build_cache(data, list(val["image_id"]), cfg.data.warp_size, progress=False,
                                           cache_dir=train_kwargs.get("cache_dir"))
        sampler = pipeline.CropSampler(pipeline.pixels_to(arr, device), cfg.data.crop_size, cfg.data.mean,
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
    # rank 0 hashes the image bytes; the others take its digests (no rank but one reads every image)
    digests = _broadcast_object(d, training_digests(data) if d.rank == 0 else None)
    fingerprint = training_fingerprint(data, digests)
    checkpoint = None
    if resume and (out / CHECKPOINT).is_file():
        checkpoint = load_run_file(out / CHECKPOINT, CHECKPOINT_FORMAT)
        _check_resumable(checkpoint, cfg, fingerprint, d.world, device, out / CHECKPOINT)
    if d.rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    _barrier(d)
    own_cache = cache_dir is None
    cache_root = Path(cache_dir) if cache_dir is not None else out / "cache"
    cache_dev = device if cfg.data.cache_on_device else "cpu"
    # tqdm: None = auto (hidden when not a TTY); only rank 0 shows progress
    bar_disabled = True if (d.rank != 0 or progress is False) else (None if progress is None else False)

    keys = {}

    def pixels(ids: list[str], desc: str) -> torch.Tensor:
        kw = dict(cache_dir=cache_root, workers=cfg.data.decode_workers, content=digests[desc])
        keys["val" if "validation" in desc else "train"] = pipeline.cache_key(data, ids, cfg.data.warp_size,
                                                                             digests[desc])
        if d.rank == 0:
            arr = pipeline.load_or_build_cache(data, ids, cfg.data.warp_size, desc=desc,
                                               progress=None if bar_disabled is None else not bar_disabled, **kw)
        _barrier(d)
        if d.rank != 0:
            arr = pipeline.load_or_build_cache(data, ids, cfg.data.warp_size, progress=False, write=False, **kw)
        return pipeline.pixels_to(arr, cache_dev)

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
                t_start=t_start, checkpoint=checkpoint, pixel_keys=keys, cache_root=cache_root)


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
                if stage.index > 0 and state.global_step == stage.start and state.last_val_step != stage.start:
                    # the model a stage starts from competes for best.pt; normally the previous stage's
                    # final validation already scored it (same step, same predictions: see heads.py)
                    _validate_and_keep(run, state, stage, entry=True)
            loss, parts, n = train_step(run, state, stage)
            n_img += n
            bar.update(1)
            window.append(torch.stack([loss, *parts.values()]))
            step = state.global_step
            at_validation = _is_validation_step(cfg, stage, step)
            at_log = step % cfg.train.log_every_steps == 0 or at_validation
            if at_log:
                _log_window(run, state, stage, window, parts, n_img, time.monotonic() - t_window, bar)
                window, t_window, n_img = [], time.monotonic(), 0
            # the time limit is checked (and agreed between ranks) at log boundaries only, not every step
            timed_out = time_limit is not None and at_log and _agree_flag(
                run.d, time.monotonic() - run.t_start > time_limit)
            if at_validation or timed_out:
                _validate_and_keep(run, state, stage, partial=timed_out)
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


def _validate_and_keep(run: _Run, state: TrainState, stage: _Stage, *, entry: bool = False,
                       partial: bool = False) -> None:
    """Validate, offer the weights to :func:`keep_best`, log the record and redraw the plot."""
    step = state.global_step
    rho = validate(run, state)
    state.val_rho.append(rho)
    state.last_val_step = step
    keep_best(run, state, stage, rho)
    extra = {"stage_entry": True} if entry else ({"partial_epoch": True} if partial else {})
    log_record(run, {"kind": "val", "stage": stage.name, "epoch": _completed_epoch(stage, step), "step": step,
                     "val_rho": rho, **extra})
    if run.is_main:
        plot_metrics(read_metrics(run.out / METRICS), run.out / PLOT, run.cfg.name)


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
            "best_stage": b.get("stage"),
            "checkpoint_rule": "highest validation rho among all validations of all stages (stage entries included)",
            "practitioner_options": {**run.score_init, "head_lr_mult": run.cfg.optim.head_lr_mult},
            "validate_every_steps": run.cfg.train.validate_every_steps, "stopped": stopped,
            "weights_sha256": sha, "elapsed_s": round(elapsed, 3), "n_train_images": len(run.td.ids),
            "n_pairs": len(run.td.pairs) if run.td.pairs is not None else 0,
            "n_validation_images": len(run.val_truth), "data_origin": data.origin,
            "data_fingerprint": run.fingerprint,
            "init_weights": str(init_weights) if init_weights is not None else None,
            "backbone": json.loads(_backbone_json(state)), "mode": run.cfg.model.mode,
            "trained_on": trained_on(data),
        })
    _barrier(run.d)
    return result


def trained_on(data: AADBData) -> list[str]:
    """What a run was trained on, as ``dataset:split`` (``aadb:train``, ``ava:train``; the
    validation split chooses the kept weights, so it is listed too): results compare it with the
    data they score to flag contamination (:func:`~aadb_toolkit.protocols.results.contamination`)."""
    name = "ava" if data.provenance.kind == "ava" else "aadb"
    return [f"{name}:train", f"{name}:validation"]


def _agree_flag(d: _Dist, flag: bool) -> bool:
    """Rank 0's decision, shared by every rank (so all stop at the same step)."""
    if not d.active:
        return flag
    import torch.distributed as dist

    dev = f"cuda:{torch.cuda.current_device()}" if dist.get_backend() == "nccl" else "cpu"
    t = torch.tensor([1 if flag else 0], dtype=torch.int64, device=dev)  # NCCL needs a CUDA tensor
    dist.broadcast(t, src=0)
    return bool(t.item())



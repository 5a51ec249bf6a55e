"""Model configs: a TOML file (one per variant under ``baselines/``) read into a validated, frozen
:class:`ModelConfig`. Unknown sections, keys, heads, loss terms and pair strategies are rejected
with close-match suggestions; ``--set section.key=value`` overrides are applied before validation.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import json
import math
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .. import paper
from .._registry import did_you_mean
from ..errors import InputError
from .archs import BACKBONES, IMAGENET_MEAN, IMAGENET_STD
from .heads import HEADS, head_outputs
from .losses import LOSS_TERMS
from .samplers import STRATEGIES, WITHIN_WEIGHTINGS

#: AADB high/low threshold on the 1–5 mean score for AlexNet FT Conf: ``score_mean > 3`` (the
#: scale's midpoint, the analogue of AVA's > 5 on 1–10, ``paper.AVA_BINARY_THRESHOLD``).
AADB_BINARY_THRESHOLD: float = 3.0


@dataclass(frozen=True)
class ModelSection:
    """``[model]``: backbone, training mode and head. ``arch`` names a backbone family
    (:data:`~.archs.BACKBONES`); ``mode`` "finetune" trains the backbone (all blocks, or the last
    ``train_blocks``) with the head, "frozen" trains the head on features computed once per image;
    ``weights`` is the id of the pretrained weights the recipe expects (documentation and results;
    the weights themselves come from ``--init-weights``). ``width``/``fc7_factor`` shape AlexNet only."""

    arch: str = "alexnet"
    mode: str = "finetune"
    train_blocks: int | None = None
    weights: str = ""
    head: str = "regression"
    width: float = 1.0
    dropout: float = 0.5
    #: multiplies the parameters of fc7 alone (the paper's "wider intermediate layer", §5.3: 8)
    fc7_factor: float = 1.0
    #: size of the base score features of the attribute/content heads (Fig. 3b/c), scaled by width
    feature_size: int = 128
    #: where the score layer's bias starts: "target_mean" (the training targets' mean; the paper
    #: does not say how the new layer starts) or "default" (torch's fresh-layer init, as before)
    score_bias: str = "target_mean"


@dataclass(frozen=True)
class DataSection:
    """``[data]``: input pipeline (paper §4.5: warp 256×256, random 227×227 crop, centre crop at test)."""

    warp_size: int = paper.WARP_SIZE
    crop_size: int = paper.CROP_SIZE
    hflip: bool = False
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    binary_threshold: float = AADB_BINARY_THRESHOLD
    cache_on_device: bool = True
    decode_workers: int = 4


@dataclass(frozen=True)
class PairsSection:
    """``[pairs]``: pair sampling for the ranking loss (see :mod:`.samplers`)."""

    strategy: str = "none"
    n_pairs: int = 0
    within_share: float = 0.5
    cross_min_diff: float = 0.0
    cross_bias: float = 1.0
    within_weighting: str = "pairs"
    #: within-rater pairs only from images the rater scored in the same HIT (one session)
    same_hit: bool = False
    #: within-rater ties: "skip" them, or "keep" them with δ = +1 (Eq. 1 read literally)
    ties: str = "skip"
    #: cross-rater pairs only within a fixed random partition of the training images into groups
    #: of this size (0: any two images), to match the sparsity of same-HIT within-rater pairs
    cross_group_size: int = 0


@dataclass(frozen=True)
class AttributesSection:
    """``[attributes]``: the attribute branch (§4.3, Fig. 3b). ``columns`` = ``["aadb"]`` (the 11
    attributes of AADB) or images-table column names; ``loss`` "euclidean" (targets in [-1, 1]) or
    "binary" (BCE on {0, 1}). NaN targets are masked out. ``freeze`` is kept for old configs and
    must be false: §4.3 freezes a *trained* attribute layer, so freezing is a stage's ``freeze``
    after a stage that trains the layer (see ``baselines/reg_rank_att_frozen.toml``)."""

    columns: tuple[str, ...] = ("aadb",)
    loss: str = "euclidean"
    freeze: bool = False


@dataclass(frozen=True)
class ContentSection:
    """``[content]``: the content branch (§4.4, §5.1, Fig. 3c): ``clusters`` K score branches gated
    by content weights; ``labels`` "kmeans" (seeded k-means on unit-normalised train fc7) or
    "column:<name>" (integer categories of an images-table column); ``gating`` "classifier" (the
    frozen content classifier's softmax, default) or "centroid" (softmax of −distance²/temperature)."""

    clusters: int = paper.CONTENT_CLUSTERS
    labels: str = "kmeans"
    gating: str = "classifier"
    temperature: float = 0.1
    kmeans_restarts: int = 4
    #: ContClass fine-tuning (its copy of the top layers + softmax classifier) on the content labels
    finetune_epochs: int = 8
    finetune_lr: float = 1e-3


@dataclass(frozen=True)
class StageSection:
    """One ``[[stages]]`` entry of a staged recipe: its ``share`` of ``optim.steps``, its loss
    ``weights`` (default: ``[loss.weights]``), the ``branches`` it uses ("attributes", "content"),
    the branches whose own layers it ``freeze``s ("attributes": §4.3's frozen, trained attribute
    layer) and the training ``images`` it samples ("all", or "attribute_labelled": only images
    with at least one attribute label, to train the attribute layer where labels are scarce)."""

    name: str
    share: float
    weights: Mapping[str, float] | None = None
    branches: tuple[str, ...] = ()
    freeze: tuple[str, ...] = ()
    images: str = "all"


@dataclass(frozen=True)
class EnsembleSection:
    """``[ensemble]``: ``members`` networks trained with seeds ``train.seed + k``; predictions averaged."""

    members: int = 1


@dataclass(frozen=True)
class LossSection:
    """``[loss]``: ``weights`` maps loss terms to weights (Eq. 2/3); ``rank_margin`` is α of Eq. 1."""

    weights: Mapping[str, float] = field(default_factory=lambda: types.MappingProxyType({"regression": 1.0}))
    rank_margin: float = paper.RANK_MARGIN["aadb"]
    #: train on standardised targets (y − mean) / std of the training targets, with α and ω_r
    #: divided by std and ω_a by std², so the objective is Eq. 3's up to a factor 1/std²
    #: (a short-budget option; predictions stay on the [0, 1] scale)
    standardise_targets: bool = False


@dataclass(frozen=True)
class OptimSection:
    """``[optim]``: ``optimizer`` "sgd" (paper §4.5, with ``momentum``) or "adamw"; ``schedule``
    "step" (the lr is multiplied by ``anneal_factor`` at each fraction of a stage's steps listed in
    ``anneal_at``) or "cosine" (to 0 at the stage's end); either after a linear warm-up over
    ``warmup_steps``. ``layer_decay`` < 1 scales each backbone block's lr by ``layer_decay`` per
    block below the head (layer-wise lr decay). An epoch is one pass over the training images (Reg,
    FT Conf) or over the sampled pairs (Reg+Rank: each step sees ``batch_size`` pairs)."""

    optimizer: str = "sgd"
    schedule: str = "step"
    warmup_steps: int = 0
    layer_decay: float = 1.0
    lr: float = paper.LEARNING_RATE
    momentum: float = paper.MOMENTUM
    weight_decay: float = paper.WEIGHT_DECAY
    anneal_factor: float = paper.LR_ANNEAL_FACTOR
    anneal_at: tuple[float, ...] = (0.5, 0.75)
    batch_size: int = 64
    epochs: int = 1
    #: fixed number of training steps (overrides ``epochs``; Table 5 and staged recipes use it)
    steps: int | None = None
    #: lr multiplier of the new head (Caffe's ``lr_mult``); 1 = the paper's "0.0001 for all layers"
    head_lr_mult: float = 1.0


@dataclass(frozen=True)
class TrainSection:
    """``[train]``: seeding, checkpointing, logging and run limits. ``cpu_threads`` sets torch's
    intra-op threads on CPU (1 is much faster on a shared, oversubscribed machine)."""

    seed: int = 0
    checkpoint_every_steps: int = 500
    log_every_steps: int = 20
    eval_batch_size: int = 256
    deterministic: bool = True
    amp: str = "auto"
    max_minutes: float | None = None
    cpu_threads: int | None = None
    #: validate every N steps (same N for every row of a table); None: at each epoch's end
    validate_every_steps: int | None = None
    #: opt-in speed on CUDA (cudnn.benchmark, channels_last, torch.compile); not bit-reproducible
    fast: bool = False


@dataclass(frozen=True)
class ModelConfig:
    """One model variant. ``paper_table``/``paper_row`` name the reported number it reproduces."""

    name: str
    description: str = ""
    paper_table: str = ""
    paper_row: str = ""
    model: ModelSection = ModelSection()
    data: DataSection = DataSection()
    pairs: PairsSection = PairsSection()
    loss: LossSection = LossSection()
    optim: OptimSection = OptimSection()
    train: TrainSection = TrainSection()
    attributes: AttributesSection | None = None
    content: ContentSection | None = None
    ensemble: EnsembleSection = EnsembleSection()
    stages: tuple[StageSection, ...] = ()

    @property
    def branches(self) -> tuple[str, ...]:
        """The configured branches (``"attributes"``, ``"content"``) of the network."""
        return tuple(b for b, sec in (("attributes", self.attributes), ("content", self.content)) if sec is not None)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-able form (round-trips through :func:`config_from_dict`)."""
        return json.loads(json.dumps(_plain(self)))

    def replace(self, overrides: Mapping[str, Any]) -> "ModelConfig":
        """A copy with dotted-key overrides applied (``{"optim.epochs": 2}``), validated."""
        raw = self.to_dict()
        for key, value in overrides.items():
            _set_dotted(raw, key, value)
        return config_from_dict(raw, source="overrides")


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return [_plain(v) for v in obj]
    return obj


_SECTIONS: dict[str, type] = {
    "model": ModelSection, "data": DataSection, "pairs": PairsSection,
    "loss": LossSection, "optim": OptimSection, "train": TrainSection,
    "attributes": AttributesSection, "content": ContentSection, "ensemble": EnsembleSection,
}
_OPTIONAL_SECTIONS = ("attributes", "content")
_BRANCHES = ("attributes", "content")
_TIES = ("skip", "keep")
_ATTRIBUTE_LOSSES = ("euclidean", "binary")
_GATINGS = ("classifier", "centroid")
_SCORE_BIAS = ("target_mean", "default")
_STAGE_IMAGES = ("all", "attribute_labelled")
_AMP = ("auto", "bf16", "off")
_MODES = ("finetune", "frozen")
_OPTIMIZERS = ("sgd", "adamw")
_SCHEDULES = ("step", "cosine")


def _suggest(name: str, options) -> str:
    hint = did_you_mean(name, options, quote=True)
    return f"; {hint}" if hint else f"; expected one of {sorted(options)}"


def _coerce(value: Any, tp: Any, where: str, source: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        tp = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is tuple:
        expected = f"a list of {getattr(args[0], '__name__', args[0])}"
    elif origin in (Mapping, collections.abc.Mapping):
        expected = f"a table of {getattr(args[1], '__name__', args[1])}"
    else:
        expected = getattr(tp, "__name__", str(tp))
    bad = InputError(f"expected {expected}, got {value!r}", file=source, field=where)
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    if origin is tuple:
        if isinstance(value, str) and args[0] is str:
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise bad
        return tuple(_coerce(v, args[0], f"{where}[{i}]", source) for i, v in enumerate(value))
    if origin in (Mapping, collections.abc.Mapping):
        if not isinstance(value, dict):
            raise bad
        return types.MappingProxyType({str(k): _coerce(v, args[1], f"{where}.{k}", source) for k, v in value.items()})
    raise TypeError(f"unsupported config type {tp}")


def _build(cls: type, raw: Mapping[str, Any], prefix: str, source: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in raw.items():
        where = f"{prefix}{key}"
        if key not in names:
            raise InputError(f"unknown key{_suggest(key, names)}", file=source, field=where)
        if key in _OPTIONAL_SECTIONS and cls is ModelConfig and value is None:
            kwargs[key] = None
        elif key == "stages" and cls is ModelConfig:
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise InputError("expected an array of tables ([[stages]])", file=source, field=where)
            kwargs[key] = tuple(_build(StageSection, v, f"stages[{i}].", source) for i, v in enumerate(value))
        elif key in _SECTIONS and cls is ModelConfig:
            if not isinstance(value, dict):
                raise InputError("expected a table", file=source, field=where)
            kwargs[key] = _build(_SECTIONS[key], value, f"{key}.", source)
        else:
            kwargs[key] = _coerce(value, hints[key], where, source)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise InputError(f"incomplete section: {exc}", file=source, field=prefix.rstrip(".") or None) from exc


def _check(cfg: ModelConfig, source: str) -> None:
    """Raise an InputError naming ``source`` and the field for the first invalid value (checks run
    in a fixed order, so a config with several errors always reports the same one)."""
    def err(msg: str, where: str) -> InputError:
        return InputError(msg, file=source, field=where)

    _check_paper_row(cfg, err)
    _check_model_and_data(cfg.model, cfg.data, err)
    _check_pairs_and_loss(cfg.pairs, cfg.loss, err)
    _check_optim_and_train(cfg.optim, cfg.train, err)
    if not cfg.model.fc7_factor > 0 or cfg.model.feature_size < 1:
        raise err("fc7_factor must be > 0 and feature_size ≥ 1", "model")
    if cfg.model.score_bias not in _SCORE_BIAS:
        raise err(f"unknown score_bias {cfg.model.score_bias!r}{_suggest(cfg.model.score_bias, _SCORE_BIAS)}",
                  "model.score_bias")
    if not cfg.optim.head_lr_mult > 0:
        raise err("head_lr_mult must be > 0", "optim.head_lr_mult")
    if cfg.loss.standardise_targets and cfg.model.head != "regression":
        raise err("standardised targets need a regression score head", "loss.standardise_targets")
    if cfg.pairs.ties not in _TIES:
        raise err(f"unknown ties {cfg.pairs.ties!r}{_suggest(cfg.pairs.ties, _TIES)}", "pairs.ties")
    _check_branches(cfg, err)
    _check_ranges(cfg, err)


#: Seeds are 32-bit: numpy and torch take 0 … 2**32 - 1 (an ensemble's members use seed + k).
MAX_SEED = 2**32 - 1
#: The largest warp: 16× the paper's 256. Larger warps only upsample the photos (AADB's are about
#: 500–1000 pixels on a side), and one warped image alone would take warp² × 3 bytes.
MAX_WARP_SIZE = 4096
#: Bytes per parameter while training: weights, gradients, SGD momentum and the kept best copy (fp32).
TRAINING_BYTES_PER_PARAMETER = 16
#: Bytes per sampled pair while pairs are drawn (index, partner, kind, rater; chunks are drawn double).
BYTES_PER_PAIR = 64


#: Where a container's memory limit is read: cgroup v2, then v1 (v1 writes about 2**63 for none).
CGROUP_MEMORY_FILES = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))


def physical_memory() -> int:
    """This machine's physical memory in bytes (64 GiB where the system does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 64 * 2**30


def machine_memory() -> int:
    """The memory this process may use, in bytes: the physical memory, or a container's smaller
    cgroup limit (a limit above the physical memory, "max" or an unreadable file means none).
    It bounds the sizes a config may ask for, so a too-large one fails here, not in the OOM killer."""
    memory = physical_memory()
    for file in CGROUP_MEMORY_FILES:
        try:
            text = file.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if text.isdigit() and 0 < int(text) < memory:
            return int(text)
    return memory


def _gib(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB"


def _check_ranges(cfg: ModelConfig, err) -> None:
    """Numbers that would fail only later, deep inside training, with a NaN, an overflow or an
    out-of-memory error: finite and sane values, and sizes whose memory the machine can hold."""
    o, lo, d, t = cfg.optim, cfg.loss, cfg.data, cfg.train
    for key, value, low, high in (("optim.lr", o.lr, 0, 10), ("optim.momentum", o.momentum, 0, 1),
                                  ("optim.weight_decay", o.weight_decay, 0, 1),
                                  ("loss.rank_margin", lo.rank_margin, 0, 10)):
        if not (math.isfinite(value) and low <= value <= high) or (key == "optim.momentum" and value == 1):
            raise err(f"{value!r} is out of range: {key.split('.')[1]} must be a finite number in "
                      f"[{low}, {high}{')' if key == 'optim.momentum' else ']'}", key)
    top_lr = o.lr * max(1.0, o.head_lr_mult)  # warm-up and schedules never exceed it; layer decay only lowers it
    if top_lr * o.weight_decay >= 1:
        which = f"the head's lr {top_lr!r} (lr × head_lr_mult)" if o.head_lr_mult > 1 else f"lr {o.lr!r}"
        raise err(f"weight_decay {o.weight_decay!r} is too strong for {which}: each step multiplies a weight "
                  "by 1 − lr × weight_decay, which must stay above 0 (at 0 or below the decay alone zeroes or "
                  "flips every weight)", "optim.weight_decay")
    for key, values in (("data.mean", d.mean), ("data.std", d.std)):
        if not all(math.isfinite(v) for v in values):
            raise err(f"{list(values)} has a value that is not finite", key)
    if not all(-1 <= v <= 2 for v in d.mean) or not all(1e-3 <= v <= 10 for v in d.std):
        raise err("mean must lie in [-1, 2] and std in [0.001, 10] (fractions of the 0–255 pixel range)",
                  "data.mean" if not all(-1 <= v <= 2 for v in d.mean) else "data.std")
    if not math.isfinite(d.binary_threshold):
        raise err("binary_threshold must be finite", "data.binary_threshold")
    if not 0 <= t.seed <= MAX_SEED - (cfg.ensemble.members - 1):
        raise err(f"seed {t.seed} is out of range: it must be an integer in 0 … {MAX_SEED} (with an "
                  "ensemble, seed + members - 1 too)", "train.seed")
    if d.warp_size > MAX_WARP_SIZE:
        raise err(f"warp_size {d.warp_size} is larger than {MAX_WARP_SIZE}: one warped image alone would "
                  f"take {_gib(3 * d.warp_size ** 2)}, the cache of every image far more", "data.warp_size")
    memory = machine_memory()
    pair_bytes = BYTES_PER_PAIR * cfg.pairs.n_pairs
    if pair_bytes > memory // 2:
        raise err(f"n_pairs {cfg.pairs.n_pairs:,} would take about {_gib(pair_bytes)} to draw, more than half "
                  f"of this machine's memory ({_gib(memory)})", "pairs.n_pairs")
    _check_network_size(cfg, memory, err)


def _check_network_size(cfg: ModelConfig, memory: int, err) -> None:
    """Refuse a network (``model.width``, ``fc7_factor``, ``feature_size``) too large to train here:
    it is built on the ``meta`` device (no memory) to count its parameters exactly."""
    import torch

    from .network import build_network

    if cfg.model.arch != "alexnet":  # a transformers backbone's size is its weights folder's, not the config's
        return
    with torch.device("meta"):
        n = sum(p.numel() for p in build_network(cfg).parameters())
    need = n * TRAINING_BYTES_PER_PARAMETER
    if need > memory:
        m = cfg.model
        raise err(f"the network has {n:,} parameters (model.width {m.width:g}, model.fc7_factor "
                  f"{m.fc7_factor:g}, model.feature_size {m.feature_size}): training it needs about {_gib(need)}, "
                  f"more than this machine's memory ({_gib(memory)})", "model")


def _check_paper_row(cfg: ModelConfig, err) -> None:
    if cfg.paper_table:
        tables = [n for n in dir(paper) if n.startswith("TABLE") and isinstance(getattr(paper, n), dict)]
        if cfg.paper_table not in tables:
            raise err(f"unknown paper table {cfg.paper_table!r}{_suggest(cfg.paper_table, tables)}", "paper_table")
        rows = [str(k) for k in getattr(paper, cfg.paper_table)]
        if cfg.paper_row not in rows:
            raise err(f"no row {cfg.paper_row!r} in paper.{cfg.paper_table}{_suggest(cfg.paper_row, rows)}", "paper_row")


def _check_model_and_data(m: ModelSection, d: DataSection, err) -> None:
    if m.arch not in BACKBONES:
        raise err(f"unknown backbone family {m.arch!r}{_suggest(m.arch, BACKBONES)}", "model.arch")
    if m.mode not in _MODES:
        raise err(f"unknown mode {m.mode!r}{_suggest(m.mode, _MODES)}", "model.mode")
    if m.train_blocks is not None and (m.train_blocks < 0 or m.mode == "frozen"):
        raise err("train_blocks must be ≥ 0, and only applies to mode 'finetune'", "model.train_blocks")
    if m.head not in HEADS:
        raise err(f"unknown head {m.head!r}{_suggest(m.head, HEADS)}", "model.head")
    if not m.width > 0:
        raise err("width must be > 0", "model.width")
    if not 0 <= m.dropout < 1:
        raise err("dropout must be in [0, 1)", "model.dropout")
    smallest = BACKBONES[m.arch].input.min_size
    if d.crop_size < smallest:
        raise err(f"crop_size must be ≥ {smallest} ({m.arch}'s smallest input)", "data.crop_size")
    if d.warp_size < d.crop_size:
        raise err(f"warp_size {d.warp_size} is smaller than crop_size {d.crop_size}", "data.warp_size")
    if len(d.mean) != 3 or len(d.std) != 3 or min(d.std) <= 0:
        raise err("mean and std need 3 values (RGB), std > 0", "data.mean")


def _check_pairs_and_loss(p: PairsSection, lo: LossSection, err) -> None:
    if p.strategy not in STRATEGIES:
        raise err(f"unknown strategy {p.strategy!r}{_suggest(p.strategy, STRATEGIES)}", "pairs.strategy")
    if p.within_weighting not in WITHIN_WEIGHTINGS:
        raise err(f"unknown within_weighting {p.within_weighting!r}{_suggest(p.within_weighting, WITHIN_WEIGHTINGS)}",
                  "pairs.within_weighting")
    if p.n_pairs < 0 or (p.strategy != "none" and p.n_pairs == 0):
        raise err("n_pairs must be > 0 when a pair strategy is set", "pairs.n_pairs")
    if not 0 <= p.within_share <= 1:
        raise err("within_share must be in [0, 1]", "pairs.within_share")
    if p.cross_bias < 0:
        raise err("cross_bias must be ≥ 0 (pairs drawn with P ∝ |Δscore|^bias; 0 = uniform)", "pairs.cross_bias")
    if p.cross_group_size < 0 or p.cross_group_size == 1:
        raise err("cross_group_size must be 0 (any two images) or at least 2", "pairs.cross_group_size")
    if not lo.weights:
        raise err("no loss terms", "loss.weights")
    if lo.rank_margin < 0:
        raise err("rank_margin must be ≥ 0", "loss.rank_margin")


def _check_optim_and_train(o: OptimSection, t: TrainSection, err) -> None:
    if o.optimizer not in _OPTIMIZERS:
        raise err(f"unknown optimizer {o.optimizer!r}{_suggest(o.optimizer, _OPTIMIZERS)}", "optim.optimizer")
    if o.schedule not in _SCHEDULES:
        raise err(f"unknown schedule {o.schedule!r}{_suggest(o.schedule, _SCHEDULES)}", "optim.schedule")
    if o.warmup_steps < 0 or not 0 < o.layer_decay <= 1:
        raise err("need warmup_steps ≥ 0 and 0 < layer_decay ≤ 1", "optim")
    if not (o.lr > 0 and o.momentum >= 0 and o.weight_decay >= 0 and 0 < o.anneal_factor <= 1):
        raise err("need lr > 0, momentum ≥ 0, weight_decay ≥ 0, 0 < anneal_factor ≤ 1", "optim")
    if any(not 0 < a < 1 for a in o.anneal_at) or list(o.anneal_at) != sorted(o.anneal_at):
        raise err("anneal_at must be increasing fractions in (0, 1)", "optim.anneal_at")
    if o.batch_size < 1 or o.epochs < 1:
        raise err("batch_size and epochs must be ≥ 1", "optim")
    if t.checkpoint_every_steps < 1 or t.log_every_steps < 1 or t.eval_batch_size < 1:
        raise err("checkpoint_every_steps, log_every_steps and eval_batch_size must be ≥ 1", "train")
    if t.amp not in _AMP:
        raise err(f"unknown amp {t.amp!r}{_suggest(t.amp, _AMP)}", "train.amp")
    if t.cpu_threads is not None and t.cpu_threads < 1:
        raise err("cpu_threads must be ≥ 1", "train.cpu_threads")
    if t.max_minutes is not None and t.max_minutes <= 0:
        raise err("max_minutes must be > 0", "train.max_minutes")
    if t.validate_every_steps is not None and t.validate_every_steps < 1:
        raise err("validate_every_steps must be ≥ 1", "train.validate_every_steps")
    if o.steps is not None and o.steps < 1:
        raise err("steps must be ≥ 1", "optim.steps")


def _check_branches(cfg: ModelConfig, err) -> None:
    a, c = cfg.attributes, cfg.content
    if a is not None:
        if a.loss not in _ATTRIBUTE_LOSSES:
            raise err(f"unknown attribute loss {a.loss!r}{_suggest(a.loss, _ATTRIBUTE_LOSSES)}", "attributes.loss")
        if not a.columns or ("aadb" in a.columns and len(a.columns) > 1):
            raise err('columns is "aadb" or a list of images-table columns', "attributes.columns")
        if a.freeze:
            raise err("§4.3 freezes a trained attribute layer: train it in one stage, then list "
                      "\"attributes\" in a later stage's freeze (see baselines/reg_rank_att_frozen.toml)",
                      "attributes.freeze")
    if c is not None:
        if c.clusters < 1 or c.kmeans_restarts < 1 or not c.temperature > 0:
            raise err("clusters and kmeans_restarts must be ≥ 1, temperature > 0", "content")
        if c.finetune_epochs < 1 or not c.finetune_lr > 0:
            raise err("finetune_epochs must be ≥ 1 and finetune_lr > 0", "content")
        if c.gating not in _GATINGS:
            raise err(f"unknown gating {c.gating!r}{_suggest(c.gating, _GATINGS)}", "content.gating")
        if c.labels != "kmeans" and not (c.labels.startswith("column:") and len(c.labels) > 7):
            raise err('labels must be "kmeans" or "column:<name>"', "content.labels")
    if (a is not None or c is not None) and cfg.model.head != "regression":
        raise err("the attribute and content branches extend the regression head", "model.head")
    if cfg.ensemble.members < 1:
        raise err("members must be ≥ 1", "ensemble.members")
    if cfg.stages:
        if cfg.optim.steps is None:
            raise err("a staged recipe needs optim.steps (the stages share it)", "optim.steps")
        if abs(sum(st.share for st in cfg.stages) - 1) > 1e-6 or any(st.share <= 0 for st in cfg.stages):
            raise err("stage shares must be > 0 and sum to 1", "stages")
        if cfg.optim.steps < len(cfg.stages):
            raise err(f"{cfg.optim.steps} step(s) cannot be shared by {len(cfg.stages)} stages (each needs at "
                      "least one step)", "optim.steps")
    for i, st in enumerate(cfg.stages):
        for b in st.branches:
            if b not in _BRANCHES:
                raise err(f"unknown branch {b!r}{_suggest(b, _BRANCHES)}", f"stages[{i}].branches")
            if b not in cfg.branches:
                raise err(f"branch {b!r} is not configured (add an [{b}] section)", f"stages[{i}].branches")
        _check_weights(cfg, stage_weights(st, cfg), set(st.branches), f"stages[{i}].weights", err)
        _check_stage_freeze_and_images(cfg, i, err)
    if not cfg.stages:
        _check_weights(cfg, cfg.loss.weights, set(cfg.branches), "loss.weights", err)


def _check_stage_freeze_and_images(cfg: ModelConfig, i: int, err) -> None:
    """A stage freezes only an active branch that an earlier stage trained; a stage on the
    attribute-labelled images needs the attribute branch and image (not pair) batches."""
    st = cfg.stages[i]
    for b in st.freeze:
        if b != "attributes":
            raise err(f"only the attribute layer can be frozen, not {b!r}", f"stages[{i}].freeze")
        if b not in st.branches:
            raise err(f"stage freezes {b!r} but does not use it (add it to branches)", f"stages[{i}].freeze")
        trained = any(trains_attributes(prev, cfg) for prev in cfg.stages[:i])  # b is "attributes" here
        if not trained:
            raise err("no earlier stage trains the attribute layer: §4.3 freezes a trained layer", f"stages[{i}].freeze")
    if st.images not in _STAGE_IMAGES:
        raise err(f"unknown images {st.images!r}{_suggest(st.images, _STAGE_IMAGES)}", f"stages[{i}].images")
    if st.images == "attribute_labelled":
        if cfg.attributes is None:
            raise err("attribute_labelled images need an [attributes] section", f"stages[{i}].images")
        if stage_weights(st, cfg).get("rank", 0) > 0:
            raise err("a stage on the attribute-labelled images trains on images, not pairs (no rank term)",
                      f"stages[{i}].images")


def stage_weights(stage: StageSection, cfg: ModelConfig) -> Mapping[str, float]:
    """A stage's loss weights as the trainer reads them: its own table (even an empty one), else
    ``loss.weights``."""
    return stage.weights if stage.weights is not None else cfg.loss.weights


def trains_attributes(stage: StageSection, cfg: ModelConfig) -> bool:
    """Whether ``stage`` trains the attribute layer: it uses the branch, does not freeze it, and
    weighs the attribute loss above 0."""
    return ("attributes" in stage.branches and "attributes" not in stage.freeze
            and stage_weights(stage, cfg).get("attribute", 0) > 0)


def _check_weights(cfg: ModelConfig, weights: Mapping[str, float], branches: set[str], where: str, err) -> None:
    if not any(w > 0 for w in weights.values()):
        raise err("at least one loss weight must be > 0 (with none, nothing is trained)", where)
    provided = set(head_outputs(cfg.model.head)) | {"attributes"} if "attributes" in branches else \
        set(head_outputs(cfg.model.head))
    for name, w in weights.items():
        if name not in LOSS_TERMS:
            raise err(f"unknown loss term {name!r}{_suggest(name, LOSS_TERMS)}", f"{where}.{name}")
        if w < 0:
            raise err("loss weights must be ≥ 0", f"{where}.{name}")
        term = LOSS_TERMS[name]
        if w > 0 and not term.requires <= provided:
            raise err(f"head {cfg.model.head!r} does not provide {sorted(term.requires - provided)}"
                      + (" (add an [attributes] section)" if "attributes" in term.requires else ""), f"{where}.{name}")
        if w > 0 and term.needs_pairs and cfg.pairs.strategy == "none":
            raise err("the rank loss needs pairs: set pairs.strategy", f"{where}.{name}")


def config_from_dict(raw: Mapping[str, Any], *, source: str = "<config>") -> ModelConfig:
    """Validate a raw (TOML-shaped) mapping into a :class:`ModelConfig`."""
    if "name" not in raw:
        raise InputError("missing key", file=source, field="name")
    weights = (raw.get("loss") or {}).get("weights") if isinstance(raw.get("loss"), dict) else None
    if isinstance(weights, dict) and (weights.get("attribute") or 0) > 0 and "attributes" not in raw:
        raw = {**raw, "attributes": {}}  # the attribute loss term implies the branch, with defaults
    cfg = _build(ModelConfig, raw, "", source)
    _check(cfg, source)
    return cfg


def parse_override(text: str) -> tuple[str, Any]:
    """Parse one ``section.key=value`` override; the value is read as TOML, else taken as a string."""
    if "=" not in text:
        raise InputError(f"override {text!r} is not of the form section.key=value", field="--set")
    key, value = text.split("=", 1)
    key = key.strip()
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()
    return key, parsed


def _set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = raw
    for part in parts[:-1]:
        if not isinstance(node.get(part, {}), dict):
            raise InputError(f"{part!r} is not a table", field=key)
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> ModelConfig:
    """Read and validate a TOML config file, applying dotted-key ``overrides`` first. A bare
    baseline name (``"reg_rank_within"``, no folder or suffix) that is not a file here loads the
    shipped ``baselines/<name>.toml``."""
    path = Path(path)
    if _is_baseline_name(path):
        return baseline_config(str(path), overrides)
    raw = _read_toml(path, ())
    for key, value in (overrides or {}).items():
        _set_dotted(raw, key, value)
    return config_from_dict(raw, source=str(path))


def _read_toml(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    """A TOML config with its ``extends`` resolved: ``extends = ["recipes/frozen", ...]`` names
    files (relative to this one, ``.toml`` implied) whose tables are merged in order, this file's
    own values last (a shared recipe, e.g. a family's input spec or a training mode, lives once)."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read config: {exc}", file=str(path)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"invalid TOML: {exc}", file=str(path)) from exc
    parents = raw.pop("extends", [])
    parents = [parents] if isinstance(parents, str) else parents
    if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
        raise InputError("expected a file name or a list of them", file=str(path), field="extends")
    merged: dict[str, Any] = {}
    for name in parents:
        parent = (path.parent / name).with_suffix(".toml")
        if parent.resolve() in chain or len(chain) > 8:
            raise InputError(f"extends {name!r} forms a cycle", file=str(path), field="extends")
        _merge(merged, _read_toml(parent, (*chain, path.resolve())))
    _merge(merged, raw)
    return merged


def _merge(into: dict[str, Any], new: Mapping[str, Any]) -> None:
    """Deep-merge tables of ``new`` into ``into`` (``new`` wins; arrays and values are replaced)."""
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict) and k != "weights":
            _merge(into[k], v)
        else:
            into[k] = v


def _is_baseline_name(path: Path) -> bool:
    return not path.exists() and path.suffix == "" and len(path.parts) == 1


def paper_warp_for_crop(crop_size: int) -> int:
    """Warp size keeping the paper's 256:227 ratio for a given crop size."""
    return int(round(crop_size * paper.WARP_SIZE / paper.CROP_SIZE))


def baselines_dir() -> Path:
    """The shipped ``baselines/`` folder (one TOML per variant): the top-level folder of the
    checkout the package runs from (editable install, ``PYTHONPATH=<checkout>``), else the copy a
    plain install ships inside the package (``aadb_toolkit/baselines``, see setup.py)."""
    package = Path(__file__).resolve().parents[1]
    checkout = package.parent
    for path in (checkout / "baselines", package / "baselines"):
        if path.is_dir() and (path.parent == package or (checkout / "pyproject.toml").is_file()):
            return path
    raise InputError("the baseline configs are missing from this installation "
                     "(reinstall aadb-toolkit; see docs/models.md)", file=str(package / "baselines"))


def baseline_names() -> list[str]:
    """Names of the shipped baseline configs, sorted (``aadb train --config NAME`` accepts them)."""
    return sorted(p.stem for p in baselines_dir().glob("*.toml"))


def baseline_config(name: str, overrides: Mapping[str, Any] | None = None) -> ModelConfig:
    """Load ``baselines/<name>.toml`` (e.g. ``"demo_cpu"``, ``"reg_rank_within_cross"``)."""
    folder = baselines_dir()
    names = baseline_names()
    if name not in names:
        raise InputError(f"no config file or baseline named {name!r}{_suggest(name, names)} "
                         "(`aadb baselines` lists them)", file=str(folder))
    return load_config(folder / f"{name}.toml", overrides)

"""Recovery suite: does each model mechanism recover an effect planted in the synthetic AADB, and
stay silent where none is planted?

Five mechanisms, each against its ablation, each on a *planted* setting of the simulator (the
effect is strong) and on its *null* control (the mechanism has nothing to exploit):

    rank_loss         Reg+Rank (within-rater pairs)      vs Reg                     planted/null_reliability
    within_pairs      Reg+Rank, within-rater pairs       vs cross-rater pairs       planted/null_reliability
    attribute_branch  Reg+Rank+Att                       vs Reg+Rank                planted/null_attributes
    content_branch    Reg+Rank+Att+Cont                  vs Reg+Rank+Att            planted/null_interaction
    personalizer      per-rater personalizers, k = 10    vs the generic Reg+Rank    planted/null_taste

For every seed, each setting gets its own release (the seed moves the release and every model), and
a mechanism and its ablation train on that same release with the same training seed: the per-seed
difference in test ρ is paired. ρ is Spearman's against the planted truth: the latent quality of
the test images (rows 1–4), or each rater's own noise-free utility on the query images of the piaa
episodes (personalizer rows, the mean over episodes of the within-rater ρ). The 95% CI is a
t-interval over the per-seed paired differences (docs/models.md, "Recovery suite", says why).
The personalizer rows are the two reference personalizers (ridge on fc7 residuals; last layer
fine-tuned with the rank loss; each chooses its penalty on the train split) and an oracle given the rater's true taste.

    python benchmarks/recovery.py --quick --json recovery.json          # about 20 to 30 min on 2 cores (docs/performance.md)
    python benchmarks/recovery.py --seed 100 --json recovery.json       # the full suite
    python benchmarks/recovery.py --quick --only personalizer rank_loss  # a subset

Every model is a head trained on the frozen features of a quarter-width AlexNet that the suite first
pretrains on synthetic photos of its own (docs/models.md): the suite checks mechanisms, not the
paper's numbers. Two rows differ. The content row has a backbone of its own and larger releases. The
attribute row's backbone never learned an attribute (only the content type, as ImageNet), both
of its arms fine-tune it (the attribute labels act on the shared layers, as in the paper, §4.3), and
its releases are larger too.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import math
import multiprocessing
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from tqdm import tqdm

from aadb_toolkit import paper, schema, sources
from aadb_toolkit._ranks import spearman
from aadb_toolkit.curate import anonymize, curate
from aadb_toolkit.curate._images import worker_pool
from aadb_toolkit.data import AADBData
from aadb_toolkit.models import config_from_dict, predict, train
from aadb_toolkit.models.config import ContentSection
from aadb_toolkit.models.predict import predict_features
from aadb_toolkit.piaa import episodes as ep
from aadb_toolkit.piaa.personalize import images_to_read, personalize_scores
from aadb_toolkit.simulate import load_setting, simulate, truth_dir_for


def _rho(x, y) -> float:
    """Spearman's ρ (NaN where undefined), the toolkit's one implementation."""
    return spearman(x, y)[0]


@dataclass(frozen=True)
class Size:
    """How big one run of the suite is."""

    images: int          # rated images per release (multiple of 10)
    seeds: int           # seeds (independent releases and models) per row
    steps: int           # training steps of every model's head
    image_size: tuple[int, int] = (96, 72)
    width: float = 0.25  # AlexNet width multiplier
    shots: int = 10      # k of the personalizer episodes
    repeats: int = 5     # episodes per rater
    pretrain_images: int = 2000  # images of the backbone's own release (disjoint from every unit's)
    pretrain_steps: int = 1200   # its training steps (batch PRETRAIN_BATCH)
    content_images: int = 6400   # rated images per release of the content branch's settings
    attribute_images: int = 1600  # rated images per release of the attribute branch's settings

    def images_for(self, setting: str) -> int:
        """Rated images per release of ``setting``: the content row's settings draw larger releases
        (per-content slopes need several hundred training images per content type), and so do the
        attribute row's (its fine-tuned arms spread by half as much on 400 training images as on
        200; docs/models.md, "Recovery suite")."""
        if setting in CONTENT_SETTINGS:
            return self.content_images
        return self.attribute_images if setting in ATTRIBUTE_SETTINGS else self.images


QUICK = Size(images=800, seeds=6, steps=600)
FULL = Size(images=1600, seeds=8, steps=800, pretrain_steps=2000)
#: Share of HITs per split in the suite's releases. Few training images, so that what the labels
#: carry (not the features) limits the model, and a large test split, so that ρ is measured well.
#: No validation split: every model keeps its last weights (no selection noise between the arms).
SPLIT_SHARES = {"train": 0.25, "validation": 0.0, "test": 0.75}
#: The backbone's release is drawn from seed PRETRAIN_SEED + S (the units use S, S+1, …).
PRETRAIN_SEED, PRETRAIN_BATCH, PRETRAIN_LR = 1_000_000, 64, 1e-3
#: Weight of the content-type loss in the backbones' pretraining: 1 for the backbone of every row but
#: the content branch's; 0.02 for the content row's own backbone, whose features must keep the
#: attributes in a code that does not already depend on the content type (docs/models.md, "Recovery
#: suite", says why; docs/recovery_history.md, "The content row, rebuilt", how it was chosen).
PRETRAIN_CONTENT_WEIGHT, CONTENT_ROW_CONTENT_WEIGHT = 1.0, 0.02
#: Weight of the attribute-strength loss in the pretraining: 1, but 0 for the attribute row's own
#: backbone, which like ImageNet learns only what a photo shows as content (its type), never an
#: aesthetic attribute: what the attribute labels can teach the shared layers is then still to learn.
PRETRAIN_ATTRIBUTE_WEIGHT, ATTRIBUTE_ROW_ATTRIBUTE_WEIGHT = 1.0, 0.0
#: The settings of the content branch's row: larger releases and the content row's own backbone.
CONTENT_SETTINGS = frozenset({"planted_interaction", "null_interaction"})
#: The settings of the attribute branch's row: its own backbone (attribute weight 0), fine-tuned.
ATTRIBUTE_SETTINGS = frozenset({"planted_attributes", "null_attributes"})
#: The attribute row's recipe on top of every arm's: the paper's mechanism is deep supervision of the
#: *shared* layers (§4.3), so both arms fine-tune the whole backbone, at 1e-5 with the head at 100
#: times that (Caffe's lr_mult of new layers), and the attribute loss has the paper's weight ω_a.
ATTRIBUTE_ROW_RECIPE: dict[str, Any] = {"model__mode": "finetune", "optim__lr": 1e-5, "optim__head_lr_mult": 100.0}
#: The attribute row's training steps, as a share of the suite's (Size.steps): its arms fine-tune the
#: whole backbone, the suite's dearest training, and the share keeps the quick suite inside 30 minutes
#: on the 2-core machine (docs/performance.md). 2/3 (400 quick steps) was checked against 600 on
#: seeds 3400–3405 only (docs/recovery_history.md, "2026-12-03").
ATTRIBUTE_ROW_STEP_SHARE = 2 / 3
#: The images-table column the suite adds to every release: the planted content type as an integer
#: category (sorted type names), the content labels of the content arm's ContClass (as AVA's tags).
CONTENT_LABELS = "planted_content"
#: Personalizer score: the generic score plus each rater's true taste, on the generic's [0, 1] scale.
ORACLE_SCALE = 1.0 / (schema.SCORE_MAX - schema.SCORE_MIN)


def base_config(size: Size, seed: int) -> dict[str, Any]:
    """The Reg+Rank recipe every arm starts from: the head trained on the frozen features of the
    suite's pretrained backbone (:func:`pretrain_backbone`), AdamW with a cosine schedule to the
    last step (a CPU recipe for the suite, not the paper's)."""
    return {
        "name": "recovery_reg_rank", "description": "recovery suite: Reg+Rank on frozen pretrained features",
        "model": {"head": "regression", "width": size.width, "dropout": 0.0, "mode": "frozen"},
        "data": {"warp_size": 72, "crop_size": 64, "hflip": True, "decode_workers": 1},
        "pairs": {"strategy": "within", "n_pairs": size.steps * 32, "within_share": 1.0, "same_hit": True},
        "loss": {"rank_margin": 0.02, "weights": {"regression": 1.0, "rank": 1.0}},
        "optim": {"optimizer": "adamw", "schedule": "cosine", "lr": 1e-3, "weight_decay": 1e-4,
                  "batch_size": 32, "steps": size.steps},
        "train": {"seed": seed, "checkpoint_every_steps": 10 ** 6, "log_every_steps": 10 ** 6,
                  "validate_every_steps": size.steps, "cpu_threads": 1},
    }


def _with(cfg: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(cfg))
    for key, value in changes.items():
        node = out
        *path, last = key.split("__")
        for p in path:
            node = node.setdefault(p, {})
        node[last] = value
    return out


def _branch(cfg: dict[str, Any], branch: str, section: dict[str, Any], weights: dict[str, float]) -> dict[str, Any]:
    """Reg+Rank with a branch on from the first step. One stage, so the arm and its Reg+Rank
    ablation share every step's pairs and learning rate; the only difference is the branch."""
    out = _with(cfg, name=f"recovery_reg_rank_{branch}", loss__weights=weights)
    out[branch] = section
    return out


#: The content branch's ContClass fine-tune, kept short (2 epochs; set where the trainer has the option).
CONTENT_EXTRA: dict[str, Any] = ({"finetune_epochs": 2} if "finetune_epochs" in ContentSection.__dataclass_fields__
                                 else {})

#: model.feature_size of the content arm: one feature of its own per branch at width 0.25 (scaled by
#: model.width), beside the 11 attribute predictions every branch reads (Fig. 3c: Att fea, Cont fea).
CONTENT_FEATURES = 4

ARMS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "reg": lambda c: _with(c, name="recovery_reg", pairs={"strategy": "none", "n_pairs": 0},
                           loss__weights={"regression": 1.0}),
    "reg_rank": lambda c: c,
    # cross-rater pairs drawn uniformly (cross_bias 0), as the within-rater pairs are, and inside
    # random groups of a HIT's size: a pair graph as sparse as that of the within-rater pairs (one
    # HIT each), so the two arms differ only in whether a pair's images share their raters. Pairs
    # from the whole training split would add a second difference, the sparsity, which costs about
    # 0.004 on the null (docs/models.md, "Recovery suite")
    "reg_rank_cross": lambda c: _with(c, name="recovery_reg_rank_cross", pairs__strategy="cross",
                                      pairs__within_share=0.0, pairs__cross_bias=0.0,
                                      pairs__cross_group_size=schema.IMAGES_PER_BATCH),
    "reg_rank_att": lambda c: _branch(c, "attributes", {"columns": ["aadb"], "loss": "euclidean"},
                                      {"regression": 1.0, "rank": 1.0, "attribute": 1.0}),
}
# Reg+Rank+Att with the content branch (Fig. 3c: each content branch reads the attribute features and
# its own): ContClass learns the planted content types (CONTENT_LABELS, as AVA's tags; the k-means of
# the AADB recipe misplaces about one photo in ten here, which undoes slopes that flip sign between
# types), and its softmax weighs the branches. Its ablation is Reg+Rank+Att, so only the content
# branch differs (docs/models.md, "Recovery suite").
ARMS["reg_rank_att_cont"] = lambda c: _with(
    ARMS["reg_rank_att"](c), name="recovery_reg_rank_att_cont", model__feature_size=CONTENT_FEATURES,
    content={"clusters": 5, "labels": f"column:{CONTENT_LABELS}", **CONTENT_EXTRA})


@dataclass(frozen=True)
class Mechanism:
    """A mechanism, its ablation, and the planted/null settings it is tested on."""

    name: str
    arm: str        # an ARMS key, or a personalizer name
    ablation: str   # an ARMS key
    planted: str
    null: str


MECHANISMS = (
    Mechanism("rank_loss", "reg_rank", "reg", "planted_reliability", "null_reliability"),
    Mechanism("within_pairs", "reg_rank", "reg_rank_cross", "planted_reliability", "null_reliability"),
    Mechanism("attribute_branch", "reg_rank_att", "reg_rank", "planted_attributes", "null_attributes"),
    Mechanism("content_branch", "reg_rank_att_cont", "reg_rank_att", "planted_interaction", "null_interaction"),
    Mechanism("personalizer", "ridge", "reg_rank", "planted_taste", "null_taste"),
)
#: The personalizer rows: each against the generic model (the second one and the oracle are extra rows).
PERSONALIZERS = {"personalizer": "ridge", "personalizer_finetune": "finetune", "personalizer_oracle": "oracle"}


@dataclass
class Release:
    """One simulated, curated release with the suite's split, and its planted truth."""

    data: AADBData
    quality: pd.Series           # image_id → latent quality
    images: pd.DataFrame         # truth images (content, planted strengths)
    rater_truth: pd.DataFrame    # rater_id → taste, taste_attributes, scale
    gain: float
    backbone: Path | None = None  # the pretrained backbone's weights (None: random, as in the fast CI version)
    runs: dict[str, Path] = field(default_factory=dict)
    setting: str = ""             # the simulator setting it was drawn from (it picks the arms' recipe)


def make_release(setting: str, seed: int, size: Size, work: Path, backbone: Path | None = None) -> Release:
    """Simulate, curate and load a release of ``setting``; re-split its HITs (SPLIT_SHARES)."""
    rel = work / f"{setting}_s{seed}"
    simulate(rel, n_images=size.images_for(setting), seed=seed, image_size=size.image_size, model=setting)
    cur = work / f"{setting}_s{seed}_curated"
    # a throwaway rater key, held in memory only, to link raters to their truth; derived from the
    # setting and seed so that a rerun draws the same rater ids, hence the same piaa episodes
    secret = hashlib.sha256(f"aadb recovery suite\t{setting}\t{seed}".encode()).digest()
    # one process: the suite runs its units in parallel already, in spawned workers, where a pool
    # would spawn fresh interpreters that import the suite and torch again (about 5 CPU seconds each)
    curate(rel, cur, key=secret, progress=False, workers=1)
    data = sources.load(cur)
    truth = truth_dir_for(rel)
    timg = pd.read_parquet(truth / "images.parquet").set_index("image_id")
    data = with_suite_split(data, timg, seed)
    workers = pd.read_parquet(truth / "workers.parquet")
    params = json.loads((truth / "setting.json").read_text())["parameters"]
    traits = workers.set_index("worker_id")[["taste", "taste_attributes", "scale"]]
    traits.index = [anonymize(str(w), secret) for w in traits.index]  # curated rater id → planted traits
    return Release(data, timg["latent_quality"], timg, traits, float(params["raters"]["gain"]), backbone,
                   setting=setting)


def with_suite_split(data: AADBData, truth_images: pd.DataFrame, seed: int) -> AADBData:
    """The curated release with each image's split replaced by the suite's (:func:`_resplit` of
    its HIT, from the truth's images table indexed by image id) and the planted content type as
    the integer column :data:`CONTENT_LABELS`."""
    images = data.images.copy()
    truth = truth_images.loc[images["image_id"]]
    images["split"] = _resplit(truth["hit_id"].to_numpy(), seed)
    images[CONTENT_LABELS] = content_codes(truth["content_type"])
    return AADBData(images=images, ratings=data.ratings, origin=data.origin, read_image_bytes=data.read_image_bytes,
                    provenance=data.provenance)


def content_codes(content_types: pd.Series) -> np.ndarray:
    """Integer content categories (float, as an images-table column) of planted content type
    names: their index among the simulator's sorted type names."""
    names = sorted(load_setting("default").content_names)
    return pd.Categorical(content_types, categories=names).codes.astype(float)


@functools.lru_cache(maxsize=1)
def _pretraining_set(seed: int, size: Size, work: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The backbones' own release (default setting, seed PRETRAIN_SEED + ``seed``): its planted
    strengths, content codes and warped pixels, in image order. Kept for the process, so that the
    suite's backbones (:func:`_pretraining`) simulate, curate and decode it once."""
    from aadb_toolkit.models import pipeline

    rel = make_release("default", PRETRAIN_SEED + seed, replace(size, images=size.pretrain_images), work)
    ids = list(rel.data.images["image_id"])
    truth = rel.images.loc[ids]
    return (truth[[f"planted_{a}" for a in schema.ATTRIBUTES]].to_numpy(), content_codes(truth["content_type"]),
            pipeline.decode_all(rel.data, ids, 72, workers=1, progress=False))


def pretrain_backbone(seed: int, size: Size, work: Path, progress: bool | None = None, threads: int = 1,
                      content_weight: float = PRETRAIN_CONTENT_WEIGHT,
                      attribute_weight: float = PRETRAIN_ATTRIBUTE_WEIGHT) -> Path:
    """The suite's "ImageNet": a tiny AlexNet trained to see what the synthetic photos show (their
    11 planted attribute strengths, with loss weight ``attribute_weight``, and their content type,
    with ``content_weight``) on
    a release of its own (default setting, seed PRETRAIN_SEED + ``seed``: no image of any unit's
    release). Never trained on scores, quality or raters. Every arm trains its head on this
    backbone's frozen features (the attribute row's arms fine-tune theirs, :data:`ATTRIBUTE_ROW_RECIPE`),
    so the arms differ only in what they learn from the labels
    (docs/models.md says why). Cached in ``work``; returns the weights file (a standard-keyed
    AlexNet state dict, ``--init-weights``)."""
    import torch
    from torch import nn

    from aadb_toolkit.models import pipeline
    from aadb_toolkit.models.archs import IMAGENET_MEAN, IMAGENET_STD
    from aadb_toolkit.models.archs.alexnet_arch import backbone
    from aadb_toolkit.models.devices import cpu_threads, seed_torch

    path = work / (f"backbone_s{seed}_{size.pretrain_images}x{size.pretrain_steps}_c{content_weight:g}"
                   f"_a{attribute_weight:g}.pt")
    if path.exists():
        return path
    planted, codes, pix = _pretraining_set(seed, size, work)
    strengths = torch.tensor(planted, dtype=torch.float32)
    content = torch.tensor(codes, dtype=torch.long)
    n_images, n_att, n_content = len(pix), strengths.shape[1], int(content.max()) + 1
    sampler = pipeline.CropSampler(torch.from_numpy(pix), 64, IMAGENET_MEAN, IMAGENET_STD)
    rng = np.random.default_rng([PRETRAIN_SEED, seed])
    disable = None if progress is None else not progress  # None: a bar on a terminal only
    with torch.random.fork_rng(), cpu_threads(max(1, threads)), \
            tqdm(total=size.pretrain_steps, desc="pretrain backbone", disable=disable) as bar:
        seed_torch(PRETRAIN_SEED + seed, "cpu")
        net = backbone(width=size.width, dropout=0.0)
        head = nn.Linear(net.feature_size, n_att + n_content)
        opt = torch.optim.Adam([*net.parameters(), *head.parameters()], lr=PRETRAIN_LR, fused=True)  # one kernel per tensor
        for _ in range(size.pretrain_steps):
            idx = rng.integers(0, n_images, PRETRAIN_BATCH)
            out = head(net.fc7(sampler.crops(idx, *sampler.random_offsets(rng, PRETRAIN_BATCH, True))))
            loss = attribute_weight * nn.functional.mse_loss(out[:, :n_att], strengths[idx]) + \
                content_weight * nn.functional.cross_entropy(out[:, n_att:], content[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            bar.update(1)
    tmp = path.with_suffix(".tmp")
    torch.save(net.state_dict(), tmp)
    os.replace(tmp, path)
    return path


def draft_release(setting: str, seed: int, n_images: int) -> Release:
    """A release of ``setting`` sampled without pixels, curation or files (the generator's draft
    turned into tables in memory, raters named by their index): for the fast CI version, which
    measures each mechanism's lever with the toolkit's own code but trains no network."""
    from aadb_toolkit.simulate._generate import build_draft

    model = load_setting(setting)
    d = build_draft(n_images, seed, False, 0.0, (32, 24), model)
    k = schema.IMAGES_PER_BATCH
    hit = d.rows["hit"].to_numpy()
    img = (hit[:, None] * k + np.arange(k)[None, :]).ravel()
    ids = d.images["image_id"].to_numpy()
    ratings = pd.DataFrame({"rater_id": np.repeat([f"W{w:04d}" for w in d.rows["worker"]], k),
                            "image_id": ids[img], "batch_id": np.repeat([f"HIT{h:05d}" for h in hit], k),
                            "score": d.scores.ravel().astype(float)})
    votes = pd.DataFrame(d.votes.reshape(-1, len(schema.ATTRIBUTES)), columns=list(schema.ATTRIBUTES))
    means = pd.concat([ratings[["image_id", "score"]], votes], axis=1).groupby("image_id").mean()
    images = pd.DataFrame({"image_id": ids, "score_mean": means.loc[ids, "score"].to_numpy()})
    images["score"] = schema.rescale_score(images["score_mean"])
    for a in schema.ATTRIBUTES:
        images[a] = means.loc[ids, a].to_numpy()
    images["split"] = _resplit(d.images["hit"].to_numpy(), seed)
    data = AADBData(images=images, ratings=ratings, origin=f"draft:{setting}", read_image_bytes=lambda i: b"")
    truth = d.images.set_index("image_id")[["content_type", "latent_quality"]].copy()
    for j, a in enumerate(schema.ATTRIBUTES):
        truth[f"planted_{a}"] = d.strengths[:, j]
    traits = d.workers[["taste", "taste_attributes", "scale"]].copy()
    traits.index = [f"W{w:04d}" for w in range(len(traits))]
    return Release(data, truth["latent_quality"], truth, traits, float(model.raters["gain"]), setting=setting)


def _resplit(hit_of_image: np.ndarray, seed: int) -> np.ndarray:
    """The suite's split of each image, by its HIT (SPLIT_SHARES, a seeded shuffle of the HITs)."""
    hits = np.unique(hit_of_image)
    order = np.random.default_rng([seed, 20]).permutation(len(hits))
    cut = np.cumsum([round(SPLIT_SHARES[s] * len(hits)) for s in ("train", "validation")])
    rank = np.empty(len(hits), np.int64)
    rank[order] = np.arange(len(hits))
    split_of_hit = np.where(rank < cut[0], "train", np.where(rank < cut[1], "validation", "test"))
    return split_of_hit[np.searchsorted(hits, hit_of_image)]


def train_arm(rel: Release, arm: str, size: Size, seed: int, work: Path, name: str) -> Path:
    """Train one arm on the release (once per release: arms shared by two mechanisms are reused)."""
    if arm not in rel.runs:
        cfg = config_from_dict(arm_recipe(arm, rel.setting, size, seed), source=f"recovery:{arm}")
        out = work / f"{name}_{arm}"
        # the backbone's features are computed once per release and shared by its arms (the cache)
        train(cfg, rel.data, out, progress=False, resume=False, init_weights=rel.backbone,
              cache_dir=unit_cache(work, name))
        rel.runs[arm] = out
    return rel.runs[arm]


def unit_cache(work: Path, name: str) -> Path:
    """The decode and feature cache of a release's arms (``name``: its setting and seed)."""
    return work / f"{name}_cache"


def arm_recipe(arm: str, setting: str, size: Size, seed: int) -> dict[str, Any]:
    """The config of ``arm`` on a release of ``setting``: :data:`ARMS`' recipe, with the attribute
    row's (:data:`ATTRIBUTE_ROW_RECIPE`, ω_a of the paper) on its settings."""
    if setting in ATTRIBUTE_SETTINGS:
        size = replace(size, steps=round(size.steps * ATTRIBUTE_ROW_STEP_SHARE))
    raw = ARMS[arm](base_config(size, seed))
    if setting in ATTRIBUTE_SETTINGS:
        raw = _with(raw, **ATTRIBUTE_ROW_RECIPE)
        if "attribute" in raw["loss"]["weights"]:
            raw["loss"]["weights"]["attribute"] = paper.OMEGA_ATTRIBUTE
    return raw


def test_rho(rel: Release, run: Path, cache_dir: Path | None = None) -> float:
    """Spearman's ρ of the run's test predictions against the planted latent quality (the test
    images decoded once into ``cache_dir`` and reused by the release's other arm)."""
    pred = predict(run, rel.data, "test", progress=False, cache_dir=cache_dir)
    return _rho(pred["score"].to_numpy(), rel.quality.loc[pred["image_id"]].to_numpy())


def personal_rhos(rel: Release, run: Path, size: Size, seed: int) -> dict[str, float]:
    """Mean within-rater ρ against each rater's true utility over the query images of the piaa
    episodes (k = size.shots): the generic model, both personalizers and the oracle."""
    episodes = ep.make_episodes(rel.data, ks=(size.shots,), repeats=size.repeats, seed=seed)
    ids = images_to_read(rel.data, episodes)
    generic, feats = predict_features(run, rel.data, ids, progress=False)
    return personal_rhos_from(rel, episodes, pd.Index(ids), generic, feats)


def personal_rhos_from(rel: Release, episodes: pd.DataFrame, index: pd.Index, generic: np.ndarray,
                       feats: np.ndarray) -> dict[str, float]:
    """As :func:`personal_rhos`, from given generic scores and features aligned with ``index``,
    which holds the episode images and the train images (``images_to_read``), personalized as
    ``aadb personalize`` does (``personalize_scores``)."""
    q = ep.queries(episodes)
    rows = index.get_indexer(q["image_id"].astype(str))
    own_taste, utility = true_utility(rel, q)
    preds = {
        "generic": generic[rows],
        "ridge": personalize_scores(rel.data, episodes, generic, feats, index, method="ridge"),
        "finetune": personalize_scores(rel.data, episodes, generic, feats, index, method="rank-finetune"),
        "oracle": generic[rows] + ORACLE_SCALE * own_taste,
    }
    group = (q["rater_id"].astype(str) + "\t" + q["episode"].astype(str)).to_numpy()
    out = {}
    for name, p in preds.items():
        frame = pd.DataFrame({"g": group, "p": p, "u": utility})
        rhos = [_rho(part["p"].to_numpy(), part["u"].to_numpy()) for _, part in frame.groupby("g")]
        out[name] = float(np.nanmean(rhos))
    return out


def true_utility(rel: Release, q: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per (rater, image) row of ``q``: the rater's own taste term (content and attributes) and
    the noise-free utility gain·quality + taste that the rater's scores follow."""
    truth = rel.images.loc[q["image_id"]]
    strengths = truth[[f"planted_{a}" for a in schema.ATTRIBUTES]].to_numpy()
    names = list(load_setting().content_names)
    content = np.array([names.index(c) for c in truth["content_type"]])
    taste = np.stack(rel.rater_truth.loc[q["rater_id"], "taste"].map(np.asarray).to_numpy())
    taste_attr = np.stack(rel.rater_truth.loc[q["rater_id"], "taste_attributes"].map(np.asarray).to_numpy())
    own_taste = taste[np.arange(len(q)), content] + (taste_attr * strengths).sum(axis=1)
    return own_taste, rel.gain * truth["latent_quality"].to_numpy() + own_taste


def t_interval(deltas: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean of the per-seed paired differences and its t-interval (n − 1 degrees of freedom)."""
    d = np.asarray(deltas, dtype=float)
    mean = float(d.mean())
    if len(d) < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d)))
    return mean, mean - half, mean + half


def run_unit(setting: str, kind: str, seed: int, size: Size, names: tuple[str, ...], work: Path,
             backbone: Path | None) -> dict[str, tuple[float, float]]:
    """One (setting, seed): simulate its release, train the arms its mechanisms need on the
    backbone's frozen features, and return each row's (ρ of the mechanism, ρ of its ablation)."""
    rel = make_release(setting, seed, size, work, backbone)
    out: dict[str, tuple[float, float]] = {}
    for m in (m for m in MECHANISMS if m.name in names and getattr(m, kind) == setting):
        name = f"{setting}_s{seed}"
        if m.name == "personalizer":
            rhos = personal_rhos(rel, train_arm(rel, m.ablation, size, seed, work, name), size, seed)
            out.update({row: (rhos[which], rhos["generic"]) for row, which in PERSONALIZERS.items()})
            continue
        cache = unit_cache(work, name)
        out[m.name] = (test_rho(rel, train_arm(rel, m.arm, size, seed, work, name), cache),
                       test_rho(rel, train_arm(rel, m.ablation, size, seed, work, name), cache))
    return out


def timed_unit(*args: Any) -> tuple[dict[str, tuple[float, float]], float]:
    """:func:`run_unit`'s result and the seconds it took (in its worker, queueing excluded)."""
    start = time.perf_counter()
    return run_unit(*args), time.perf_counter() - start


#: Per-unit results in the work folder, one JSON line per finished (setting, kind, seed), with the
#: seconds the unit took.
UNITS_FILE = "units.jsonl"


def _size_key(size: Size, names: tuple[str, ...]) -> str:
    """What a finished unit's result depends on besides its (setting, kind, seed): the size, the
    mechanisms, and a digest of every arm's recipe and backbone pretraining on their settings (so a
    rerun after the recipes changed retrains instead of reusing stale units)."""
    recipes = {f"{m.name}/{setting}": [_pretraining(setting), *(arm_recipe(a, setting, size, 0)
                                       for a in (m.arm, m.ablation) if a in ARMS)]
               for m in MECHANISMS if m.name in names for setting in (m.planted, m.null)}
    digest = hashlib.sha256(json.dumps(recipes, sort_keys=True).encode()).hexdigest()[:16]
    return json.dumps([size.__dict__ | {"image_size": list(size.image_size)}, sorted(names), digest], sort_keys=True)


def _done_units(work: Path, size: Size, names: tuple[str, ...]) -> dict[tuple[str, str, int], dict]:
    """Units already finished in ``work`` by a run of the same size and mechanisms."""
    path, key, out = work / UNITS_FILE, _size_key(size, names), {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            if rec["size"] == key:
                out[tuple(rec["unit"])] = rec["result"]
    return out


def _pretraining(setting: str) -> tuple[float, float]:
    """The (content, attribute) loss weights of the backbone a setting's arms train on."""
    return (CONTENT_ROW_CONTENT_WEIGHT if setting in CONTENT_SETTINGS else PRETRAIN_CONTENT_WEIGHT,
            ATTRIBUTE_ROW_ATTRIBUTE_WEIGHT if setting in ATTRIBUTE_SETTINGS else PRETRAIN_ATTRIBUTE_WEIGHT)


def run_suite(size: Size, seed0: int, only: set[str] | None, work: Path, log=print, jobs: int = 1) -> list[dict[str, Any]]:
    """Every (mechanism, setting) row: per-seed ρ of both arms, the paired differences and the CI.
    ``jobs`` (setting, seed) units run in parallel processes (each trains on one thread)."""
    names = tuple(m.name for m in MECHANISMS if not only or m.name in only)
    units = [(setting, kind, seed0 + s) for s in range(size.seeds) for kind in ("planted", "null")
             for setting in sorted({getattr(m, kind) for m in MECHANISMS if m.name in names})]
    per: dict[tuple[str, str, int], tuple[float, float]] = {}
    done = _done_units(work, size, names)  # a rerun with the same --work continues where it stopped
    for (setting, kind, seed), result in done.items():
        per.update({(row, kind, seed): tuple(pair) for row, pair in result.items()})
    todo = unit_order([u for u in units if u not in done])
    backbones = {w: pretrain_backbone(seed0, size, work, threads=jobs, content_weight=w[0], attribute_weight=w[1])
                 for w in sorted({_pretraining(setting) for setting, _, _ in todo})}
    with unit_pool(jobs) as pool:
        futures = {pool.submit(timed_unit, setting, kind, seed, size, names, work,
                               backbones[_pretraining(setting)]): (setting, kind, seed)
                   for setting, kind, seed in todo}
        for fut in tqdm(as_completed(futures), total=len(futures), desc="recovery", unit="release", disable=None):
            setting, kind, seed = futures[fut]
            result, seconds = fut.result()
            per.update({(row, kind, seed): pair for row, pair in result.items()})
            with open(work / UNITS_FILE, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"unit": [setting, kind, seed], "size": _size_key(size, names),
                                     "result": result, "seconds": round(seconds, 1)}) + "\n")
            log(f"done: {setting} seed {seed}: " + ", ".join(f"{r} {a:.3f} vs {b:.3f}" for r, (a, b) in result.items())
                + f" ({seconds:.0f} s)")
    rows = []
    for row, kind in sorted({(r, k) for r, k, _ in per}):
        pairs = [per[(row, kind, seed)] for seed in sorted(s for r, k, s in per if (r, k) == (row, kind))]
        deltas = [a - b for a, b in pairs]
        delta, lo, hi = t_interval(deltas)
        rows.append({"mechanism": row, "setting": kind, "delta": delta, "ci_low": lo, "ci_high": hi,
                     "n_seeds": len(pairs), "rho_mechanism": float(np.mean([a for a, _ in pairs])),
                     "rho_ablation": float(np.mean([b for _, b in pairs])), "deltas": deltas})
    order = [m.name for m in MECHANISMS if m.name not in PERSONALIZERS] + list(PERSONALIZERS)
    rows.sort(key=lambda r: (order.index(r["mechanism"]), r["setting"] != "planted"))
    return rows


#: The settings whose units take longest (the fine-tuned arms of the attribute row; the content
#: row's 6,400-image releases), about three to five times a unit of the other rows.
LONG_SETTINGS = ATTRIBUTE_SETTINGS | CONTENT_SETTINGS


def unit_order(units: list[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    """The (setting, kind, seed) units in the order the workers take them: the long ones
    (:data:`LONG_SETTINGS`) first, each group in its given order. The workers then end on short
    units together, instead of one of them idling while the other finishes a long one. A unit's
    result depends only on its setting, seed and backbone, never on the order."""
    return sorted(units, key=lambda u: u[0] not in LONG_SETTINGS)


@contextmanager
def unit_pool(jobs: int) -> Iterator[ProcessPoolExecutor]:
    """The worker processes that run a suite's units: curate's :func:`worker_pool`, whose workers
    exit when their parent is gone (even after SIGKILL), spawned, not forked: a child forked after
    torch has started its thread pool (the backbone's pretraining, in this process) can hang on
    that pool's locks. If the run stops early (an error, Ctrl-C, or a SIGTERM that
    :func:`exit_on_sigterm` has turned into SystemExit), the queued units are cancelled and the
    workers ended at once, instead of finishing their unit and then idling, orphaned, each with a
    release and a network in memory."""
    pool = worker_pool(max(1, jobs), multiprocessing.get_context("spawn"))
    try:
        yield pool
    except BaseException:
        workers = list((pool._processes or {}).values())  # no public handle before Python 3.14
        pool.shutdown(wait=False, cancel_futures=True)
        for worker in workers:
            worker.terminate()
        raise
    pool.shutdown(wait=True)


def exit_on_sigterm() -> None:
    """Turn SIGTERM (a scheduler's stop, ``timeout``, ``kill``) into SystemExit(143), so that the
    run unwinds: :func:`unit_pool` ends its workers and the temporary work folder is removed."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def verdict(row: dict[str, Any]) -> str:
    """``recovered`` / ``missed`` (planted: CI above 0?), ``null ok`` / ``false effect`` (null: CI covers 0?)."""
    if row["setting"] == "planted":
        return "recovered" if row["ci_low"] > 0 else "missed"
    return "null ok" if row["ci_low"] <= 0 <= row["ci_high"] else "false effect"


#: Said under every table and on every JSON row the suite writes: its releases are drawn by the simulator.
DATA_NOTE = "synthetic releases (aadb simulate, planted/null settings): a test instrument, not AADB"


def table(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table, with :data:`DATA_NOTE` under it."""
    lines = ["| mechanism | setting | ρ mechanism | ρ ablation | Δρ | 95% CI | seeds | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['mechanism']} | {r['setting']} | {r['rho_mechanism']:.3f} | {r['rho_ablation']:.3f} | "
                     f"{r['delta']:+.3f} | [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}] | {r['n_seeds']} | {verdict(r)} |")
    return "\n".join([*lines, "", f"Data: {DATA_NOTE}."])


#: The smallest release --images accepts: enough HITs for the suite's split (SPLIT_SHARES) to leave
#: training and test images of every content type.
MIN_IMAGES = 200


def release_size_problem(n_images: int, least: int = MIN_IMAGES) -> str | None:
    """Why ``n_images`` cannot be a release size of the suite (whole HITs of 10 images, at least
    ``least``; pixel-free drafts may go lower than MIN_IMAGES), or None if it can."""
    if n_images < least or n_images % schema.IMAGES_PER_BATCH:
        return (f"--images must be a multiple of {schema.IMAGES_PER_BATCH} (the images of whole HITs), "
                f"at least {least} (got {n_images})")
    return None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The suite's command line (``--help`` shows it)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help=f"the small version ({QUICK.seeds} seeds of "
                    f"{QUICK.images}-image releases, {QUICK.steps} steps per model)")
    ap.add_argument("--seed", type=int, default=0, help="first seed; seeds S, S+1, ... move every release and model")
    ap.add_argument("--seeds", type=int, default=None, help=f"number of seeds (default: {QUICK.seeds} quick, "
                    f"{FULL.seeds} full; at least 3)")
    ap.add_argument("--images", type=int, default=None, help=f"images per release, every row's (default: "
                    f"{QUICK.images} quick, {FULL.images} full, {QUICK.attribute_images} for the attribute branch's "
                    f"settings and {QUICK.content_images} for the content branch's; a multiple of "
                    f"{schema.IMAGES_PER_BATCH}, at least {MIN_IMAGES})")
    ap.add_argument("--json", type=Path, default=None, help="write the rows to this JSON file")
    ap.add_argument("--only", nargs="+", choices=[m.name for m in MECHANISMS], default=None,
                    help="run only these mechanisms")
    ap.add_argument("--jobs", type=int, default=2, help="releases simulated and trained in parallel (default 2, "
                    "one per core of the reference 2-core machine)")
    ap.add_argument("--work", type=Path, default=None, help="keep releases and runs here (default: a temp folder)")
    args = ap.parse_args(argv)
    args.size = suite_size(args, ap.error)
    return args


def suite_size(args: argparse.Namespace, error: Callable[[str], Any]) -> Size:
    """The run's :class:`Size`: QUICK or FULL, with ``--seeds`` and ``--images`` where given; a
    bad value goes to ``error`` (the parser's, which exits)."""
    size = QUICK if args.quick else FULL
    if args.seeds is not None:
        if args.seeds < 3:
            error("--seeds must be at least 3 (a CI from fewer seeds says nothing)")
        size = replace(size, seeds=args.seeds)
    if args.images is not None:
        problem = release_size_problem(args.images)
        if problem:
            error(problem)
        size = replace(size, images=args.images, content_images=args.images, attribute_images=args.images)
    return size


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    size = args.size
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="aadb_recovery_") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        rows = run_suite(size, args.seed, set(args.only or ()), work, log=lambda m: print(m, file=sys.stderr),
                         jobs=args.jobs)
    minutes = (time.perf_counter() - started) / 60
    print(table(rows))
    print(f"\n{'quick' if args.quick else 'full'} suite, seeds {args.seed}..{args.seed + size.seeds - 1}, "
          f"{size.images}-image releases ({size.attribute_images} for the attribute branch, {size.content_images} "
          f"for the content branch), {minutes:.1f} min")
    if args.json:  # one row per (mechanism, setting); the run's size on every row
        extra = {"suite": "quick" if args.quick else "full", "first_seed": args.seed, "images": size.images,
                 "attribute_images": size.attribute_images, "content_images": size.content_images,
                 "minutes": round(minutes, 2), "data": DATA_NOTE}
        args.json.write_text(json.dumps([{**r, **extra} for r in rows], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The training step stays on the device (issue 22 items 5-6): the per-step path — unit sampling,
gather, crop, flip, forward, losses, backward, optimiser step — runs with the model and the data
on the ``meta`` device, where any host conversion (numpy on a device tensor, ``.item()``,
``.cpu()``, ``bool()`` of a tensor) raises. So a step that would stall a GPU fails in CPU-only CI.
Also: one permutation per epoch and stage, the time limit checked at log boundaries only, no
``find_unused_parameters``, and a memory-mapped pixel cache."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from aadb_toolkit.models import load_config, train
from aadb_toolkit.models import trainer
from aadb_toolkit.models.pipeline import load_or_build_cache
from aadb_toolkit.sources import load

BASELINES = Path(__file__).resolve().parents[2] / "baselines"
TINY = {"model.width": 0.0625, "data.warp_size": 72, "data.crop_size": 64, "optim.batch_size": 8,
        "train.cpu_threads": 1, "train.log_every_steps": 1, "pairs.n_pairs": 64, "content.clusters": 3,
        "data.hflip": True, "optim.steps": 6, "train.validate_every_steps": 6}
pytestmark = pytest.mark.filterwarnings("ignore:no --init-weights")


def _meta_run(cfg, tiny_curated, tmp_path):
    run = trainer._setup(cfg, load(tiny_curated), tmp_path / "run", "meta", trainer._Dist(), False, False,
                         tmp_path / "cache")
    return run, trainer._build_state(run, None, None, False)


@pytest.mark.parametrize("variant,overrides", [
    ("reg_rank_att_cont", {}),
    ("reg_rank_att_cont", {"content.gating": "centroid", "loss.standardise_targets": True,
                           "optim.head_lr_mult": 10.0}),
    ("alexnet_ft_conf", {}),
])
def test_every_stage_steps_on_meta_tensors(variant, overrides, tiny_curated, tmp_path):
    cfg = load_config(BASELINES / f"{variant}.toml", {**TINY, **overrides} if variant != "alexnet_ft_conf" else
                      {k: v for k, v in TINY.items() if not k.startswith(("pairs", "content"))})
    run, state = _meta_run(cfg, tiny_curated, tmp_path)
    assert run.train_sampler.pixels.device.type == "meta" and run.td.targets.device.type == "meta"
    assert next(state.net.parameters()).device.type == "meta"
    for stage in run.plan:  # one step in each stage, with the stage's branches and trained parameters
        head = state.net.head
        if hasattr(head, "active"):
            head.active = stage.branches
            trainer._set_trainable(head, stage)
        state.global_step = stage.start
        loss, parts, n = trainer.train_step(run, state, stage)
        assert loss.device.type == "meta" and n > 0
        assert torch.stack([loss, *parts.values()]).device.type == "meta"  # the logging window stays there too
        if stage.uses_pairs:
            assert "rank" in parts


def test_a_host_conversion_in_the_step_would_fail_the_meta_check(tiny_curated, tmp_path, monkeypatch):
    """The check is real: a step that copies its indices to the host (the old crops) raises on meta."""
    cfg = load_config(BASELINES / "reg_rank_within_cross.toml", TINY)
    run, state = _meta_run(cfg, tiny_curated, tmp_path)
    crops = run.train_sampler.crops
    monkeypatch.setattr(run.train_sampler, "crops", lambda idx, *a, **k: crops(np.asarray(idx), *a, **k))
    with pytest.raises((TypeError, RuntimeError, NotImplementedError)):
        trainer.train_step(run, state, run.plan[0])


def test_one_permutation_per_epoch_and_stage(tiny_curated, tmp_path, monkeypatch):
    calls = []
    real = trainer._epoch_permutation
    monkeypatch.setattr(trainer, "_epoch_permutation", lambda cfg, stage, td, epoch: calls.append(
        (stage.index, epoch)) or real(cfg, stage, td, epoch))
    cfg = load_config(BASELINES / "reg.toml", {**{k: v for k, v in TINY.items() if not k.startswith(("pairs", "content"))},
                                              "optim.steps": 40, "train.validate_every_steps": 40})
    train(cfg, tiny_curated, tmp_path / "run", progress=False, cache_dir=tmp_path / "c")
    spe = trainer.stage_plan(cfg, trainer._prepare_train(cfg, load(tiny_curated), "cpu"))[0].steps_per_epoch
    assert spe < 40 and calls == [(0, e) for e in range(-(-40 // spe))]  # one per epoch, not one per step


def test_the_time_limit_is_agreed_at_log_boundaries_only(tiny_curated, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(trainer, "_agree_flag", lambda d, flag: calls.append(flag) or flag)
    cfg = load_config(BASELINES / "reg_rank_within_cross.toml", {**TINY, "optim.steps": 8, "train.log_every_steps": 4,
                                                                  "train.validate_every_steps": 8})
    train(cfg, tiny_curated, tmp_path / "run", progress=False, cache_dir=tmp_path / "c", max_minutes=100)
    assert len(calls) == 2  # steps 4 and 8, not every step


def test_no_stage_needs_find_unused_parameters(tiny_curated, tmp_path, monkeypatch):
    """Each stage trains only parameters its forward pass uses, so DDP runs without the
    ``find_unused_parameters`` graph walk; checked on every stage of the full model."""
    wrapped = []

    def fake_ddp(net, **kw):
        wrapped.append(kw)
        return net

    monkeypatch.setattr(torch.nn.parallel, "DistributedDataParallel", fake_ddp)
    monkeypatch.setattr(trainer, "_barrier", lambda d: None)
    monkeypatch.setattr(trainer, "_broadcast_object", lambda d, obj: obj, raising=False)
    cfg = load_config(BASELINES / "reg_rank_att_cont.toml", {**TINY, "optim.steps": 9})
    d = trainer._Dist(rank=0, world=1, active=True)
    run = trainer._setup(cfg, load(tiny_curated), tmp_path / "run", "cpu", d, False, False, tmp_path / "c")
    state = trainer._build_state(run, None, None, False)
    for stage in run.plan:
        trainer._enter_stage(run, state, stage)
        state.global_step = stage.start
        for p in state.net.parameters():
            p.grad = None
        trainer.train_step(run, state, stage)
        unused = [n for n, p in state.net.named_parameters() if p.requires_grad and p.grad is None]
        assert not unused, (stage.name, unused)
    assert wrapped and not any(kw.get("find_unused_parameters") for kw in wrapped)


def test_the_pixel_cache_is_memory_mapped(tiny_curated, tmp_path):
    data = load(tiny_curated)
    ids = list(data.split("train")["image_id"])[:12]
    built = load_or_build_cache(data, ids, 20, cache_dir=tmp_path, progress=False)
    again = load_or_build_cache(data, ids, 20, cache_dir=tmp_path, progress=False)
    assert isinstance(built, np.memmap) and isinstance(again, np.memmap)  # pages read on use, shared by ranks
    np.testing.assert_array_equal(np.asarray(built), np.asarray(again))
    assert json.dumps(list(np.asarray(again).shape)) == "[12, 20, 20, 3]"

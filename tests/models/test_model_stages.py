"""Branches and stages keep what the model learned (issue 22 items 1-4): switching a stage or a
branch on never changes a prediction, the kept checkpoint is the best validation of any stage,
the attribute layer is frozen only after a stage trained it (§4.3), and ContClass is its own,
fine-tuned then frozen copy of the top layers (§4.4)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from aadb_toolkit.models import build_network, load_config, train
from aadb_toolkit.models import trainer
from aadb_toolkit.models.inference import score_images
from aadb_toolkit.models.runs import BEST, load_run_file, metrics_frame

BASELINES = Path(__file__).resolve().parents[2] / "baselines"
TINY = {"model.width": 0.0625, "data.warp_size": 72, "data.crop_size": 64, "optim.batch_size": 16,
        "train.cpu_threads": 1, "train.log_every_steps": 1, "pairs.n_pairs": 96, "content.clusters": 3,
        "train.checkpoint_every_steps": 100, "train.validate_every_steps": 3, "optim.steps": 9,
        "optim.lr": 1e-2}
pytestmark = pytest.mark.filterwarnings("ignore:no --init-weights")


def test_switching_on_a_stage_or_branch_never_changes_a_prediction(tiny_curated, tmp_path, monkeypatch):
    seen = []
    enter = trainer._enter_stage

    def spy(run, state, stage):
        before = score_images(state.net, run.val_sampler, run.device)
        enter(run, state, stage)
        seen.append((stage.name, float(np.abs(score_images(state.net, run.val_sampler, run.device) - before).max()),
                     float(before.std())))

    monkeypatch.setattr(trainer, "_enter_stage", spy)
    cfg = load_config(BASELINES / "reg_rank_att_cont.toml", TINY)
    train(cfg, tiny_curated, tmp_path / "run", progress=False, cache_dir=tmp_path / "c")
    assert [s[0] for s in seen] == ["reg", "reg_rank", "joint"]
    assert all(diff < 1e-6 for _, diff, _ in seen), seen
    assert seen[-1][2] > 1e-4  # the model entering the joint stage predicts more than a constant


def test_reg_att_scores_through_the_trained_score_layer():
    """Reg+Att in one stage: the score is Reg's linear layer plus a branch correction that starts
    at zero, so the score path is never only a fresh ReLU layer (which can die and collapse)."""
    cfg = load_config(BASELINES / "reg_att.toml", {k: v for k, v in TINY.items() if not k.startswith(("pairs", "content"))})
    net = build_network(cfg).eval()
    head = net.head
    x = torch.randn(6, 3, 64, 64)
    with torch.no_grad():
        on = net(x)["score"]
        head.active = frozenset()
        off = net(x)["score"]
    torch.testing.assert_close(on, off, rtol=0, atol=1e-7)
    head.active = frozenset({"attributes"})
    net.train()
    net(x)["score"].sum().backward()
    assert head.regression.weight.grad.abs().sum() > 0 and head.branch_weight.grad.abs().sum() > 0


def test_the_kept_checkpoint_is_the_best_of_every_stage(tiny_curated, tmp_path, monkeypatch):
    """Validation at stage entry and inside every stage all compete; run.json and best.pt name the stage."""
    def scripted(run, state):
        return 0.9 if state.global_step == run.plan[1].start else 0.1 + 0.001 * state.global_step

    monkeypatch.setattr(trainer, "validate", scripted)
    cfg = load_config(BASELINES / "reg_rank_att_cont.toml", TINY)
    res = train(cfg, tiny_curated, tmp_path / "run", progress=False, cache_dir=tmp_path / "c")
    summary = json.loads((tmp_path / "run" / "run.json").read_text())
    best = load_run_file(tmp_path / "run" / BEST, "aadb-model")
    assert res.best_val_rho == 0.9 and summary["best_stage"] == "reg" and best["stage"] == "reg"
    assert summary["best_step"] == best["global_step"] == summary["stages"][1]["start"]
    val = metrics_frame(tmp_path / "run").query("kind == 'val'")
    assert {s["start"] for s in summary["stages"][1:]} <= set(val["step"])  # every stage's entry is validated
    assert list(val["step"]) == sorted(set(val["step"]))  # each step validated once (entries not repeated)


def _with_scarce_attributes(tiny_curated, tmp_path):
    cur = tmp_path / "cur"
    shutil.copytree(tiny_curated, cur)
    shutil.copytree(tiny_curated.parent / "release", tmp_path / "release")
    images = pd.read_parquet(cur / "images.parquet")
    from aadb_toolkit import schema

    unlabelled = images.index[images["split"] == "train"][::2]
    images.loc[unlabelled, list(schema.ATTRIBUTES)] = np.nan  # half the training images have no attributes
    images.to_parquet(cur / "images.parquet")
    return cur


def test_the_attribute_layer_is_trained_on_labelled_images_then_frozen(tiny_curated, tmp_path, monkeypatch):
    cur = _with_scarce_attributes(tiny_curated, tmp_path)
    snaps, orders = {}, []
    enter, perm = trainer._enter_stage, trainer._epoch_permutation

    def spy(run, state, stage):
        snaps[stage.name] = state.net.head.attribute.weight.detach().clone()
        enter(run, state, stage)

    def spy_perm(cfg, stage, td, epoch):
        order = perm(cfg, stage, td, epoch)
        orders.append((stage.images, order, td.attribute_rows))
        return order

    monkeypatch.setattr(trainer, "_enter_stage", spy)
    monkeypatch.setattr(trainer, "_epoch_permutation", spy_perm)
    cfg = load_config(BASELINES / "reg_rank_att_frozen.toml", {**TINY, "optim.steps": 12})
    res = train(cfg, cur, tmp_path / "run", progress=False, cache_dir=tmp_path / "c")
    final = load_run_file(tmp_path / "run" / "checkpoint.pt", "aadb-checkpoint")["model"]["head.attribute.weight"]
    assert list(snaps) == ["reg", "attributes", "joint"]
    assert not torch.equal(snaps["attributes"], snaps["joint"])  # trained in its own stage ...
    assert torch.equal(snaps["joint"], final)  # ... then frozen
    labelled = [(o, rows) for images, o, rows in orders if images == "attribute_labelled"]
    assert labelled and all(set(o.tolist()) <= set(rows.tolist()) for o, rows in labelled)
    assert 0 < len(labelled[0][1]) < 170  # only the labelled half of the 170 training images
    assert res.stopped == "completed"


def test_freezing_needs_an_earlier_stage_that_trains_the_layer():
    from aadb_toolkit.errors import InputError

    raw = load_config(BASELINES / "reg_rank_att_frozen.toml").to_dict()
    raw["stages"] = [raw["stages"][0], raw["stages"][2]]
    raw["stages"][0]["share"], raw["stages"][1]["share"] = 0.5, 0.5
    from aadb_toolkit.models import config_from_dict

    with pytest.raises(InputError, match="trains the attribute layer"):
        config_from_dict(raw)


def test_contclass_is_its_own_fine_tuned_copy_of_the_top_layers(tiny_curated, tmp_path, monkeypatch):
    """§4.4/§5.1: k-means labels on unit fc7, ContClass = a copy of fc6+fc7 plus a classifier,
    fine-tuned on them (its layers move away from the network's), then frozen; every branch has
    its own feature layer and reads the attribute features."""
    captured = {}
    fit = trainer.fit_content_branch

    def spy(head, trunk, fc7, labels, **kw):
        captured["start"] = [p.detach().clone() for p in head.content_top.parameters()]
        out = fit(head, trunk, fc7, labels, **kw)
        captured["labels"] = out[0]
        return out

    monkeypatch.setattr(trainer, "fit_content_branch", spy)
    cfg = load_config(BASELINES / "reg_rank_att_cont.toml", {**TINY, "content.gating": "centroid"})
    train(cfg, tiny_curated, tmp_path / "run", progress=False, cache_dir=tmp_path / "c")
    ck = load_run_file(tmp_path / "run" / "checkpoint.pt", "aadb-checkpoint")["model"]
    net = build_network(cfg)
    net.load_state_dict(ck)
    head = net.head
    # the copy started from the trained fc6 at the joint stage's entry, and was fine-tuned away from it
    assert not torch.equal(captured["start"][0], head.content_top[1].weight)
    assert not torch.equal(head.content_top[1].weight, net.backbone.classifier[1].weight)
    assert head.base.out_features == 3 * head.feature_size and head.branch_weight.shape == (3, head.feature_size + 11)
    assert sorted(set(captured["labels"].tolist())) == [0, 1, 2]
    c = torch.nn.functional.normalize(head.centroids, dim=1)
    assert torch.allclose(c.norm(dim=1), torch.ones(3), atol=1e-5)  # centroids in ContClass's unit features


def _three_stages(steps: int, shares: tuple[float, ...]):
    """A tiny Reg → Reg+Rank → … recipe with the given stage shares of ``steps``."""
    from aadb_toolkit.models import config_from_dict

    raw = load_config(BASELINES / "reg_rank_att.toml", TINY).to_dict()
    stages = [dict(raw["stages"][min(i, 2)], name=f"s{i}", share=s) for i, s in enumerate(shares)]
    return config_from_dict({**raw, "stages": stages, "optim": {**raw["optim"], "steps": steps}})


@pytest.mark.parametrize("steps, shares", [(3, (0.5, 0.49, 0.01)), (5, (0.3, 0.3, 0.3, 0.1)), (7, (1 / 3,) * 3),
                                            (5, (1 / 3,) * 3), (3, (1 / 3,) * 3), (101, (0.08, 0.72, 0.2))])
def test_the_stages_share_exactly_optim_steps(tiny_curated, steps, shares):
    """Each stage's share was rounded on its own and the last stage took the rest but at least one
    step, so rounding up (0.5 × 3 → 2) gave a plan longer than optim.steps: the run went past it."""
    from aadb_toolkit.sources import load

    cfg = _three_stages(steps, shares)
    plan = trainer.stage_plan(cfg, trainer._prepare_train(cfg, load(tiny_curated), "cpu"))
    assert sum(s.steps for s in plan) == plan[-1].end == steps
    assert all(s.steps >= 1 for s in plan) and [s.start for s in plan[1:]] == [s.end for s in plan[:-1]]
    assert all(abs(s.steps - share * steps) < 1.5 for s, share in zip(plan, shares))


def test_fewer_steps_than_stages_is_refused():
    from aadb_toolkit.errors import InputError

    with pytest.raises(InputError, match="optim.steps.*3 stages"):
        _three_stages(2, (1 / 3,) * 3)

"""The optimiser and schedule (models/optim.py) and the configs' ``extends`` (models/config.py)."""

import math

import pytest
import torch

from aadb_toolkit.errors import InputError
from aadb_toolkit.models import build_model, config_from_dict, load_config
from aadb_toolkit.models.optim import build_optimizer, lr_at, set_lr


def _optim(**kw):
    return config_from_dict({"name": "x", "optim": kw}).optim


def test_warm_up_then_cosine_to_zero_within_a_stage():
    o = _optim(optimizer="adamw", schedule="cosine", warmup_steps=4, lr=1.0)
    lrs = [lr_at(o, 10, 24, 10 + k) for k in range(24)]
    assert lrs[:4] == pytest.approx([0.2, 0.4, 0.6, 0.8])  # linear, never 0, reaches lr after warm-up
    assert lrs[4] == pytest.approx(1.0) and lrs[-1] < 0.02
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:]))
    assert lr_at(o, 10, 24, 10 + 4 + 10) == pytest.approx(0.5 * (1 + math.cos(math.pi * 10 / 20)))


def test_the_paper_step_schedule_is_unchanged():
    o = _optim(lr=1e-4, anneal_at=[0.5, 0.75])
    assert [lr_at(o, 0, 100, s) for s in (0, 49, 50, 74, 75, 99)] == pytest.approx([1e-4, 1e-4, 1e-5, 1e-5, 1e-6, 1e-6])


def test_sgd_without_options_is_one_group_and_layer_decay_scales_blocks_below_the_head():
    net = build_model("regression", width=0.0625)
    sgd = build_optimizer(net, _optim())
    assert len(sgd.param_groups) == 1 and isinstance(sgd, torch.optim.SGD)
    adamw = build_optimizer(net, _optim(optimizer="adamw", layer_decay=0.5, head_lr_mult=10.0))
    set_lr(adamw, 1.0)
    lr_of = {id(p): g["lr"] for g in adamw.param_groups for p in g["params"]}
    groups = net.backbone.layer_groups()  # conv1..conv5, fc6, fc7
    assert lr_of[id(groups[-1].weight)] == pytest.approx(0.5) and lr_of[id(groups[0].weight)] == pytest.approx(0.5 ** 7)
    assert lr_of[id(net.head.weight)] == pytest.approx(10.0)
    decay = {id(p): g["weight_decay"] for g in adamw.param_groups for p in g["params"]}
    assert decay[id(groups[0].bias)] == 0.0 and decay[id(groups[0].weight)] > 0  # no decay on biases
    assert len({id(p) for g in adamw.param_groups for p in g["params"]}) == len(list(net.parameters()))


def test_adamw_is_the_fused_kernel_where_the_device_has_one_and_steps_as_the_loop_does():
    """AdamW takes torch's fused kernel on the CPU (four times faster than the per-tensor loop for
    a quarter-width AlexNet: docs/performance.md), the same update to float rounding; on a device
    without one (``meta``) it falls back to the loop instead of failing."""
    torch.manual_seed(0)
    net = build_model("regression", width=0.0625, dropout=0.0)
    twin = build_model("regression", width=0.0625, dropout=0.0)
    twin.load_state_dict(net.state_dict())
    o = _optim(optimizer="adamw", lr=1e-2, weight_decay=0.1, head_lr_mult=10.0)
    fused = build_optimizer(net, o)
    assert all(g["fused"] for g in fused.param_groups)
    loop = build_optimizer(twin, o)
    for g in loop.param_groups:  # the same groups, stepped by torch's per-tensor loop
        g.update(fused=None, foreach=False)
    x = torch.randn(4, 3, 64, 64)
    for _ in range(3):
        for model, opt in ((net, fused), (twin, loop)):
            opt.zero_grad()
            model(x)["score"].pow(2).sum().backward()
            opt.step()
    for (name, a), b in zip(net.named_parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=name)
    on_meta = build_optimizer(build_model("regression", width=0.0625).to("meta"), o)
    assert not any(g["fused"] for g in on_meta.param_groups)


def test_extends_merges_recipes_in_order_and_refuses_cycles(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "a.toml").write_text('[optim]\nlr = 0.5\nbatch_size = 8\n[model]\nmode = "frozen"\n')
    (tmp_path / "r" / "b.toml").write_text('[optim]\nlr = 0.25\n')
    (tmp_path / "c.toml").write_text('name = "c"\nextends = ["r/a", "r/b"]\n[optim]\nbatch_size = 4\n')
    cfg = load_config(tmp_path / "c.toml")
    assert (cfg.optim.lr, cfg.optim.batch_size, cfg.model.mode) == (0.25, 4, "frozen")
    (tmp_path / "r" / "b.toml").write_text('extends = "../c"\n')
    with pytest.raises(InputError, match="cycle"):
        load_config(tmp_path / "c.toml")


@pytest.mark.parametrize("raw, field", [
    ({"model": {"arch": "dinov3"}}, "model.arch"),
    ({"model": {"mode": "freeze"}}, "model.mode"),
    ({"model": {"mode": "frozen", "train_blocks": 2}}, "model.train_blocks"),
    ({"optim": {"optimizer": "adam"}}, "optim.optimizer"),
    ({"optim": {"schedule": "cosin"}}, "optim.schedule"),
    ({"optim": {"layer_decay": 1.5}}, "optim"),
])
def test_bad_backbone_and_optimiser_settings_are_named(raw, field):
    with pytest.raises(InputError) as e:
        config_from_dict({"name": "x", **raw})
    assert e.value.field == field

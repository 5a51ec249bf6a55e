"""benchmarks/bench_fc6.py: its baseline pools first and gives the same features as AlexNet's top
layers, and a tiny measurement runs end to end."""

from __future__ import annotations

import torch
from benchmark_modules import benchmark_module

from aadb_toolkit.models import AlexNet

B = benchmark_module("bench_fc6")


def test_the_baseline_multiplies_36_positions_and_gives_the_same_features(monkeypatch):
    torch.manual_seed(0)
    net = AlexNet(None, width=0.1, dropout=0.0)
    m = net.trunk(torch.randn(2, 3, 64, 64))
    seen, linear = [], torch.nn.functional.linear
    monkeypatch.setattr(torch.nn.functional, "linear", lambda x, *a, **k: seen.append(x.shape[-1]) or linear(x, *a, **k))
    base = B.baseline_top(net)(m)
    assert seen[0] == net.classifier[1].in_features  # every pooled position, as torchvision's AlexNet
    torch.testing.assert_close(base, net.top(m), rtol=1e-5, atol=1e-6)


def test_a_tiny_measurement_reports_both_rows_and_their_ratios(capsys):
    out = B.measure(crop=64, batch=2, width=0.1, repeats=1)
    assert [r["top"] for r in out["rows"]] == [B.BASELINE, B.OURS]
    assert out["pool5"] == (1, 1) and out["fc7_max_rel_diff"] < 1e-4
    assert out["train_step_ratio"] > 0 and out["features_ratio"] > 0
    assert B.main(["--batch", "2", "--width", "0.1", "--repeats", "1"]) == 0
    assert '"train_step_ratio"' in capsys.readouterr().out

"""benchmarks/bench_seeding.py: its baseline (torch.manual_seed at every step) and the trainer's
seeding train the same weights, and a tiny measurement runs end to end."""

from __future__ import annotations

from benchmark_modules import benchmark_module

B = benchmark_module("bench_seeding")


def test_a_tiny_measurement_gives_the_same_weights_with_both_seedings(capsys):
    assert B.main(["--images", "200", "--steps", "4", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "torch.manual_seed per step (baseline)" in out and "same weights: True" in out
    assert B.trainer.seed_torch is not B._old_seeding  # the trainer's own seeding is put back

"""benchmarks/recovery_power.py: resampled verdict rates of the recovery suite, on run files the
tests write (the suite's JSON rows with their per-seed Δ)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from benchmark_modules import benchmark_module

P = benchmark_module("recovery_power")


def _run_file(path: Path, deltas: dict[tuple[str, str], list[float]]) -> Path:
    rows = [{"mechanism": m, "setting": s, "deltas": d, "n_seeds": len(d)} for (m, s), d in deltas.items()]
    path.write_text(json.dumps(rows))
    return path


def _deltas(seed: int, n: int = 12) -> dict[tuple[str, str], list[float]]:
    rng = np.random.default_rng(seed)
    return {
        ("strong", "planted"): list(0.10 + 0.01 * rng.standard_normal(n)),
        ("strong", "null"): list(0.01 * rng.standard_normal(n)),
        ("costly", "null"): list(-0.010 + 0.004 * rng.standard_normal(n)),
    }


def test_a_small_real_null_effect_fails_more_often_with_more_seeds(tmp_path):
    deltas = P.pooled_deltas([_run_file(tmp_path / "a.json", _deltas(0)), _run_file(tmp_path / "b.json", _deltas(1))])
    few, _ = P.verdict_rates(deltas, 3, draws=1500)
    many, every = P.verdict_rates(deltas, 12, draws=1500)
    assert few[("strong", "planted")] == many[("strong", "planted")] == 1.0
    assert many[("strong", "null")] > 0.75
    assert few[("costly", "null")] > 0.3 > many[("costly", "null")]
    assert every <= min(many.values())


def test_draws_take_whole_seeds_across_rows(tmp_path):
    """Two rows whose Δ are opposite on every seed cannot both pass in one draw when each fails
    on its own half of the seeds."""
    up = [0.1] * 6 + [-0.1] * 6
    down = [-d for d in up]
    deltas = P.pooled_deltas([_run_file(tmp_path / "a.json", {("up", "planted"): up, ("down", "planted"): down})])
    rates, every = P.verdict_rates(deltas, 4, draws=1000)
    assert rates[("up", "planted")] > 0 and rates[("down", "planted")] > 0
    assert every == 0.0


def test_run_files_that_cannot_be_pooled_are_named(tmp_path):
    good = _run_file(tmp_path / "good.json", _deltas(0))
    other = _run_file(tmp_path / "other.json", {("strong", "planted"): [0.1, 0.2, 0.3]})
    with pytest.raises(P.RunFileError, match="other.json: its rows differ"):
        P.pooled_deltas([good, other])
    ragged = _run_file(tmp_path / "ragged.json", {("a", "planted"): [0.1, 0.2], ("a", "null"): [0.0]})
    with pytest.raises(P.RunFileError, match="ragged.json: its rows have different numbers of seeds"):
        P.pooled_deltas([ragged])
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(P.RunFileError, match="broken.json: not a readable JSON file"):
        P.pooled_deltas([tmp_path / "broken.json"])
    no_deltas = tmp_path / "no_deltas.json"
    no_deltas.write_text(json.dumps([{"mechanism": "a", "setting": "planted"}]))
    with pytest.raises(P.RunFileError, match="no_deltas.json: row 0 lacks"):
        P.pooled_deltas([no_deltas])


def test_the_command_prints_a_table_and_refuses_bad_input(tmp_path, capsys):
    run = _run_file(tmp_path / "run.json", _deltas(0))
    assert P.main([str(run), "--seeds", "3", "6", "--draws", "200"]) == 0
    out = capsys.readouterr().out
    assert "| strong | planted | 1.00 | 1.00 |" in out and "**every row**" in out and "not AADB" in out
    with pytest.raises(SystemExit) as exc:
        P.main([str(tmp_path / "missing.json")])
    assert exc.value.code == 2
    assert "missing.json: not a readable JSON file" in capsys.readouterr().err


def test_a_null_margin_judges_nulls_by_equivalence(tmp_path):
    """With a margin, a small real null cost passes once it is resolved inside the margin, and a
    null interval too wide to say fails, where the suite's verdict does the opposite."""
    deltas = P.pooled_deltas([_run_file(tmp_path / "a.json", _deltas(0)), _run_file(tmp_path / "b.json", _deltas(1))])
    strict, _ = P.verdict_rates(deltas, 12, draws=1500)
    margin, every = P.verdict_rates(deltas, 12, draws=1500, null_margin=0.02)
    assert strict[("costly", "null")] < 0.3 and margin[("costly", "null")] == 1.0
    assert margin[("strong", "planted")] == 1.0 and every == min(margin.values())
    few, _ = P.verdict_rates(deltas, 3, draws=1500, null_margin=0.02)
    assert few[("strong", "null")] < P.verdict_rates(deltas, 3, draws=1500)[0][("strong", "null")]
    assert not P.expected(("x", "null"), -0.03, 0.0, 0.02) and P.expected(("x", "null"), -0.019, -0.001, 0.02)


def test_the_command_line_refuses_a_margin_that_is_not_positive(tmp_path, capsys):
    run = _run_file(tmp_path / "a.json", _deltas(0))
    with pytest.raises(SystemExit) as e:
        P.main([str(run), "--null-margin", "0"])
    assert e.value.code == 2 and "--null-margin must be a positive number" in capsys.readouterr().err
    assert P.main([str(run), "--seeds", "4", "--draws", "50", "--null-margin", "0.02"]) == 0
    assert "inside ±0.02" in capsys.readouterr().out

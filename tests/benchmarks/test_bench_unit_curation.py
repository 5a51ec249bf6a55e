"""benchmarks/bench_unit_curation.py: a tiny measurement runs end to end in the suite's worker,
and both ways give the same tables."""

from __future__ import annotations

from benchmark_modules import benchmark_module

B = benchmark_module("bench_unit_curation")


def test_a_tiny_measurement_curates_the_same_tables_both_ways(capsys):
    assert B.main(["--images", "200", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert B.BASELINE in out and B.OURS in out and "same tables: True" in out


def test_different_tables_are_told_apart(tmp_path):
    import pandas as pd

    for name, rows in (("a", [1, 2]), ("b", [1, 3])):
        (tmp_path / name).mkdir()
        for table in ("images.parquet", "ratings.parquet"):
            pd.DataFrame({"x": rows}).to_parquet(tmp_path / name / table)
    assert not B.same_tables(tmp_path / "a", tmp_path / "b") and B.same_tables(tmp_path / "a", tmp_path / "a")

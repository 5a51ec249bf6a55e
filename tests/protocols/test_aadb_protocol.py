"""The ``aadb`` protocol on the hand-built tiny curated folder."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from aadb_toolkit import sources
from aadb_toolkit.cli import main
from aadb_toolkit.protocols import score_submission
from aadb_toolkit.protocols.results import read_result
from aadb_toolkit.submissions import sha256_file, write_predictions


@pytest.fixture(scope="module")
def test_split(tiny_curated):
    return sources.load(tiny_curated).split("test")


def _sub(tmp_path, ids, values, name="s.csv"):
    return write_predictions(pd.Series(values, index=ids), tmp_path / name)


def test_perfect_and_reversed_predictions(tmp_path, tiny_curated, test_split):
    ids, y = test_split["image_id"], test_split["score_mean"].to_numpy()
    r = score_submission("aadb", _sub(tmp_path, ids, y), tiny_curated, n_boot=200, seed=1)
    assert r.metrics["spearman"].value == pytest.approx(1.0)
    assert r.metrics["kendall"].value == pytest.approx(1.0)
    assert r.metrics["spearman"].ci_low == pytest.approx(1.0) and r.metrics["spearman"].ci_high == pytest.approx(1.0)
    r = score_submission("aadb", _sub(tmp_path, ids, -y), tiny_curated, n_boot=0)
    assert r.metrics["spearman"].value == pytest.approx(-1.0)
    assert r.metrics["spearman"].ci_low is None


def test_metrics_equal_scipy_and_result_records_provenance(tmp_path, tiny_curated, test_split):
    ids, y = test_split["image_id"], test_split["score_mean"].to_numpy()
    x = y + np.random.default_rng(0).normal(0, 0.6, y.size)
    path = _sub(tmp_path, ids[::-1], x[::-1])  # row order does not matter
    r = score_submission("aadb", path, tiny_curated, n_boot=300, seed=4)
    assert abs(r.metrics["spearman"].value - stats.spearmanr(x, y).statistic) < 1e-12
    assert r.metrics["pearson"].value == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)
    assert r.metrics["kendall"].value == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)
    m = r.metrics["spearman"]
    assert m.ci_low < m.value < m.ci_high and m.ci_level == 0.95
    assert r.data_fingerprint == sources.load(tiny_curated).fingerprint("test")
    assert r.submission_sha256 == sha256_file(path)
    assert (r.n_images, r.seed, r.n_boot, r.protocol, r.protocol_version) == (y.size, 4, 300, "aadb", "1")
    again = score_submission("aadb", path, tiny_curated, n_boot=300, seed=4)
    other = score_submission("aadb", path, tiny_curated, n_boot=300, seed=5)
    assert (again.metrics["spearman"].ci_low, again.metrics["spearman"].ci_high) == (m.ci_low, m.ci_high)
    assert other.metrics["spearman"].ci_low != m.ci_low


def test_cli_writes_result_and_compares(tmp_path, tiny_curated, test_split, capsys):
    ids, y = test_split["image_id"], test_split["score_mean"].to_numpy()
    rng = np.random.default_rng(1)
    good = _sub(tmp_path, ids, y + rng.normal(0, 0.2, y.size), "good.csv")
    bad = _sub(tmp_path, ids, rng.normal(size=y.size), "bad.csv")
    out = tmp_path / "out" / "result.json"
    rc = main(["score", "--submission", str(good), "--protocol", "aadb", "--data", str(tiny_curated),
               "--out", str(out), "--n-boot", "100", "--seed", "2", "--compare", str(bad)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "aadb v1: spearman = " in printed and "Steiger Z" in printed
    r = read_result(out)
    assert r.n_boot == 100 and r.seed == 2
    comp = json.loads(out.read_text())["details"]["comparison"]
    assert comp["other_submission_sha256"] == sha256_file(bad)
    assert comp["delta"] == pytest.approx(comp["rho_a"] - comp["rho_b"])


def test_cli_compare_reports_an_undefined_test_where_rho_is_undefined(tmp_path, monkeypatch, capsys):
    """``--compare`` on a test split whose ground truth is constant: ρ is undefined, so Steiger's Z
    and the paired bootstrap are reported as undefined (null in the result), not a crash."""
    from tiny_data import memory_source

    from aadb_toolkit.cli import score as score_cli
    from aadb_toolkit.protocols import evaluate

    ids = [f"i{k}.jpg" for k in range(6)]
    flat = memory_source(pd.Series(3.0, index=ids))
    monkeypatch.setattr(score_cli, "score_submission", lambda *a, **k: evaluate("aadb", flat, np.arange(6.0), n_boot=20))
    other = _sub(tmp_path, ids, np.arange(6.0)[::-1], "other.csv")
    out = tmp_path / "r.json"
    rc = main(["score", "--submission", str(other), "--protocol", "aadb", "--data", str(tmp_path / "data"),
               "--out", str(out), "--n-boot", "20", "--compare", str(other)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    line = next(t for t in captured.out.splitlines() if "vs other.csv" in t)
    assert "Steiger Z undefined" in line and "bootstrap undefined" in line and "nan" not in line
    assert "spearman = undefined" in captured.out and "= nan" not in captured.out  # the summary line too
    comp = json.loads(out.read_text())["details"]["comparison"]
    assert comp["steiger_z"] is None and comp["steiger_p"] is None and comp["bootstrap_p"] is None


def test_cli_unknown_protocol_suggests(tmp_path, tiny_curated, capsys):
    rc = main(["score", "--submission", "x.csv", "--protocol", "adb", "--data", str(tiny_curated),
               "--out", str(tmp_path / "r.json")])
    assert rc == 1 and "did you mean aadb" in capsys.readouterr().err


def test_cli_compares_with_a_recorded_result(tmp_path, tiny_curated, test_split, capsys):
    ids, y = test_split["image_id"], test_split["score_mean"].to_numpy()
    rng = np.random.default_rng(5)
    a = _sub(tmp_path, ids, y + rng.normal(0, 0.2, y.size), "a.csv")
    b = _sub(tmp_path, ids, y + rng.normal(0, 1.0, y.size), "b.csv")
    db = tmp_path / "lb.db"
    common = ["--protocol", "aadb", "--data", str(tiny_curated), "--n-boot", "50", "--leaderboard", str(db)]
    assert main(["score", "--submission", str(b), "--out", str(tmp_path / "b.json"), "--name", "b", *common]) == 0
    assert main(["score", "--submission", str(a), "--out", str(tmp_path / "a.json"), "--name", "a",
                 "--compare", str(tmp_path / "b.json"), *common]) == 0
    via_db = json.loads((tmp_path / "a.json").read_text())["details"]["comparison"]
    assert main(["score", "--submission", str(a), "--out", str(tmp_path / "a2.json"), "--compare", str(b),
                 "--protocol", "aadb", "--data", str(tiny_curated), "--n-boot", "50"]) == 0
    via_csv = json.loads((tmp_path / "a2.json").read_text())["details"]["comparison"]
    assert via_db == via_csv and via_db["other_submission_sha256"] == sha256_file(b)
    capsys.readouterr()


def test_a_negative_seed_is_a_clear_error_not_an_internal_one(tmp_path, tiny_curated, test_split, capsys):
    """Review 2026-12-04: `aadb score --seed -1` ended in an internal error (numpy's ValueError),
    and with --n-boot 0 the seed was accepted silently."""
    sub = _sub(tmp_path, test_split["image_id"], test_split["score_mean"].to_numpy())
    for n_boot in ("100", "0"):
        assert main(["score", "--submission", str(sub), "--protocol", "aadb", "--data", str(tiny_curated),
                     "--out", str(tmp_path / "r.json"), "--n-boot", n_boot, "--seed", "-1"]) == 1
        err = capsys.readouterr().err
        assert "seed must be" in err and "internal error" not in err
    assert not (tmp_path / "r.json").exists()


def test_the_recorded_hash_is_of_the_bytes_that_were_scored(tmp_path, tiny_curated, test_split, monkeypatch):
    """Review suspected the result's sha256 came from a second read of the CSV. The file is read
    once: a file swapped right after that read is neither hashed nor scored, the bytes read are both."""
    from aadb_toolkit import submissions

    ids, y = test_split["image_id"], test_split["score_mean"].to_numpy()
    path = _sub(tmp_path, ids, y)
    scored = path.read_bytes()
    real = submissions._read_bounded

    def read_then_swap(p, max_bytes, target):
        data = real(p, max_bytes, target)
        _sub(tmp_path, ids, -y)  # the same file, other predictions
        return data

    monkeypatch.setattr(submissions, "_read_bounded", read_then_swap)
    r = score_submission("aadb", path, tiny_curated, n_boot=0)
    assert r.submission_sha256 == submissions.sha256_fingerprint(scored) != sha256_file(path)
    assert r.metrics["spearman"].value == pytest.approx(1.0)

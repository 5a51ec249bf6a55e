"""The SQLite leaderboard: idempotent, concurrent-safe recording; ranking within a data fingerprint;
Markdown/HTML/CSV rendering with significance marks and the paper's reported rows."""

from __future__ import annotations

import csv
import io
import multiprocessing as mp
import sqlite3

import numpy as np
import pandas as pd
import pytest

from aadb_toolkit import leaderboard, paper
from aadb_toolkit.cli import main
from aadb_toolkit.errors import InputError
from aadb_toolkit import _ranks


def spearman(x, y):
    return _ranks.spearman(x, y, min_n=2)[0]
from aadb_toolkit.protocols.results import Metric, PairedData, make_result
from aadb_toolkit.protocols.significance import compare

N = 120


def _truth(fp_seed=0):
    rng = np.random.default_rng(fp_seed)
    return pd.Series(rng.normal(3, 0.6, N), index=[f"img{i:04d}.jpg" for i in range(N)])


def _result(noise, *, seed=0, fingerprint="sha256:fp-A", truth=None, sha=None):
    truth = _truth() if truth is None else truth
    rng = np.random.default_rng(seed)
    pred = truth + rng.normal(0, noise, N)
    paired = PairedData.from_series(truth, pred)
    rho = spearman(paired.predictions, paired.truth)
    return make_result(protocol="aadb", protocol_version="1", main_metric="spearman",
                       metrics={"spearman": Metric(rho, rho - 0.05, rho + 0.05, 0.95), "pearson": Metric(rho)},
                       data_fingerprint=fingerprint, submission_sha256=sha or f"sha256:{noise}-{seed}",
                       n_images=N, seed=0, n_boot=100, paired=paired)


def _count(db):
    with sqlite3.connect(db) as con:
        return con.execute("SELECT count(*) FROM results").fetchone()[0]


def test_record_is_idempotent(tmp_path):
    db = tmp_path / "lb.db"
    r = _result(0.3)
    first = leaderboard.record(db, r, "model A")
    again = leaderboard.record(db, r, "model A")
    assert first.inserted and not again.inserted and again.result_id == first.result_id
    assert leaderboard.record(db, r, "model A (copy)").inserted
    assert _count(db) == 2
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _writer(db, k):
    for j in range(4):
        leaderboard.record(db, _result(0.2 + 0.1 * j, seed=100 * k + j), f"writer {k} model {j}")
    leaderboard.record(db, _result(0.5, seed=999), "shared submission")  # the same by every writer


def test_eight_concurrent_writers_lose_nothing(tmp_path):
    db = tmp_path / "lb.db"
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(db, k)) for k in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * 8
    names = set(leaderboard.entries(db)["name"])
    assert len(names) == 33 and _count(db) == 33
    assert {f"writer {k} model {j}" for k in range(8) for j in range(4)} <= names


def test_results_with_different_fingerprints_are_never_ranked_together(tmp_path):
    db = tmp_path / "lb.db"
    leaderboard.record(db, _result(0.8, seed=1), "A-weak")
    leaderboard.record(db, _result(0.2, seed=2), "A-strong")
    leaderboard.record(db, _result(0.01, seed=3, fingerprint="sha256:fp-B", truth=_truth(5)), "B-best")
    tables = leaderboard.ranked_tables(db)["aadb"]
    assert [fp for fp, _ in tables] == ["sha256:fp-A", "sha256:fp-B"]
    a, b = tables[0][1], tables[1][1]
    assert a["name"].tolist() == ["A-strong", "A-weak"] and a["rank"].tolist() == [1, 2]
    assert b["name"].tolist() == ["B-best"] and b["rank"].tolist() == [1]
    md = leaderboard.format_markdown(db, "aadb")
    assert md.count("## Data fingerprint") == 2 and "`sha256:fp-B`" in md


def test_significance_marks_use_steiger_on_stored_predictions(tmp_path):
    db = tmp_path / "lb.db"
    strong, weak = _result(0.1, seed=1), _result(1.5, seed=2)
    twin_pred = np.exp(strong.paired.predictions)  # same ranking, different file: equal ρ
    twin = make_result(**{**{k: getattr(strong, k) for k in ("protocol", "protocol_version", "main_metric", "metrics",
                                                                 "data_fingerprint", "n_images", "seed", "n_boot")},
                          "submission_sha256": "sha256:twin",
                          "paired": PairedData(strong.paired.image_ids, strong.paired.truth, twin_pred)})
    for r, name in ((strong, "strong"), (weak, "weak"), (twin, "strong twin")):
        leaderboard.record(db, r, name)
    (_, g), = leaderboard.ranked_tables(db)["aadb"]
    assert g["name"].tolist()[-1] == "weak"
    p = g.set_index("name")
    expected = compare(strong.paired.truth, strong.paired.predictions, weak.paired.predictions).steiger_p
    leader = g["name"].iloc[0]
    leader_r = strong if leader == "strong" else twin
    assert p.loc["weak", "p_vs_leader"] == pytest.approx(
        compare(leader_r.paired.truth, leader_r.paired.predictions, weak.paired.predictions).steiger_p)
    assert p.loc["weak", "p_vs_leader"] < 0.05 and np.isnan(p.loc[leader, "p_vs_above"])
    assert expected < 0.05
    second = g["name"].iloc[1]
    assert p.loc[second, "p_vs_above"] == 1.0  # two equally good submissions: not significant
    md = leaderboard.format_markdown(db, "aadb")
    weak_line = next(line for line in md.splitlines() if line.startswith("| 3 | weak"))
    assert weak_line.count("*") == 2
    assert "n.s." in md


def test_a_board_where_rho_is_undefined_renders_without_significance_marks(tmp_path):
    """A test split whose ground truth is constant leaves every ρ undefined: the board still
    renders, and its comparisons carry no p-value and no mark (no crash in Steiger's Z)."""
    db = tmp_path / "lb.db"
    flat = pd.Series(3.0, index=_truth().index)
    for noise, seed in ((0.3, 1), (1.0, 2)):
        leaderboard.record(db, _result(noise, seed=seed, truth=flat, fingerprint="sha256:flat"), f"m{seed}")
    (_, g), = leaderboard.ranked_tables(db)["aadb"]
    assert g[["p_vs_above", "p_vs_leader"]].isna().all().all()
    md = leaderboard.format_markdown(db, "aadb")
    rows = [line for line in md.splitlines() if line.startswith(("| 1 | m", "| 2 | m"))]
    assert len(rows) == 2 and not any("*" in line or "n.s." in line for line in rows)


def test_render_writes_all_formats_with_reported_rows(tmp_path):
    db = tmp_path / "lb.db"
    leaderboard.record(db, _result(0.3), "<b>my model</b>")
    out = tmp_path / "site"
    written = leaderboard.render(db, out)
    for protocol in ("aadb", "ava", "human", "cross-dataset"):
        for ext in ("md", "html", "csv"):
            assert (out / f"{protocol}.{ext}").is_file()
    assert set(written) >= {"index.md", "index.html", "aadb.csv"}
    rows = list(csv.DictReader(io.StringIO((out / "aadb.csv").read_text())))
    reported = [r for r in rows if r["kind"] == "reported"]
    assert len(reported) == len(paper.TABLE2_AADB_RHO)
    assert all(r["rank"] == "" for r in reported)
    best = next(r for r in reported if r["name"] == "Reg+Rank+Att+Cont")
    assert float(best["spearman"]) == pytest.approx(paper.TABLE2_AADB_RHO["Reg+Rank+Att+Cont"])
    sub = [r for r in rows if r["kind"] == "submitted"]
    assert sub[0]["rank"] == "1" and sub[0]["name"] == "<b>my model</b>" and sub[0]["fingerprint"] == "sha256:fp-A"
    html_text = (out / "aadb.html").read_text()
    assert "&lt;b&gt;my model&lt;/b&gt;" in html_text and "<b>my model</b>" not in html_text
    assert 'class="board reported"' in html_text
    md = (out / "aadb.md").read_text()
    assert "Reg+Rank+Att+Cont (reported)" in md and "not ranked against the rows above" in md
    ava_rows = list(csv.DictReader(io.StringIO((out / "ava.csv").read_text())))
    assert len(ava_rows) == len(paper.TABLE3_AVA) and all(r["kind"] == "reported" for r in ava_rows)
    assert "Table 7" in (out / "cross-dataset.md").read_text()
    assert "human raters who rated > 100 images (65 workers, mean ρ)" in (out / "human.md").read_text()


def test_bad_names_and_bad_databases(tmp_path):
    db = tmp_path / "lb.db"
    with pytest.raises(InputError, match="name is empty"):
        leaderboard.record(db, _result(0.3), "   ")
    with pytest.raises(InputError, match="control characters"):
        leaderboard.record(db, _result(0.3), "a\nb")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(InputError, match="not a usable leaderboard database"):
        leaderboard.record(junk, _result(0.3), "x")


def test_cli_leaderboard(tmp_path, capsys):
    db = tmp_path / "lb.db"
    assert main(["leaderboard", "--db", str(db), "--out", str(tmp_path / "o")]) == 1
    assert "no such leaderboard database" in capsys.readouterr().err
    leaderboard.record(db, _result(0.3), "m1")
    assert main(["leaderboard", "--db", str(db), "--out", str(tmp_path / "o"), "--print", "aadb"]) == 0
    out = capsys.readouterr().out
    assert "| 1 | m1 |" in out and (tmp_path / "o" / "aadb.html").is_file()


def test_protocols_without_a_single_prediction_set_render_without_p_values(tmp_path):
    db = tmp_path / "lb.db"
    for name, v in (("transfer-low", 0.1), ("transfer-high", 0.3)):
        r = make_result(protocol="cross-dataset", protocol_version="1", main_metric="mean_transfer_rho",
                        metrics={"mean_transfer_rho": Metric(v), "rho[aadb->ava]": Metric(v / 2)},
                        data_fingerprint="sha256:x", submission_sha256=f"sha256:{name}", n_images=50, seed=0, n_boot=0)
        leaderboard.record(db, r, name)
    leaderboard.render(db, tmp_path / "o")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "o" / "cross-dataset.csv").read_text())))
    sub = [r for r in rows if r["kind"] == "submitted"]
    assert [r["name"] for r in sub] == ["transfer-high", "transfer-low"] and all(r["p vs above"] == "" for r in sub)
    rep = [r for r in rows if r["kind"] == "reported"]
    assert float(rep[0]["rho[aadb->ava]"]) == paper.TABLE7_CROSS[("aadb", "ava")]


@pytest.mark.slow
def test_concurrent_aadb_score_processes(tmp_path, tiny_curated):
    import subprocess
    import sys

    """Four ``aadb score --leaderboard`` processes at once (the 8-writer test above uses multiprocessing)."""
    from aadb_toolkit import sources
    from aadb_toolkit.submissions import write_predictions

    test = sources.load(tiny_curated).split("test")
    rng = np.random.default_rng(0)
    db = tmp_path / "lb.db"
    procs = []
    for k in range(4):
        sub = write_predictions(pd.Series(test["score_mean"].to_numpy() + rng.normal(0, 0.5, len(test)),
                                         index=test["image_id"]), tmp_path / f"s{k}.csv")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "aadb_toolkit", "score", "--submission", str(sub), "--protocol", "aadb",
             "--data", str(tiny_curated), "--out", str(tmp_path / f"r{k}.json"), "--n-boot", "50",
             "--leaderboard", str(db), "--name", f"model {k}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [o[1].decode()[-500:] for o in outs]
    assert sorted(leaderboard.entries(db)["name"]) == [f"model {k}" for k in range(4)]


def test_protocol_version_bump_is_a_new_result_ranked_apart(tmp_path, tiny_curated):
    """After a protocol's version changes, the same file under the same name is recorded again and
    ranked in its own section, never against results of the other version."""
    import dataclasses

    import numpy as np
    import pandas as pd

    from aadb_toolkit import leaderboard, sources
    from aadb_toolkit.protocols import score_submission

    test = sources.load(tiny_curated).split("test")
    sub = tmp_path / "s.csv"
    pd.DataFrame({"image_id": test["image_id"], "score": np.arange(len(test), dtype=float)}).to_csv(sub, index=False)
    db = tmp_path / "lb.sqlite"
    r1 = score_submission("aadb", sub, tiny_curated, n_boot=0)
    assert leaderboard.record(db, r1, "m").inserted
    assert not leaderboard.record(db, r1, "m").inserted
    r2 = dataclasses.replace(r1, protocol_version="0-old")
    assert leaderboard.record(db, r2, "m").inserted
    sections = leaderboard.ranked_tables(db)["aadb"]
    assert len(sections) == 2 and all(len(g) == 1 for _, g in sections)
    assert any(label.endswith("(protocol v0-old)") for label, _ in sections)


def test_a_result_with_non_finite_paired_values_is_not_recorded(tmp_path):
    """Review 2026-12-04: a result built in memory with a NaN prediction was stored, and the board
    then failed on the damaged blob. It is refused when recorded, and nothing is written."""
    from aadb_toolkit.errors import InputError

    db = tmp_path / "lb.db"
    leaderboard.record(db, _result(0.3), "fine")
    import dataclasses

    bad = _result(0.3, seed=1)
    predictions = bad.paired.predictions.copy()
    predictions[3] = np.nan
    bad = dataclasses.replace(bad, paired=dataclasses.replace(bad.paired, predictions=predictions))
    with pytest.raises(InputError, match="not finite"):
        leaderboard.record(db, bad, "nan inside")
    assert _count(db) == 1
    leaderboard.format_markdown(db, "aadb")  # the board still renders

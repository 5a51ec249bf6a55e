"""The piaa protocol: hand-computed scores on hand-made episodes, the oracle, strict validation."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "piaa"))
from piaa_data import make_data, workload_data  # noqa: E402

from aadb_toolkit import sources  # noqa: E402
from aadb_toolkit.piaa import episodes as ep  # noqa: E402
from aadb_toolkit.protocols import piaa_protocol, score_submission  # noqa: E402
from aadb_toolkit.submissions import SubmissionError  # noqa: E402


def _hand_made():
    """Two raters, one shared test image set; R1 has two episodes, R2 one (k = 1, 4 queries)."""
    imgs = [f"i{j}" for j in range(6)]
    own = {"R1": [1, 2, 3, 4, 5, 2], "R2": [5, 4, 3, 2, 1, 1], "R3": [3, 3, 4, 4, 5, 5]}
    ratings = [(r, i, float(s)) for r, ss in own.items() for i, s in zip(imgs, ss)]
    data = make_data(ratings, {i: "test" for i in imgs})
    rows = []

    def episode(rater, e, support, query):
        rows.extend((rater, 1, e, i, "support", float(own[rater][imgs.index(i)])) for i in support)
        rows.extend((rater, 1, e, i, "query", np.nan) for i in query)

    episode("R1", 0, ["i5"], ["i0", "i1", "i2", "i3"])
    episode("R1", 1, ["i0"], ["i1", "i2", "i3", "i4"])
    episode("R2", 0, ["i5"], ["i0", "i1", "i2", "i3"])
    return data, pd.DataFrame(rows, columns=list(ep.COLUMNS)), own, imgs


def test_scorer_returns_hand_computed_values():
    data, episodes, own, imgs = _hand_made()
    # R1 ep0: truth 1,2,3,4, pred 1,2,4,3 -> rho 0.8; ep1: truth 2,3,4,5, pred 4,3,2,1 -> -1
    # R2 ep0: truth 5,4,3,2, pred 1,2,3,4 -> -1; the generic predicts 1,2,3,4 / 1,2,3,4 / 4,3,2,1
    pred = np.array([1, 2, 4, 3, 4, 3, 2, 1, 1, 2, 3, 4], float)
    generic = np.array([1, 2, 3, 4, 1, 2, 3, 4, 4, 3, 2, 1], float)
    res = piaa_protocol.evaluate(data, pred, episodes=episodes, generic=generic, n_boot=0)
    m = {k: v.value for k, v in res.metrics.items()}
    assert m["rho_k1"] == pytest.approx(((0.8 - 1.0) / 2 + -1.0) / 2)
    assert m["generic_rho_k1"] == pytest.approx(1.0)
    assert m["mean_rho"] == pytest.approx(m["rho_k1"])
    assert m["share_beats_generic_k1"] == 0.0 and m["n_raters_k1"] == 2
    # leave-one-out: mean of the other two raters on each query image, against the rater's own scores
    loo = {}
    for r in ("R1", "R2"):
        others = [o for o in own if o != r]
        loo[r] = {i: np.mean([own[o][j] for o in others]) for j, i in enumerate(imgs)}
    q = ep.queries(episodes)
    by_hand = []
    for r, e in (("R1", 0), ("R1", 1), ("R2", 0)):
        ids = q[(q["rater_id"] == r) & (q["episode"] == e)]["image_id"]
        by_hand.append((r, stats.spearmanr([loo[r][i] for i in ids], [own[r][imgs.index(i)] for i in ids])[0]))
    expect = np.mean([np.mean([v for rr, v in by_hand if rr == r]) for r in ("R1", "R2")])
    assert m["loo_rho_k1"] == pytest.approx(expect)
    raters = {(d["rater_id"]): d for d in res.details["raters"]}
    assert raters["R1"]["rho"] == pytest.approx(-0.1) and raters["R1"]["n_episodes"] == 2


def test_constant_prediction_counts_zero_and_constant_truth_is_left_out():
    data, episodes, _, _ = _hand_made()
    pred = np.array([2, 2, 2, 2, 1, 2, 3, 4, 4, 3, 2, 1], float)
    res = piaa_protocol.evaluate(data, pred, episodes=episodes, n_boot=0)
    raters = {d["rater_id"]: d for d in res.details["raters"]}
    assert raters["R1"]["rho"] == pytest.approx(0.5)  # (0 + 1) / 2
    assert raters["R2"]["rho"] == pytest.approx(1.0)


@pytest.fixture(scope="module")
def qualified(tmp_path_factory):
    data = workload_data({"Ra": (5, 30), "Rb": (0, 24), "Rc": (3, 115)})
    episodes = ep.make_episodes(data)  # the protocol's default episodes (what score() draws)
    return data, episodes


def _write(path, rows, header="rater_id,k,episode,image_id,score"):
    path.write_text(header + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def _oracle_rows(data, episodes):
    own = data.ratings.set_index(["rater_id", "image_id"])["score"]
    q = ep.queries(episodes)
    return [(r, k, e, i, own[(r, i)]) for r, k, e, i in q[["rater_id", "k", "episode", "image_id"]].itertuples(
        index=False, name=None)]


def test_oracle_submission_scores_rho_one(tmp_path, qualified, monkeypatch):
    data, episodes = qualified
    monkeypatch.setattr(sources, "load", lambda *a, **k: data)
    sub = _write(tmp_path / "oracle.csv", _oracle_rows(data, episodes))
    res = score_submission("piaa", sub, "hand-made", n_boot=200)
    assert res.metrics["rho_k10"].value == pytest.approx(1.0)
    assert res.metrics["rho_k100"].value == pytest.approx(1.0)
    assert res.metrics["mean_rho"].value == pytest.approx(1.0)
    assert res.metrics["n_raters_k10"].value == 3 and res.metrics["n_raters_k100"].value == 1
    assert res.data_fingerprint == piaa_protocol.fingerprint(data, episodes)
    json.dumps(res.to_dict(), allow_nan=False)


def test_generic_file_in_image_layout_is_spread_over_episodes(tmp_path, qualified, monkeypatch):
    data, episodes = qualified
    monkeypatch.setattr(sources, "load", lambda *a, **k: data)
    rows = _oracle_rows(data, episodes)
    sub = _write(tmp_path / "oracle.csv", rows)
    ids = sorted(ep.queries(episodes)["image_id"].unique())
    generic = _write(tmp_path / "generic.csv", [(i, len(i) + j % 3) for j, i in enumerate(ids)], "image_id,score")
    res = score_submission("piaa", sub, "hand-made", n_boot=0, generic=generic)
    assert res.metrics["share_beats_generic_k10"].value == 1.0
    assert res.metrics["generic_rho_k10"].value < 1.0


def test_malformed_submission_lists_every_problem_with_rows_and_stores_nothing(tmp_path, qualified, monkeypatch):
    from aadb_toolkit.cli import main

    data, episodes = qualified
    monkeypatch.setattr(sources, "load", lambda *a, **k: data)
    rows = _oracle_rows(data, episodes)
    bad = list(rows)
    r, k, e, i, s = bad[3]
    bad[3] = (r, k, e, i, "nan")                  # row 5: NaN score
    bad[5] = (bad[5][0], "10.0", *bad[5][2:])     # row 7: k written as a float -> unknown key
    bad[8] = bad[7]                               # row 10: duplicated key (row 9 first)
    del bad[20]                                   # one query row missing
    sub = _write(tmp_path / "bad.csv", bad)
    with pytest.raises(SubmissionError) as err:
        score_submission("piaa", sub, "hand-made", n_boot=0)
    msg = str(err.value)
    assert "row 5: score is NaN" in msg
    assert "row 7: unknown rater_id,k,episode,image_id" in msg
    assert "row 10: duplicated rater_id,k,episode,image_id" in msg and "first on row 9" in msg
    assert "query row(s) of the piaa episodes' queries have no row" in msg
    db, out = tmp_path / "lb.sqlite", tmp_path / "result.json"
    code = main(["score", "--protocol", "piaa", "--submission", str(sub), "--data", "x", "--out", str(out),
                 "--leaderboard", str(db), "--name", "bad"])
    assert code == 1 and not out.exists() and not db.exists()


def test_wrong_header_is_named(tmp_path, qualified, monkeypatch):
    data, episodes = qualified
    monkeypatch.setattr(sources, "load", lambda *a, **k: data)
    sub = _write(tmp_path / "h.csv", [(i, 1) for i in range(3)], "image_id,score,extra")
    with pytest.raises(SubmissionError, match="row 1: header is 'image_id,score,extra', expected exactly "
                                              "'rater_id,k,episode,image_id,score'"):
        score_submission("piaa", sub, "hand-made", n_boot=0)


def test_an_aadb_format_file_is_told_so_in_one_line(tmp_path, qualified, monkeypatch):
    data, episodes = qualified
    monkeypatch.setattr(sources, "load", lambda *a, **k: data)
    sub = tmp_path / "aadb.csv"
    sub.write_text("image_id,score\n" + "".join(f"img{i},{i}\n" for i in range(50)))
    with pytest.raises(SubmissionError) as err:
        score_submission("piaa", sub, "hand-made", n_boot=0)
    assert len(err.value.problems) == 1
    assert "this is an aadb-format file" in str(err.value) and "rater_id,k,episode,image_id,score" in str(err.value)


def test_other_protocols_refuse_generic(tmp_path, tiny_curated):
    from aadb_toolkit.errors import InputError

    with pytest.raises(InputError, match="takes no --generic"):
        score_submission("aadb", tmp_path / "x.csv", tiny_curated, generic=tmp_path / "g.csv")


def test_the_headline_mean_rho_carries_a_bootstrap_ci():
    data, episodes, own, imgs = _hand_made()
    pred = np.array([1, 2, 4, 3, 4, 3, 2, 1, 1, 2, 3, 4], float)
    res = piaa_protocol.evaluate(data, pred, episodes=episodes, n_boot=200, seed=3)
    main, per_k = res.metrics["mean_rho"], res.metrics["rho_k1"]
    assert main.ci_low is not None and main.ci_low <= main.value <= main.ci_high
    # one k: the mean over k is that k's mean, resampled the same way
    assert (main.value, main.ci_low, main.ci_high) == pytest.approx((per_k.value, per_k.ci_low, per_k.ci_high))


def test_an_episodes_file_in_any_row_order_scores_the_same():
    """Review 2026-12-04 (afternoon): scoring refused an episodes file whose rows were shuffled
    ("episode query rows are not grouped by episode") though ``aadb personalize`` accepts it with
    the same predictions; the rows are grouped by (k, rater, episode) before scoring."""
    data, episodes, _, _ = _hand_made()
    pred = np.array([1, 2, 4, 3, 4, 3, 2, 1, 1, 2, 3, 4], float)
    generic = np.array([1, 2, 3, 4, 1, 2, 3, 4, 4, 3, 2, 1], float)
    want = piaa_protocol.evaluate(data, pred, episodes=episodes, generic=generic, n_boot=0)
    shuffled = episodes.sample(frac=1.0, random_state=3).reset_index(drop=True)
    keys = ["rater_id", "k", "episode", "image_id"]
    where = {tuple(r): j for j, r in enumerate(ep.queries(episodes)[keys].itertuples(index=False, name=None))}
    order = [where[tuple(r)] for r in ep.queries(shuffled)[keys].itertuples(index=False, name=None)]
    got = piaa_protocol.evaluate(data, pred[order], episodes=shuffled, generic=generic[order], n_boot=0)
    assert {k: v.value for k, v in got.metrics.items()} == {k: v.value for k, v in want.metrics.items()}

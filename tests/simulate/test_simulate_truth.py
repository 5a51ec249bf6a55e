"""The planted truth matches the release exactly, and the planted quality is what raters see."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from aadb_toolkit import schema
from aadb_toolkit.simulate._model import load_model

PDT = timezone(timedelta(hours=-7))


def _csv_ratings(amt_csv, release) -> pd.DataFrame:
    _, rows, _ = amt_csv(release / schema.RELEASE_RAW_RESULTS)
    out = []
    for n, r in enumerate(rows):
        for i in range(1, 11):
            url = r[f"Input.image_url{i}"]
            farm = url.split("//farm")[1].split(".")[0]
            server, name = url.split("/")[-2:]
            rec = {"csv_row": n, "slot": i, "assignment_id": r["AssignmentId"], "hit_id": r["HITId"],
                   "worker_id": r["WorkerId"], "assignment_status": r["AssignmentStatus"],
                   "image_id": f"farm{farm}_{server}_{name}", "score_text": r[f"Answer.overallScore{i}"],
                   "submit_text": r["SubmitTime"]}
            for a, stem in schema.AMT_ATTRIBUTE_ANSWER_STEMS.items():
                rec[f"{a}_text"] = r[f"Answer.{stem}{i}"]
            out.append(rec)
    return pd.DataFrame(out)


@pytest.mark.parametrize("which", ["clean_release", "quirky_release"])
def test_truth_ratings_match_the_csv_cell_for_cell(which, request, amt_csv):
    res = request.getfixturevalue(which)
    truth = pd.read_parquet(res.truth_dir / "ratings.parquet")
    csv_r = _csv_ratings(amt_csv, res.release_dir)
    assert len(truth) == len(csv_r) == res.n_csv_rows * 10
    m = csv_r.merge(truth, on=["assignment_id", "slot"], suffixes=("_csv", ""), validate="one_to_one")
    assert len(m) == len(truth)
    for col in ("csv_row", "hit_id", "worker_id", "image_id", "assignment_status"):
        assert (m[f"{col}_csv"] == m[col]).all(), col
    ok = m[m["answer_valid"]]
    assert (ok["score_text"] == ok["score"].astype(str)).all()
    for a in schema.ATTRIBUTES:
        assert (ok[f"{a}_text"] == ok[a].astype(str)).all(), a
    parsed = [datetime.strptime(t.replace(" PDT", ""), "%a %b %d %H:%M:%S %Y").replace(tzinfo=PDT)
              for t in m["submit_text"]]
    assert (pd.to_datetime(parsed, utc=True) == pd.DatetimeIndex(m["submit_time"])).all()
    assert res.n_valid_ratings == int(truth["is_valid"].sum())
    assert (truth["is_valid"] == (truth["invalid_reason"] == "")).all()
    if which == "clean_release":
        assert truth["is_valid"].all() and (truth.groupby("image_id").size() == 5).all()
    else:  # every corrupted cell is marked: its text is not a valid answer
        bad = m[~m["answer_valid"] & m["invalid_reason"].isin(["blank_score", "out_of_range_score"])]
        assert len(bad) >= 2 and not bad["score_text"].isin(list("12345")).any()


def test_planted_quality_drives_the_mean_scores(clean_release):
    images = pd.read_parquet(clean_release.truth_dir / "images.parquet")
    ratings = pd.read_parquet(clean_release.truth_dir / "ratings.parquet")
    workers = pd.read_parquet(clean_release.truth_dir / "workers.parquet")
    honest = ratings[ratings["worker_id"].isin(workers.loc[~workers["is_random"], "worker_id"])]
    mean = ratings.groupby("image_id")["score"].mean()
    q = images.set_index("image_id")["latent_quality"].loc[mean.index]
    assert spearmanr(q, mean)[0] > 0.5
    for a in schema.ATTRIBUTES:  # attribute votes follow the planted strengths
        votes = honest.groupby("image_id")[a].mean()
        planted = images.set_index("image_id")[f"planted_{a}"].loc[votes.index]
        assert spearmanr(planted, votes)[0] > 0.5, a
    # random raters answer regardless of quality
    rand = ratings[ratings["worker_id"].isin(workers.loc[workers["is_random"], "worker_id"])]
    q_all = images.set_index("image_id")["latent_quality"]
    assert len(rand) > 100 and abs(spearmanr(q_all.loc[rand["image_id"]], rand["score"])[0]) < 0.2
    # honest scores follow quality; most clearly within an assignment, since a worker's per-HIT
    # session offset (model.toml) shifts whole HITs (at full size ρ ≈ 0.59 across all ratings)
    q_honest = q_all.loc[honest["image_id"]].to_numpy()
    assert spearmanr(q_honest, honest["score"])[0] > 0.4
    by_assignment = honest.assign(q=q_honest).groupby("assignment_id")
    centred_q = q_honest - by_assignment["q"].transform("mean")
    centred_score = honest["score"] - by_assignment["score"].transform("mean")
    assert spearmanr(centred_q, centred_score)[0] > 0.5


def test_truth_tables_have_the_documented_columns(clean_release):
    images = pd.read_parquet(clean_release.truth_dir / "images.parquet")
    for col in ("image_id", "hit_id", "split", "content_type", "latent_quality", "width", "height",
                "quirk", "kept", "n_valid_ratings", *(f"planted_{a}" for a in schema.ATTRIBUTES)):
        assert col in images.columns, col
    assert images["content_type"].nunique() >= 4
    assert images[[f"planted_{a}" for a in schema.ATTRIBUTES]].abs().max().max() < 1
    workers = pd.read_parquet(clean_release.truth_dir / "workers.parquet")
    assert list(workers.columns) == ["worker_id", "role", "bias", "scale", "noise", "session_sd", "taste",
                                     "taste_attributes", "is_random", "is_careless", "n_hits", "n_images",
                                     "n_valid_ratings"]
    assert all(len(t) == len(load_model().content_names) for t in workers["taste"])
    assert all(len(t) == len(schema.ATTRIBUTES) and not np.any(t) for t in workers["taste_attributes"])  # 0 by default
    ratings = pd.read_parquet(clean_release.truth_dir / "ratings.parquet")
    assert {"hit_id", "assignment_id", "worker_id", "image_id", "score", *schema.ATTRIBUTES, "is_valid",
            "invalid_reason", "submit_time"} <= set(ratings.columns)
    assert set(ratings["score"]) <= {1, 2, 3, 4, 5}
    for a in schema.ATTRIBUTES:
        assert set(ratings[a]) <= {-1, 0, 1}


def test_content_types_weigh_attributes_differently():
    model = load_model()
    w = model.weight_matrix
    assert len(model.content_types) >= 4
    assert np.linalg.matrix_rank(w) == len(model.content_types)
    assert np.allclose(np.linalg.norm(w, axis=1), 1)
    assert abs(sum(c.share for c in model.content_types) - 1) < 1e-9

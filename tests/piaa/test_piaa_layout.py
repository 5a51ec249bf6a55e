"""The train split's episodes, where both reference personalizers choose their penalty."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from piaa_data import taste_with_train_split, train_ratings

from aadb_toolkit.errors import InputError
from aadb_toolkit.piaa import episodes as ep
from aadb_toolkit.piaa import layout


def test_train_episodes_keep_every_score_and_read_only_the_train_split():
    data, index, *_ = taste_with_train_split(1.0)
    ratings = train_ratings(data)
    table = layout.train_episodes(ratings, index, 10, draws=3)
    own = {(r, i): s for r, i, s in ratings[["rater_id", "image_id", "score"]].itertuples(index=False)}
    assert table["score"].notna().all()  # the queries keep the rater's score (the protocol's do not)
    assert [own[(r, i)] for r, i in zip(table["rater_id"], table["image_id"])] == table["score"].tolist()
    assert set(table["image_id"]) <= set(data.split("train")["image_id"])
    assert (table.groupby(["rater_id", "episode"])["role"].apply(lambda r: (r == "support").sum()) == 10).all()
    assert table.groupby("rater_id")["episode"].nunique().eq(3).all()


def test_train_episodes_fall_back_to_the_largest_k_and_cap_their_number(monkeypatch):
    data, index, *_ = taste_with_train_split(1.0)  # 6 raters with 200 train ratings each
    ratings = train_ratings(data)
    big = layout.train_episodes(ratings, index, 500, draws=2)
    assert set(big["k"]) == {200 - ep.MIN_QUERIES}
    monkeypatch.setattr(layout, "MAX_CHOICE_SUPPORT", 130)
    capped = layout.train_episodes(ratings, index, 10, draws=20)
    assert capped.groupby("rater_id")["episode"].nunique().eq(2).all()  # 130 // (10 × 6 raters)
    monkeypatch.setattr(layout, "MAX_CHOICE_SUPPORT", 1)
    assert layout.train_episodes(ratings, index, 10, draws=20).groupby("rater_id")["episode"].nunique().eq(1).all()


def test_train_episodes_refuse_missing_ratings_features_and_too_few_ratings():
    data, index, *_ = taste_with_train_split(1.0)
    ratings = train_ratings(data)
    with pytest.raises(InputError, match="train split's ratings"):
        layout.train_episodes(None, index, 10)
    with pytest.raises(InputError, match="train split's ratings"):
        layout.train_episodes(ratings.iloc[:0], index, 10)
    with pytest.raises(InputError, match="no features for train image 'img0000'"):
        layout.train_episodes(ratings, index[1:], 10)
    with pytest.raises(InputError, match="at least 13 train ratings"):
        layout.train_episodes(ratings.groupby("rater_id").head(12), index, 10)


def test_mean_episode_rho_ranks_the_queries_within_each_episode():
    data, index, *_ = taste_with_train_split(1.0)
    table = layout.train_episodes(train_ratings(data), index, 10, draws=2)
    own = ep.queries(table)["score"].to_numpy()
    assert layout.mean_episode_rho(table, own) == pytest.approx(1.0)
    assert layout.mean_episode_rho(table, -own) == pytest.approx(-1.0)
    rng = np.random.default_rng(0)
    assert abs(layout.mean_episode_rho(table, rng.random(len(own)))) < 0.1
    assert np.isnan(layout.mean_episode_rho(pd.DataFrame(columns=table.columns), np.zeros(0)))


def test_best_penalty_breaks_ties_towards_the_stronger_penalty_and_says_what_it_chose(caplog):
    import logging
    import math

    data, index, *_ = taste_with_train_split(1.0)
    table = layout.train_episodes(train_ratings(data), index, 10, draws=2)
    grid = (1.0, 10.0, math.inf)
    with caplog.at_level(logging.INFO, logger="aadb_toolkit.piaa.layout"):
        assert layout.best_penalty(grid, [0.5, 0.7, 0.2], what="ridge: alpha", table=table) == 10.0
        assert layout.best_penalty(grid, [0.7, 0.7, 0.7], what="ridge: alpha", table=table) == math.inf
        assert layout.best_penalty(grid, [0.7, 0.7, 0.6], what="ridge: alpha", table=table) == 10.0
    assert "ridge: alpha chosen on the train split at k = 10: 10 (from 1, 10, ∞; 12 episodes of 6 train raters)" \
        in caplog.messages[0]
    assert "no correction" in caplog.messages[1]

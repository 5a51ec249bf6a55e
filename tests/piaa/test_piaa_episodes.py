"""The k-shot episodes: eligibility, determinism, disjoint support and queries, no train image."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from piaa_data import workload_data

from aadb_toolkit.cli import main
from aadb_toolkit.errors import InputError
from aadb_toolkit.piaa import episodes as ep


@pytest.fixture(scope="module")
def data():
    # qualify at k=10 needs >= 20 non-train ratings, at k=100 >= 110; train ratings never count
    return workload_data({"Ra": (50, 19), "Rb": (0, 20), "Rc": (5, 110), "Rd": (300, 109), "Re": (0, 45)})


def test_eligibility_threshold_counts_only_non_train_ratings(data):
    assert sorted(ep.qualifying_raters(data, 10).index) == ["Rb", "Rc", "Rd", "Re"]
    assert sorted(ep.qualifying_raters(data, 100).index) == ["Rc"]
    table = ep.make_episodes(data, ks=(10, 100), repeats=3)
    assert sorted(table.loc[table["k"] == 10, "rater_id"].unique()) == ["Rb", "Rc", "Rd", "Re"]
    assert sorted(table.loc[table["k"] == 100, "rater_id"].unique()) == ["Rc"]
    s = ep.summarize(table).set_index("k")
    assert s.loc[10, "n_raters"] == 4 and s.loc[10, "n_episodes"] == 12 and s.loc[100, "n_episodes"] == 3


def test_support_and_queries_disjoint_cover_the_raters_non_train_images(data):
    table = ep.make_episodes(data, ks=(10, 100), repeats=4, seed=3)
    split = data.images.set_index("image_id")["split"]
    assert not (table["image_id"].map(split) == "train").any()
    rated = data.ratings.groupby("rater_id")["image_id"].apply(set)
    for (rater, k, e), part in table.groupby(["rater_id", "k", "episode"]):
        support = set(part.loc[part["role"] == "support", "image_id"])
        query = set(part.loc[part["role"] == "query", "image_id"])
        assert len(support) == k and not support & query
        non_train = {i for i in rated[rater] if split[i] != "train"}
        assert support | query == non_train and len(query) >= ep.MIN_QUERIES
        own = data.ratings.set_index(["rater_id", "image_id"])["score"]
        sup = part[part["role"] == "support"]
        assert np.array_equal(sup["score"].to_numpy(), own.loc[list(zip(sup["rater_id"], sup["image_id"]))].to_numpy())
        assert part.loc[part["role"] == "query", "score"].isna().all()


def test_episodes_are_deterministic_by_seed_and_differ_across_seeds_and_episodes(data):
    a = ep.make_episodes(data, repeats=5, seed=7)
    b = ep.make_episodes(data, repeats=5, seed=7)
    pd.testing.assert_frame_equal(a, b)
    assert ep.fingerprint(a) == ep.fingerprint(b)
    c = ep.make_episodes(data, repeats=5, seed=8)
    assert ep.fingerprint(c) != ep.fingerprint(a)
    sup = a[(a["role"] == "support") & (a["rater_id"] == "Re")].groupby("episode")["image_id"].apply(frozenset)
    assert sup.nunique() > 1  # repeats draw different support sets


def test_a_raters_episodes_do_not_depend_on_other_raters(data):
    full = ep.make_episodes(data, repeats=3)
    alone = ep.make_episodes(workload_data({"Re": (0, 45)}), repeats=3)
    mine = full[full["rater_id"] == "Re"].reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, alone)


def test_csv_round_trip_and_check_against_data(tmp_path, data):
    table = ep.make_episodes(data, repeats=2)
    path = ep.write_episodes(table, tmp_path / "e.csv")
    back = ep.read_episodes(path, data)
    pd.testing.assert_frame_equal(back, table, check_dtype=False)
    bad = table.copy()
    bad.loc[bad.index[0], "score"] = bad["score"].iloc[0] % 5 + 1  # a support score that is not the rater's
    ep.write_episodes(bad, tmp_path / "bad.csv")
    with pytest.raises(InputError, match="row 2.*own score"):
        ep.read_episodes(tmp_path / "bad.csv", data)


def test_bad_parameters_are_refused(data):
    with pytest.raises(InputError, match="k must be"):
        ep.make_episodes(data, ks=(0,))
    with pytest.raises(InputError, match="repeats"):
        ep.make_episodes(data, repeats=0)


def test_cli_writes_episodes(tmp_path, tiny_curated, capsys):
    out = tmp_path / "episodes.csv"
    assert main(["piaa", "episodes", "--data", str(tiny_curated), "--out", str(out), "--k", "10", "--repeats",
                 "2"]) == 0
    text = capsys.readouterr().out
    assert "k = 10:" in text and out.is_file()
    assert out.read_text().splitlines()[0] == "rater_id,k,episode,image_id,role,score"


def test_malformed_episode_files_name_row_and_field(tmp_path, data):
    table = ep.make_episodes(data, repeats=1)
    path = tmp_path / "e.csv"
    ep.write_episodes(table, path)
    lines = path.read_text().splitlines()
    (tmp_path / "cols.csv").write_text("rater,k\nRa,10\n")
    with pytest.raises(InputError, match="cols.csv, row 1: header is"):
        ep.read_episodes(tmp_path / "cols.csv")
    bad = list(lines)
    bad[3] = bad[3].replace(",10,", ",ten,", 1)
    (tmp_path / "k.csv").write_text("\n".join(bad) + "\n")
    with pytest.raises(InputError, match="row 4, field 'k': k is not an integer"):
        ep.read_episodes(tmp_path / "k.csv")
    bad = list(lines)
    bad[2] = bad[2].replace(",support,", ",shot,")
    (tmp_path / "role.csv").write_text("\n".join(bad) + "\n")
    with pytest.raises(InputError, match="row 3, field 'role'"):
        ep.read_episodes(tmp_path / "role.csv")
    bad = list(lines)
    bad[5] = bad[5].replace("Rb_img", "Rz_img")
    (tmp_path / "img.csv").write_text("\n".join(bad) + "\n")
    with pytest.raises(InputError, match="row 6, field 'image_id'"):
        ep.read_episodes(tmp_path / "img.csv", data)


def test_repeats_have_an_upper_bound(capsys):
    """Issue 17, item 8: --repeats 1e8 was killed for memory; now a clear error before any work."""
    from aadb_toolkit.cli import main

    assert main(["piaa", "episodes", "--data", "no-such-folder", "--out", "ep.csv", "--repeats",
                 str(ep.MAX_REPEATS + 1)]) == 1
    err = capsys.readouterr().err
    assert "repeats must be an integer from 1 to" in err


def _rated_twice():
    """Rater Ra rates every image once, and image Ra_img0030 (a non-train image) a second time in
    another batch, as curation keeps a worker who met the same photo in two HITs."""
    from piaa_data import make_data

    base = workload_data({"Ra": (0, 30)})
    extra = base.ratings[base.ratings["image_id"] == "Ra_img0003"].assign(batch_id="B_second", score=5.0)
    ratings = pd.concat([base.ratings, extra], ignore_index=True)
    first = float(base.ratings.loc[base.ratings["image_id"] == "Ra_img0003", "score"].iloc[0])
    data = make_data(list(ratings[["rater_id", "image_id", "score"]].itertuples(index=False, name=None)),
                     dict(zip(base.images["image_id"], base.images["split"])))
    data.ratings["batch_id"] = ratings["batch_id"].to_numpy()
    return data, (first + 5.0) / 2


def test_a_rater_who_rated_an_image_in_two_batches_counts_it_once_with_the_mean_score():
    """Review 2026-12-04: a worker who rated one photo in two HITs (legal curated data) made
    `aadb piaa episodes` and `aadb publish` fail with "rated image … more than once"."""
    data, mean = _rated_twice()
    own = ep.non_train_ratings(data)
    assert len(own) == 30 and own["image_id"].is_unique
    assert own.set_index("image_id").loc["Ra_img0003", "score"] == mean
    table = ep.make_episodes(data, ks=(10,), repeats=3)
    assert not table.duplicated(["rater_id", "k", "episode", "image_id"]).any()
    ep.check_episodes(table, data)  # the support scores are the rater's one (mean) score


def test_a_rating_repeated_within_one_batch_is_still_refused():
    data, _ = _rated_twice()
    data.ratings["batch_id"] = "B_one"
    with pytest.raises(InputError, match="twice in batch"):
        ep.non_train_ratings(data)


def test_an_episode_must_have_exactly_k_support_rows_and_a_query(data):
    """Review 2026-12-04: an episode labelled k = 5 with 10 support rows was accepted (and the
    personalizers then kept the last 5); k = 0 crashed with ZeroDivisionError."""
    table = ep.make_episodes(data, ks=(10,), repeats=1)
    first = table[(table["rater_id"] == "Rb")].index
    wrong_k = table.copy()
    wrong_k.loc[wrong_k["rater_id"] == "Rb", "k"] = 5
    with pytest.raises(InputError, match="10 support rows, expected k = 5"):
        ep.check_episodes(wrong_k, data)
    zero = table.copy()
    zero.loc[zero["rater_id"] == "Rb", "k"] = 0
    with pytest.raises(InputError, match="k must be a positive integer"):
        ep.check_episodes(zero, data)
    no_query = table.drop(index=table[(table["rater_id"] == "Rb") & (table["role"] == "query")].index)
    with pytest.raises(InputError, match="no query"):
        ep.check_episodes(no_query, data)
    assert len(first) > 0


def test_a_negative_seed_is_refused_with_a_clear_error(data, capsys):
    """Review 2026-12-04: --seed -1 ended in an internal error (numpy's ValueError)."""
    with pytest.raises(InputError, match="seed must be"):
        ep.make_episodes(data, seed=-1)


def test_the_card_note_states_the_count_at_every_k_even_where_none_qualifies(data):
    """Review 2026-12-04: where no rater qualified at k = 100 the note left k = 100 out."""
    few = workload_data({"Ra": (0, 30), "Rb": (0, 25)})
    _, note = ep.published_table(few)
    assert "2 raters at k = 10, 0 raters at k = 100" in note


@pytest.mark.parametrize("column, value", [("k", "1e30"), ("k", "9223372036854775808"),
                                           ("k", "1000000000000000000000"), ("episode", "9223372036854775808"),
                                           ("episode", "1e30"), ("episode", "-1")])
def test_k_and_episode_outside_the_count_range_are_out_of_range_errors(tmp_path, data, column, value):
    """D9: k = 1e30 wrapped to -9223372036854775808 in the int64 cast (\"k must be a positive
    integer, got -9223372036854775808\"), and episode numbers of 2^63 wrapped silently."""
    path = tmp_path / "e.csv"
    ep.write_episodes(ep.make_episodes(data, ks=(10,), repeats=1), path)
    lines = path.read_text().splitlines()
    cells = lines[3].split(",")
    cells[ep.COLUMNS.index(column)] = value
    lines[3] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=rf"row 4, field '{column}': {column} is out of range"):
        ep.read_episodes(path)


def test_the_largest_count_is_read_exactly(tmp_path, data):
    path = tmp_path / "e.csv"
    table = ep.make_episodes(data, ks=(10,), repeats=1)
    table["episode"] = np.int64(2**63 - 1)
    ep.write_episodes(table, path)
    assert (ep.read_episodes(path)["episode"] == 2**63 - 1).all()


@pytest.mark.parametrize("seed", [-1, 2**63, True], ids=["negative", "past_int64", "bool"])
def test_the_seed_range_is_the_one_of_every_command(data, seed):
    """``_numbers.check_seed``'s range (0 to 2**63 - 1), as ``aadb score`` and ``aadb consistency``:
    a seed past int64 was accepted."""
    with pytest.raises(InputError, match="seed must be a whole number from 0 to 9,223,372,036,854,775,807"):
        ep.check_params((10,), 1, seed)
    with pytest.raises(InputError, match="seed must be a whole number"):
        ep.make_episodes(data, seed=seed)

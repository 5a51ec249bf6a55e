"""Every CSV the toolkit writes holds round-trip floats, so that anyone can check its numbers (BH
q-values, ρ) from the file to 1e-12 and better: read back, each float equals the computed one."""

import numpy as np
import pandas as pd

from aadb_toolkit import consistency, human, sources


def _assert_exact(frame: pd.DataFrame, path):
    back = pd.read_csv(path)
    floats = [c for c in frame.columns if pd.api.types.is_float_dtype(frame[c])]
    assert floats, "no float column to check"
    for c in floats:
        np.testing.assert_array_equal(back[c].to_numpy(dtype=float), frame[c].to_numpy(dtype=float), err_msg=c)


def test_consistency_csvs_round_trip_exactly(tiny_curated, tmp_path):
    data = sources.load(tiny_curated)
    result = consistency.analyze_batches(data.ratings, n_perm=199, seed=0)
    paths = consistency.write_outputs(result, tmp_path)
    _assert_exact(result.batches, paths["batches"])
    _assert_exact(result.pairs, paths["pairs"])


def test_human_workers_csv_round_trips_exactly(tiny_curated, tmp_path):
    data = sources.load(tiny_curated)
    table = human.worker_table(data.ratings, data.images, scope="test", count_scope="all")
    paths = human.write_outputs({"ok": True}, table, tmp_path)
    _assert_exact(table, paths["workers"])


def test_predictions_csv_round_trips_exactly(tmp_path):
    from aadb_toolkit.submissions import write_predictions

    scores = np.random.default_rng(0).random(50) / 3
    frame = pd.DataFrame({"image_id": [f"im{i}.jpg" for i in range(50)], "score": scores})
    _assert_exact(frame, write_predictions(frame, tmp_path / "p.csv"))

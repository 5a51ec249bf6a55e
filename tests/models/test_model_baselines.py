"""Every config under baselines/ loads, and trains (one step per stage) and predicts on the tiny
fixture; the paper numbers in the new configs are paper.py's."""

from pathlib import Path

import numpy as np
import pytest

from aadb_toolkit import paper
from aadb_toolkit.models import load_config, predict, train

BASELINES = Path(__file__).resolve().parents[2] / "baselines"
#: the AlexNet configs; the transformers backbones' configs need a weights folder and are trained in
#: test_model_backbones.py (a tiny save_pretrained model per family)
CONFIGS = sorted(p.stem for p in BASELINES.glob("*.toml") if load_config(p).model.arch == "alexnet")
TINY = {"model.width": 0.0625, "data.warp_size": 72, "data.crop_size": 64, "optim.batch_size": 8,
        "train.cpu_threads": 1, "train.log_every_steps": 1}
pytestmark = pytest.mark.filterwarnings("ignore:no --init-weights")


def test_the_issue_11_configs_are_all_there():
    assert {"reg_att", "reg_rank_att", "reg_rank_cont", "reg_rank_att_cont", "reg_ensemble8", "reg_wide",
            "reg_cont"} <= set(CONFIGS)


def _data_with_the_columns_of(cfg, tiny_curated, tmp_path):
    """The tiny fixture, or a copy with the attribute/content columns a config names added
    (AVA-style configs name columns AADB does not have)."""
    import shutil

    import pandas as pd

    from aadb_toolkit.models.heads import attribute_columns

    images = pd.read_parquet(tiny_curated / "images.parquet")
    want = list(attribute_columns(cfg.attributes.columns)) if cfg.attributes is not None else []
    if cfg.content is not None and cfg.content.labels.startswith("column:"):
        want.append(cfg.content.labels.removeprefix("column:"))
    missing = [c for c in want if c not in images.columns]
    if not missing:
        return tiny_curated
    shutil.copytree(tiny_curated, tmp_path / "cur")
    shutil.copytree(tiny_curated.parent / "release", tmp_path / "release")
    rng = np.random.default_rng(0)
    for c in missing:
        images[c] = rng.integers(0, 2, len(images)).astype(float)  # {0, 1}: a binary attribute or category
    images.to_parquet(tmp_path / "cur" / "images.parquet")
    return tmp_path / "cur"


@pytest.mark.parametrize("name", CONFIGS)
def test_every_baseline_loads_trains_one_step_and_predicts(name, tiny_curated, tmp_path):
    cfg = load_config(BASELINES / f"{name}.toml")
    data = _data_with_the_columns_of(cfg, tiny_curated, tmp_path)
    o = dict(TINY)
    o["optim.steps"] = 1 if not cfg.stages else len(cfg.stages)
    if cfg.pairs.strategy != "none":
        o["pairs.n_pairs"] = 64
    if cfg.content is not None and cfg.content.labels == "kmeans":
        o["content.clusters"] = 3
    if cfg.ensemble.members > 1:
        o["ensemble.members"] = 2  # the averaging itself is tested in test_model_variants.py
    cfg = cfg.replace(o)
    res = train(cfg, data, tmp_path / "run", progress=False, cache_dir=tmp_path / "cache")
    assert res.stopped == "completed" and res.global_step >= 1 and res.global_step == res.total_steps
    preds = predict(tmp_path / "run", data, "test", cache_dir=tmp_path / "cache")
    assert len(preds) > 0 and np.isfinite(preds["score"]).all()


def test_paper_numbers_of_the_part_2_configs():
    full = load_config(BASELINES / "reg_rank_att_cont.toml")
    assert full.loss.weights["attribute"] == paper.OMEGA_ATTRIBUTE
    assert full.content.clusters == paper.CONTENT_CLUSTERS and full.stages[-1].weights["attribute"] == paper.OMEGA_ATTRIBUTE
    assert [s.name for s in full.stages] == ["reg", "reg_rank", "joint"]
    assert set(full.stages[-1].branches) == {"attributes", "content"}
    assert load_config(BASELINES / "reg_ensemble8.toml").ensemble.members == paper.ENSEMBLE_SIZE
    assert load_config(BASELINES / "reg_wide.toml").model.fc7_factor == paper.WIDE_FACTOR
    for name in ("reg_rank_att", "reg_rank_cont", "reg_rank_att_cont"):
        cfg = load_config(BASELINES / f"{name}.toml")
        assert cfg.paper_row in paper.TABLE2_AADB_RHO and cfg.optim.lr == paper.LEARNING_RATE
        assert (cfg.data.warp_size, cfg.data.crop_size) == (paper.WARP_SIZE, paper.CROP_SIZE)

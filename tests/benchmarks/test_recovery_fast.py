"""The fast version of the recovery suite (benchmarks/recovery.py) for CI: small releases of every
planted setting and its null control (drawn without pixels), and for each mechanism the lever it
exploits, measured with the toolkit's own code against the planted truth. Where a model can be
trained in seconds it is: linear heads on ideal features (the planted strengths and content, what
a perfect backbone would see) trained with the toolkit's own losses and pair samplers (rank loss,
within- vs cross-rater pairs), and both reference personalizers. Planted: the mechanism's side
wins by a wide margin; null: the two sides agree. Fixed seeds and margins several times the
spread seen across seeds, so the test is deterministic and not flaky; the benchmark trains the
toolkit's networks from images (docs/models.md, "Recovery suite")."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from benchmark_modules import benchmark_module

from aadb_toolkit import schema
from aadb_toolkit._ranks import spearman
from aadb_toolkit.models.losses import rank_loss, regression_loss
from aadb_toolkit.models.samplers import sample_pairs
from aadb_toolkit.piaa import episodes as ep
from aadb_toolkit.piaa.personalize import images_to_read

R = benchmark_module("recovery")


@pytest.fixture(scope="module")
def releases():
    """Every setting the suite uses, one 1,000-image release each (seed 11, drawn without pixels)."""
    cache: dict[str, object] = {}

    def get(setting: str):
        if setting not in cache:
            cache[setting] = R.draft_release(setting, 11, 1000)
        return cache[setting]
    return get


def _suite_pairs(strategy: str, bias: float = 1.0) -> dict:
    """The sampler's options of the suite's arm for ``strategy`` (within: Reg+Rank's; cross: its
    ablation's, cross-rater pairs inside random groups of a HIT's size)."""
    p = R.arm_recipe("reg_rank_cross" if strategy == "cross" else "reg_rank", "null_reliability", R.QUICK, 0)["pairs"]
    return {"strategy": strategy, "same_hit": p.get("same_hit", False), "bias": bias,
            "cross_group_size": p.get("cross_group_size", 0)}


def _pair_accuracy(rel, strategy: str) -> float:
    """Share of the pairs a strategy samples from the train split that the planted quality orders the same way."""
    train = rel.data.split("train")
    pairs = sample_pairs(train, rel.data.ratings, n_pairs=4000, seed=0, **_suite_pairs(strategy))
    q = rel.quality.loc[train["image_id"]].to_numpy()
    return float(np.mean(q[pairs.first] > q[pairs.second]))


def _mean_score_accuracy(rel) -> float:
    """Share of random train-image pairs whose mean scores order them as the planted quality does
    (what the regression loss fits)."""
    train = rel.data.split("train")
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, len(train), (2, 4000))
    s, q = train["score"].to_numpy(), rel.quality.loc[train["image_id"]].to_numpy()
    keep = (s[a] != s[b]) & (a != b)
    return float(np.mean((s[a] > s[b])[keep] == (q[a] > q[b])[keep]))


def test_within_rater_pairs_carry_order_that_cross_rater_pairs_lack(releases):
    planted = _pair_accuracy(releases("planted_reliability"), "within") \
        - _pair_accuracy(releases("planted_reliability"), "cross")
    null = _pair_accuracy(releases("null_reliability"), "within") - _pair_accuracy(releases("null_reliability"), "cross")
    assert planted > 0.05  # seeds 11-13: 0.18-0.30 (against cross-rater pairs in random HIT-sized groups)
    assert abs(null) < 0.02  # seeds 11-13: 0.000


def test_rank_pairs_carry_order_that_mean_scores_lack(releases):
    planted = _pair_accuracy(releases("planted_reliability"), "within") - _mean_score_accuracy(releases("planted_reliability"))
    null = _pair_accuracy(releases("null_reliability"), "within") - _mean_score_accuracy(releases("null_reliability"))
    assert planted > 0.1  # seeds 11-13: 0.16-0.19
    assert abs(null) < 0.02  # seeds 11-13: within 0.005


def _attribute_agreement(rel) -> float:
    """Correlation of the curated attribute labels with the planted (visible) strengths."""
    images = rel.data.images.set_index("image_id")
    labels = images[list(schema.ATTRIBUTES)].to_numpy(float).ravel()
    planted = rel.images.loc[images.index, [f"planted_{a}" for a in schema.ATTRIBUTES]].to_numpy().ravel()
    ok = np.isfinite(labels)
    return float(np.corrcoef(labels[ok], planted[ok])[0, 1])


def test_attribute_labels_describe_the_image_only_where_planted(releases):
    assert _attribute_agreement(releases("planted_attributes")) > 0.7
    assert abs(_attribute_agreement(releases("null_attributes"))) < 0.1


def _content_r2_gain(rel) -> float:
    """R² of quality from the strengths per content type, minus R² of one pooled linear fit."""
    t = rel.images
    x = np.column_stack([t[[f"planted_{a}" for a in schema.ATTRIBUTES]].to_numpy(), np.ones(len(t))])
    y = t["latent_quality"].to_numpy()
    offsets = t.groupby("content_type")["latent_quality"].transform("mean").to_numpy()

    def r2(pred):
        return 1 - np.mean((y - pred) ** 2) / np.var(y)
    pooled = x @ np.linalg.lstsq(x, y - offsets, rcond=None)[0] + offsets
    per = np.empty_like(y)
    for idx in t.groupby("content_type").indices.values():
        per[idx] = x[idx] @ np.linalg.lstsq(x[idx], y[idx], rcond=None)[0]
    return r2(per) - r2(pooled)


def test_content_interaction_exists_only_where_planted(releases):
    assert _content_r2_gain(releases("planted_interaction")) > 0.3
    assert _content_r2_gain(releases("null_interaction")) < 0.01


def test_personalizer_learns_taste_only_where_planted(releases):
    # features a perfect fc7 would hold (content one-hot and the planted strengths), generic =
    # the planted quality: the personalizers must add the rater's taste, and add nothing without one
    out = {}
    for setting in ("planted_taste", "null_taste"):
        rel = releases(setting)
        episodes = ep.make_episodes(rel.data, ks=(10,), repeats=5, seed=0)
        ids = images_to_read(rel.data, episodes)
        t = rel.images.loc[ids]
        feats = np.column_stack([pd.get_dummies(t["content_type"]).to_numpy(float),
                                 t[[f"planted_{a}" for a in schema.ATTRIBUTES]].to_numpy()])
        generic = 0.5 + 0.1 * t["latent_quality"].to_numpy()
        out[setting] = R.personal_rhos_from(rel, episodes, pd.Index(ids), generic, feats)
    planted, null = out["planted_taste"], out["null_taste"]
    assert planted["ridge"] > planted["generic"] + 0.15
    assert planted["oracle"] > planted["ridge"]
    assert abs(null["ridge"] - null["generic"]) < 0.05
    assert null["oracle"] == null["generic"]
    # the rank fine-tune (seeds 11-13): planted +0.04..+0.05, null within 0.002
    assert planted["finetune"] > planted["generic"] + 0.02
    assert abs(null["finetune"] - null["generic"]) < 0.01


def _ideal_features(rel) -> pd.DataFrame:
    """What a perfect backbone would see of each image: its planted strengths and content one-hot."""
    t = rel.images
    x = np.column_stack([t[[f"planted_{a}" for a in schema.ATTRIBUTES]].to_numpy(),
                         pd.get_dummies(t["content_type"]).to_numpy(float)])
    return pd.DataFrame(x, index=t.index)


def _trained_head_rho(rel, strategy: str, steps: int = 300) -> float:
    """Test ρ (against the planted quality) of a linear head trained on the ideal features of the
    train split: Reg (``strategy`` "none") or Reg+Rank on within- or cross-rater pairs (uniform),
    with the toolkit's regression and rank losses (α = 0.02) and pair sampler."""
    import torch

    feats = _ideal_features(rel)
    train, test = rel.data.split("train"), rel.data.split("test")
    x = torch.tensor(feats.loc[train["image_id"]].to_numpy(), dtype=torch.float32)
    y = torch.tensor(train["score"].to_numpy(), dtype=torch.float32)
    torch.manual_seed(0)
    head = torch.nn.Linear(x.shape[1], 1)
    opt = torch.optim.Adam(head.parameters(), lr=0.02)
    if strategy != "none":
        p = sample_pairs(train, rel.data.ratings, n_pairs=4000, seed=0, **_suite_pairs(strategy, bias=0.0))
        first, second = torch.tensor(p.first), torch.tensor(p.second)
    for _ in range(steps):
        s = head(x)[:, 0]
        loss = regression_loss(s, y)
        if strategy != "none":
            loss = loss + rank_loss(s[first], s[second], torch.ones(len(first)), 0.02)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        pred = head(torch.tensor(feats.loc[test["image_id"]].to_numpy(), dtype=torch.float32))[:, 0].numpy()
    return spearman(pred, rel.quality.loc[test["image_id"]].to_numpy())[0]


def test_trained_heads_recover_the_rank_loss_and_within_rater_pairs(releases):
    rho = {(kind, s): _trained_head_rho(releases(f"{kind}_reliability"), s)
           for kind in ("planted", "null") for s in ("none", "within", "cross")}
    # planted (seeds 11-13): rank loss +0.02..+0.08 over Reg, within +0.035..+0.13 over cross
    assert rho["planted", "within"] > rho["planted", "none"] + 0.03
    assert rho["planted", "within"] > rho["planted", "cross"] + 0.02
    # null (seeds 11-13): every difference within 0.0005
    assert abs(rho["null", "within"] - rho["null", "none"]) < 0.01
    assert abs(rho["null", "within"] - rho["null", "cross"]) < 0.01


def test_the_suite_table_gives_each_row_its_verdict_and_says_the_data_are_synthetic():
    rows = [{"mechanism": "rank_loss", "setting": "planted", "rho_mechanism": 0.7, "rho_ablation": 0.6, "delta": 0.1,
             "ci_low": 0.02, "ci_high": 0.18, "n_seeds": 6},
            {"mechanism": "rank_loss", "setting": "null", "rho_mechanism": 0.7, "rho_ablation": 0.71, "delta": -0.01,
             "ci_low": -0.02, "ci_high": -0.001, "n_seeds": 6}]
    lines = R.table(rows).splitlines()
    assert lines[2] == "| rank_loss | planted | 0.700 | 0.600 | +0.100 | [+0.020, +0.180] | 6 | recovered |"
    assert lines[3].endswith("| false effect |")
    assert lines[-1] == "Data: synthetic releases (aadb simulate, planted/null settings): a test instrument, not AADB."


def test_the_suite_size_follows_quick_seeds_and_images():
    """``--images N`` resizes every release (the content branch needs larger ones,
    docs/models.md); a size the suite cannot split, or fewer than 3 seeds, is refused."""
    assert R.parse_args(["--quick", "--images", "3200", "--seeds", "4"]).size == \
        R.Size(images=3200, seeds=4, steps=R.QUICK.steps, content_images=3200, attribute_images=3200)
    small = R.parse_args(["--quick", "--images", "400"]).size
    assert small.images_for("planted_interaction") == small.images_for("planted_taste") == 400
    assert small.images_for("planted_attributes") == small.images_for("null_attributes") == 400
    # the content row's settings draw 6,400 images, the attribute row's 1,600, the others 800 (quick)
    assert R.QUICK.images_for("null_interaction") == 6400 and R.QUICK.images_for("null_reliability") == 800
    assert R.QUICK.images_for("planted_attributes") == R.QUICK.images_for("null_attributes") == 1600
    assert R.FULL.images_for("null_attributes") == R.FULL.images_for("null_taste") == 1600
    assert R.parse_args([]).size == R.FULL
    for bad in (["--images", "55"], ["--images", "100"], ["--seeds", "2"]):
        with pytest.raises(SystemExit):
            R.parse_args(bad)


def _flat(cfg: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in cfg.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@pytest.mark.parametrize("mechanism", [m for m in R.MECHANISMS if m.arm in R.ARMS])
def test_each_arm_differs_from_its_ablation_only_by_its_mechanism(mechanism):
    """The paired design's premise: a mechanism's config and its ablation's are both valid recipes
    of the toolkit and differ only in the mechanism's own sections (and the run's name)."""
    from aadb_toolkit.models import config_from_dict

    base = R.base_config(R.QUICK, 7)
    arm, ablation = R.ARMS[mechanism.arm](base), R.ARMS[mechanism.ablation](base)
    for cfg in (arm, ablation):
        config_from_dict(cfg, source="test")
    a, b = _flat(arm), _flat(ablation)
    changed = {k.split(".")[0] if k.split(".")[0] in ("pairs", "attributes", "content") else k
               for k in set(a) | set(b) if a.get(k) != b.get(k)}
    allowed = {"rank_loss": {"pairs", "loss.weights.rank"},
               "within_pairs": {"pairs"},
               "attribute_branch": {"attributes", "loss.weights.attribute"},
               "content_branch": {"content", "model.feature_size"}}[mechanism.name]  # beside Att (Fig. 3c)
    assert changed - {"name"} == allowed


def test_the_suite_split_gives_contclass_the_planted_content_types():
    """The content arm's ContClass learns from ``CONTENT_LABELS``: every image's planted content
    type as an integer category (sorted type names), beside the suite's split of its HIT."""
    from aadb_toolkit.data import AADBData

    ids = [f"img{i}" for i in range(40)]
    types = np.array(["urban", "landscape", "still_life", "macro", "portrait"] * 8)
    truth = pd.DataFrame({"image_id": ids, "hit_id": np.repeat(np.arange(4), 10), "content_type": types})
    data = AADBData(images=pd.DataFrame({"image_id": ids[::-1], "split": "train"}),
                    ratings=pd.DataFrame(columns=["rater_id", "image_id", "batch_id", "score"]), origin="test",
                    read_image_bytes=lambda i: b"")
    out = R.with_suite_split(data, truth.set_index("image_id"), seed=3).images.set_index("image_id")
    codes = {"landscape": 0, "macro": 1, "portrait": 2, "still_life": 3, "urban": 4}
    assert out[R.CONTENT_LABELS].to_dict() == {i: float(codes[t]) for i, t in zip(ids, types)}
    assert set(out["split"]) <= {"train", "test"}
    assert out.groupby(truth.set_index("image_id").loc[out.index, "hit_id"])["split"].nunique().eq(1).all()


def test_the_content_and_attribute_rows_train_on_backbones_of_their_own():
    """The content row's settings get the backbone pretrained with the small content weight, the
    attribute row's the one that never learned an attribute; every other setting the backbone of
    weight 1 on both."""
    assert {R._pretraining(s) for s in R.CONTENT_SETTINGS} == {(R.CONTENT_ROW_CONTENT_WEIGHT, 1.0)}
    assert {R._pretraining(s) for s in R.ATTRIBUTE_SETTINGS} == {(1.0, R.ATTRIBUTE_ROW_ATTRIBUTE_WEIGHT)}
    assert R.ATTRIBUTE_ROW_ATTRIBUTE_WEIGHT == 0
    others = {getattr(m, k) for m in R.MECHANISMS for k in ("planted", "null")} - R.CONTENT_SETTINGS - R.ATTRIBUTE_SETTINGS
    assert others and {R._pretraining(s) for s in others} == {(R.PRETRAIN_CONTENT_WEIGHT, R.PRETRAIN_ATTRIBUTE_WEIGHT)}
    content = next(m for m in R.MECHANISMS if m.name == "content_branch")
    assert {content.planted, content.null} == R.CONTENT_SETTINGS
    assert R.ARMS[content.arm](R.base_config(R.QUICK, 1))["content"]["labels"] == f"column:{R.CONTENT_LABELS}"


def test_the_attribute_row_fine_tunes_both_arms_with_the_papers_attribute_weight():
    """On the attribute settings both arms fine-tune the backbone (deep supervision, §4.3) with the
    same schedule and ω_a = 0.1; they differ only in the attribute branch. Elsewhere the recipes
    stay the frozen-feature ones."""
    from aadb_toolkit import paper

    att = next(m for m in R.MECHANISMS if m.name == "attribute_branch")
    assert {att.planted, att.null} == R.ATTRIBUTE_SETTINGS
    arm, ablation = (R.arm_recipe(a, att.planted, R.QUICK, 4) for a in (att.arm, att.ablation))
    for raw in (arm, ablation):
        assert raw["model"]["mode"] == "finetune" and raw["optim"]["lr"] == 1e-5 and raw["optim"]["head_lr_mult"] == 100
        assert raw["optim"]["steps"] == 400 and raw["pairs"]["n_pairs"] == 400 * 32  # 2/3 of the quick 600
        R.config_from_dict(raw, source="test")  # a valid config
    assert arm["loss"]["weights"] == {"regression": 1.0, "rank": 1.0, "attribute": paper.OMEGA_ATTRIBUTE}
    assert ablation["loss"]["weights"] == {"regression": 1.0, "rank": 1.0}
    assert {k: v for k, v in arm.items() if k not in ("name", "attributes", "loss")} == \
        {k: v for k, v in ablation.items() if k not in ("name", "loss")}
    for setting in ("planted_reliability", "planted_interaction"):
        raw = R.arm_recipe("reg_rank_att", setting, R.QUICK, 4)
        assert raw["model"]["mode"] == "frozen" and raw["loss"]["weights"]["attribute"] == 1.0


def test_a_resumed_run_does_not_reuse_units_of_other_recipes(tmp_path, monkeypatch):
    """units.jsonl results are reused only by a run whose arm recipes are the same: a changed
    recipe (here the attribute row's learning rate) retrains."""
    names = ("attribute_branch",)
    key = R._size_key(R.QUICK, names)
    (tmp_path / R.UNITS_FILE).write_text(json.dumps({"unit": ["planted_attributes", "planted", 0], "size": key,
                                                     "result": {"attribute_branch": [0.5, 0.4]}}) + "\n")
    assert list(R._done_units(tmp_path, R.QUICK, names)) == [("planted_attributes", "planted", 0)]
    monkeypatch.setitem(R.ATTRIBUTE_ROW_RECIPE, "optim__lr", 2e-5)
    assert R._size_key(R.QUICK, names) != key and R._done_units(tmp_path, R.QUICK, names) == {}


def test_the_backbones_share_one_pretraining_release(tmp_path, monkeypatch):
    """The content row's backbone, the attribute row's and the others' are pretrained on the same
    release, which is simulated, curated and decoded once; each has its own cached weights file."""
    import torch

    made = []
    original = R.make_release
    monkeypatch.setattr(R, "make_release", lambda *a, **k: made.append(a[0]) or original(*a, **k))
    R._pretraining_set.cache_clear()
    size = R.Size(images=200, seeds=3, steps=2, pretrain_images=200, pretrain_steps=2)
    paths = [R.pretrain_backbone(5, size, tmp_path, progress=False, content_weight=c, attribute_weight=a)
             for c, a in ((1.0, 1.0), (0.02, 1.0), (1.0, 0.0))]
    R._pretraining_set.cache_clear()
    assert made == ["default"] and len(set(paths)) == 3 and all(p.exists() for p in paths)
    weights = [torch.load(p, weights_only=True) for p in paths]
    for other in weights[1:]:
        assert other.keys() == weights[0].keys() and any(not torch.equal(other[k], weights[0][k]) for k in other)


def test_pretraining_a_backbone_leaves_the_caller_s_torch_state_alone(tmp_path):
    """pretrain_backbone seeds and threads torch for its own work only: the caller's random
    state and thread count are as before, and the same seed gives the same weights."""
    import torch

    size = R.Size(images=200, seeds=3, steps=2, pretrain_images=200, pretrain_steps=2)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        torch.manual_seed(123)
        before = torch.random.get_rng_state()
        paths = [R.pretrain_backbone(5, size, tmp_path / name, progress=False, threads=1) for name in ("a", "b")]
        assert torch.equal(torch.random.get_rng_state(), before)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    a, b = (torch.load(p, weights_only=True) for p in paths)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_long_units_go_to_the_workers_first_each_group_in_seed_order():
    """The attribute and content rows' units (fine-tuned arms, 6,400-image releases) are taken
    first, so that the two workers end on short units together; nothing is dropped or repeated."""
    units = [(setting, kind, seed) for seed in (7, 8) for kind in ("planted", "null")
             for setting in sorted({getattr(m, kind) for m in R.MECHANISMS})]
    order = R.unit_order(units)
    assert sorted(order) == sorted(units)
    long_ = [u[0] in R.ATTRIBUTE_SETTINGS | R.CONTENT_SETTINGS for u in order]
    assert long_ == sorted(long_, reverse=True) and sum(long_) == 8
    assert [u for u in order if u[0] == "planted_attributes"] == [("planted_attributes", "planted", 7),
                                                                  ("planted_attributes", "planted", 8)]
    assert order[-1] == ("null_taste", "null", 8)


def test_a_release_is_curated_in_the_unit_s_own_process(tmp_path, monkeypatch):
    """The suite runs its units in parallel worker processes, which are spawned; a process pool
    inside one would spawn fresh interpreters that import the suite and torch again (about 5 CPU
    seconds each, two per unit). So a unit's release is curated without a pool, the same tables."""
    import aadb_toolkit.curate._images as images

    def no_pool(*a, **k):
        raise AssertionError("a unit's curation started a process pool")

    monkeypatch.setattr(images, "default_workers", lambda: 4)
    monkeypatch.setattr(images, "worker_pool", no_pool)
    rel = R.make_release("null_reliability", 3, R.Size(images=200, seeds=3, steps=2), tmp_path)
    assert len(rel.data.images) == 200 and rel.data.ratings["rater_id"].nunique() > 1

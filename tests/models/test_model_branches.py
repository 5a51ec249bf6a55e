"""The attribute and content branches (paper §4.3-4.4): shapes, gradients and freezing, the masked
attribute loss, k-means on planted clusters, the gating weights, and the staged recipe resuming
across stages to bit-identical weights."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from aadb_toolkit.errors import InputError
from aadb_toolkit.models import AestheticsHead, TrainingInterrupted, attribute_loss, build_network, kmeans, load_config, train
from aadb_toolkit.models.content import fit_content_branch
from aadb_toolkit.models.runs import BEST, CHECKPOINT, load_run_file, metrics_frame

BASELINES = Path(__file__).resolve().parents[2] / "baselines"
TINY = {"model.width": 0.0625, "data.warp_size": 72, "data.crop_size": 64, "optim.batch_size": 16,
        "train.cpu_threads": 1, "train.log_every_steps": 1, "pairs.n_pairs": 96, "content.clusters": 3,
        "train.checkpoint_every_steps": 2, "train.validate_every_steps": 3}
pytestmark = pytest.mark.filterwarnings("ignore:no --init-weights")


def _head(n_att=4, k=3, gating="classifier"):
    torch.manual_seed(0)
    return AestheticsHead(16, n_attributes=n_att, n_content=k, feature_size=8, gating=gating, temperature=0.1)


def test_head_shapes_and_gate_rows_sum_to_one():
    head = _head()
    x = torch.randn(5, 16)
    out = head(x, trunk=x)
    assert out["score"].shape == (5,) and out["attributes"].shape == (5, 4) and out["gate"].shape == (5, 3)
    torch.testing.assert_close(out["gate"].sum(1), torch.ones(5))
    head.active = frozenset()  # the first stages: Reg's own score layer
    out = head(torch.randn(5, 16))
    assert "gate" not in out and out["score"].shape == (5,)


def test_centroid_gating_favours_the_nearest_centroid():
    head = _head(gating="centroid")
    head.content_top = torch.nn.Identity()  # gate directly on the given features
    with torch.no_grad():
        head.centroids.copy_(torch.eye(3, 16))
    x = torch.zeros(6, 16)
    for i in range(6):
        x[i, i % 3] = 3.0 + i
        x[i, 5] = 0.2
    g = head.gate(x, 6, x.device)
    torch.testing.assert_close(g.sum(1), torch.ones(6))
    assert g.argmax(1).tolist() == [0, 1, 2, 0, 1, 2]
    assert (g.max(1).values > 0.9).all()


def test_gradients_reach_the_branches_and_freezing_stops_them():
    head = _head()
    with torch.no_grad():
        head.branch_weight.normal_()  # as after some training (the branches start at zero)
    fc7 = torch.randn(8, 16, requires_grad=True)
    out = head(fc7, trunk=fc7)
    (out["score"].sum() + out["attributes"].sum()).backward()
    assert head.attribute.weight.grad.abs().sum() > 0 and head.base.weight.grad.abs().sum() > 0
    assert head.branch_weight.grad.abs().sum() > 0 and fc7.grad.abs().sum() > 0
    assert head.regression.weight.grad.abs().sum() > 0  # Reg's trained score layer keeps learning
    assert head.content_classifier.weight.grad is None  # frozen: trained on cluster labels only
    assert all(p.grad is None for p in head.content_top.parameters())
    with pytest.raises(InputError, match="trained attribute layer"):
        load_config(BASELINES / "reg_rank_att_cont.toml", {**TINY, "attributes.freeze": True})


def test_attribute_loss_is_masked_where_labels_are_absent():
    pred = torch.randn(4, 3, requires_grad=True)
    target = torch.tensor([[0.5, -0.5, 0.0], [np.nan] * 3, [1.0, np.nan, -1.0], [np.nan] * 3])
    loss = attribute_loss(pred, target)
    p = pred.detach()
    want = (((p[0] - target[0]) ** 2).sum() + (p[2, 0] - 1) ** 2 + (p[2, 2] + 1) ** 2) / (2 * 2)
    torch.testing.assert_close(loss, want)
    loss.backward()
    assert (pred.grad[1] == 0).all() and (pred.grad[3] == 0).all() and pred.grad[2, 1] == 0
    assert pred.grad[0].abs().sum() > 0
    none = attribute_loss(pred, torch.full((4, 3), float("nan")))
    assert none.item() == 0.0
    b = attribute_loss(pred, torch.tensor([[1.0, 0, np.nan]] * 4), "binary")
    logits = pred.detach()[:, :2]
    ref = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.tensor([[1.0, 0]] * 4))
    torch.testing.assert_close(b, ref)


def test_kmeans_recovers_planted_clusters_and_is_seeded():
    rng = np.random.default_rng(0)
    centres = np.linalg.qr(rng.normal(size=(16, 4)))[0].T  # 4 orthonormal directions
    truth = np.repeat(np.arange(4), 30)
    x = centres[truth] + rng.normal(0, 0.08, (120, 16))
    x = torch.tensor(x / np.linalg.norm(x, axis=1, keepdims=True))
    c, labels = kmeans(x, 4, seed=3)
    table = pd.crosstab(truth, labels.numpy())
    assert (table.gt(0).sum(axis=1) == 1).all() and (table.gt(0).sum(axis=0) == 1).all()  # a bijection
    c2, labels2 = kmeans(x, 4, seed=3)
    assert torch.equal(labels, labels2) and torch.equal(c, c2)
    with pytest.raises(InputError, match="at least 5"):
        kmeans(x[:4], 5, seed=0)


def test_fit_content_classifier_learns_the_groups():
    rng = np.random.default_rng(1)
    truth = np.repeat(np.arange(3), 40)
    fc7 = torch.tensor(np.eye(3, 16)[truth] * 2 + rng.normal(0, 0.1, (120, 16)), dtype=torch.float32).relu()
    head = _head(k=3)
    labels, acc = fit_content_branch(head, fc7, fc7, None, seed=0, epochs=30, lr=1e-2, batch_size=32)
    assert bool(head.content_fitted) and acc > 0.95
    assert not any(p.requires_grad for p in head.content_parameters())  # frozen after fitting
    agree = (head.gate(fc7, 120, fc7.device).argmax(1) == labels).float().mean()
    assert agree > 0.95
    head.gating = "centroid"
    assert (head.gate(fc7, 120, fc7.device).argmax(1) == labels).float().mean() > 0.95


def _content_slopes(n, seed):
    """Features that show what a photo shows (4 attribute strengths, its content type as a one-hot)
    and a quality whose attribute weights depend on the content type (one attribute raises quality
    for content 0 and lowers it for content 2): no single linear read of the features ranks it."""
    g = torch.Generator().manual_seed(seed)
    c = torch.randint(0, 3, (n,), generator=g)
    s = torch.randn(n, 4, generator=g)
    w = torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [-1.0, 0, 0, 0]])
    return torch.cat([s, 4.0 * torch.eye(3)[c]], 1), (w[c] * s).sum(1)


def _fit_score(head, x, y, steps=400):
    torch.manual_seed(0)
    opt = torch.optim.Adam([p for p in head.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(steps):
        idx = torch.randint(0, len(y), (64,))
        loss = ((head(x[idx], trunk=x[idx])["score"] - y[idx]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_the_content_branch_learns_a_slope_per_content_type_where_reg_cannot():
    """The content branch is not only wired (gradients reach it) but can learn what it is for: a
    per-content weighting of the attributes, gated by ContClass's k-means groups, which Reg's one
    linear layer cannot represent. (On the recovery suite's shared frozen features it showed no
    gain; the features, not the branch, were the limit: docs/recovery_history.md, "Why the branches
    miss".)"""
    x, y = _content_slopes(600, 0)
    xt, yt = _content_slopes(600, 1)
    torch.manual_seed(0)
    head = AestheticsHead(7, n_attributes=0, n_content=3, feature_size=8)
    fit_content_branch(head, x, x, None, seed=0)
    reg_only = AestheticsHead(7, n_attributes=0, n_content=0, feature_size=8)
    reg_only.active = frozenset()
    head.active = frozenset({"content"})
    for h in (head, reg_only):
        _fit_score(h, x, y)
    with torch.no_grad():
        mse = {name: float(((h(xt, trunk=xt)["score"] - yt) ** 2).mean()) for name, h in
               (("content", head), ("reg", reg_only))}
    assert mse["reg"] > 0.5 * float(yt.var())   # one slope for all content types explains little
    assert mse["content"] < 0.05 * mse["reg"]   # a slope per content type explains nearly all


def test_staged_full_model_resumes_across_stages_bit_identically(tiny_curated, tmp_path):
    cfg = load_config(BASELINES / "reg_rank_att_cont.toml", {**TINY, "optim.steps": 10})
    full = train(cfg, tiny_curated, tmp_path / "full", progress=False, cache_dir=tmp_path / "c")
    plan = [(s["name"], s["start"], s["steps"]) for s in
            __import__("json").loads((tmp_path / "full" / "run.json").read_text())["stages"]]
    assert [p[0] for p in plan] == ["reg", "reg_rank", "joint"] and sum(p[2] for p in plan) == 10
    for cut in (plan[1][1] + 1, plan[2][1]):  # inside stage 2, and right at the start of the joint stage
        run = tmp_path / f"cut{cut}"
        with pytest.raises(TrainingInterrupted):
            train(cfg, tiny_curated, run, progress=False, cache_dir=tmp_path / "c", stop_after_steps=cut)
        resumed = train(cfg, tiny_curated, run, progress=False, cache_dir=tmp_path / "c")
        assert resumed.weights_sha256 == full.weights_sha256 and resumed.val_rho == full.val_rho
    m = metrics_frame(tmp_path / "full")
    content = m[m["kind"] == "content"]
    assert len(content) == 1 and sum(content["group_sizes"].iloc[0]) == 170
    assert set(m.loc[m["kind"] == "train", "stage"]) == {"reg", "reg_rank", "joint"}
    joint = m[(m["kind"] == "train") & (m["stage"] == "joint")]
    assert joint["loss_attribute"].notna().all() and joint["loss_rank"].notna().all()
    # the kept checkpoint is the best of all validations, and run.json names its stage
    best = load_run_file(tmp_path / "full" / BEST, "aadb-model")
    summary = __import__("json").loads((tmp_path / "full" / "run.json").read_text())
    assert best["stage"] == summary["best_stage"] and best["global_step"] == summary["best_step"]


def test_content_classifier_stays_frozen_in_joint_training(tiny_curated, tmp_path):
    cfg = load_config(BASELINES / "reg_rank_att_cont.toml", {**TINY, "optim.steps": 10, "train.checkpoint_every_steps": 1})
    with pytest.raises(TrainingInterrupted):
        train(cfg, tiny_curated, tmp_path / "run", progress=False, cache_dir=tmp_path / "c", stop_after_steps=9)
    at9 = load_run_file(tmp_path / "run" / CHECKPOINT, "aadb-checkpoint")["model"]
    train(cfg, tiny_curated, tmp_path / "run", progress=False, cache_dir=tmp_path / "c")
    at10 = load_run_file(tmp_path / "run" / CHECKPOINT, "aadb-checkpoint")["model"]
    key = "head.content_classifier.weight"
    assert torch.equal(at9[key], at10[key]) and at9[key].abs().sum() > 0
    top = "head.content_top.1.weight"  # ContClass's own copy of fc6: frozen too
    assert torch.equal(at9[top], at10[top]) and not torch.equal(at9[top], at10["backbone.classifier.1.weight"])
    assert not torch.equal(at9["head.branch_weight"], at10["head.branch_weight"])


def test_content_labels_from_a_column_and_binary_attributes(tiny_curated, tmp_path):
    """The AVA-style options: integer categories in an images-table column, BCE on {0,1} attributes."""
    cur = tmp_path / "cur"
    shutil.copytree(tiny_curated, cur)
    shutil.copytree(tiny_curated.parent / "release", tmp_path / "release")
    images = pd.read_parquet(cur / "images.parquet")
    images["tag"] = np.arange(len(images)) % 3
    images.loc[images.index[:5], "tag"] = np.nan  # unlabelled images are skipped
    images["sharp"] = (images["score"] > 0.5).astype(float)
    images.to_parquet(cur / "images.parquet")
    o = {**TINY, "optim.steps": 4, "content.labels": "column:tag", "attributes.columns": ["sharp"],
         "attributes.loss": "binary"}
    cfg = load_config(BASELINES / "reg_rank_att_cont.toml", o)
    train(cfg, cur, tmp_path / "run", progress=False)
    m = metrics_frame(tmp_path / "run")
    sizes = m.loc[m["kind"] == "content", "group_sizes"].iloc[0]
    train_tags = images.loc[images["split"] == "train", "tag"]
    assert sizes == [int((train_tags == k).sum()) for k in range(3)]
    bad = load_config(BASELINES / "reg_rank_att_cont.toml", {**o, "content.clusters": 2})
    with pytest.raises(InputError, match="integer categories"):
        train(bad, cur, tmp_path / "run2", progress=False)


def test_frozen_alexnet_with_a_content_branch_predicts_from_images(tiny_curated, tmp_path):
    """Frozen mode fits ContClass (an MLP on the cached features) and trains the head on features;
    prediction runs the whole network on images, whose gate must read the same features (it was
    handed AlexNet's pool5 instead, and the first prediction crashed on the shapes)."""
    from aadb_toolkit.models import predict
    from aadb_toolkit.models.network import HeadOnFeatures
    from aadb_toolkit.models.runs import load_model

    cfg = load_config(BASELINES / "reg_rank_cont.toml", {**TINY, "optim.steps": 6, "model.mode": "frozen"})
    train(cfg, tiny_curated, tmp_path / "run", progress=False, cache_dir=tmp_path / "c")
    pred = predict(tmp_path / "run", tiny_curated, "test", progress=False)
    assert len(pred) and pred["score"].notna().all()
    net = load_model(tmp_path / "run")[0].eval()
    x = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        whole, on_features = net(x), HeadOnFeatures(net)(net.features(x))
    torch.testing.assert_close(whole["score"], on_features["score"])
    torch.testing.assert_close(whole["gate"], on_features["gate"])


def _with_attribute_column(tiny_curated, values):
    """The tiny data in memory with one extra attribute column ``att`` holding ``values`` (cycled)."""
    import dataclasses

    from aadb_toolkit import sources

    data = sources.load(tiny_curated)
    column = np.resize(np.asarray(values, float), len(data.images))
    return dataclasses.replace(data, images=data.images.assign(att=column))


def test_binary_attribute_loss_refuses_targets_outside_0_1(tiny_curated):
    """BCE is defined on targets in [0, 1]; AADB's attribute means lie in [-1, 1]. Training BCE on
    them ran silently (a loss with no minimum in the logits); it is refused naming the field and column."""
    from aadb_toolkit.models.trainer import _prepare_train

    cfg = load_config(BASELINES / "reg_att.toml", {**TINY, "attributes.loss": "binary"})
    with pytest.raises(InputError, match="attributes.loss") as exc:
        _prepare_train(cfg, _with_attribute_column(tiny_curated, [0.0]), "cpu")  # AADB's 11 columns, in [-1, 1]
    assert "'balancing_elements'" in str(exc.value) and "[0, 1]" in str(exc.value)
    one = load_config(BASELINES / "reg_att.toml", {**TINY, "attributes.loss": "binary", "attributes.columns": ["att"]})
    with pytest.raises(InputError, match=r"'att'.*-0\.5"):
        _prepare_train(one, _with_attribute_column(tiny_curated, [0.0, 1.0, -0.5]), "cpu")
    td = _prepare_train(one, _with_attribute_column(tiny_curated, [0.0, 1.0, 0.25, np.nan]), "cpu")
    assert td.attributes.shape == (170, 1) and float(np.nanmax(td.attributes.numpy())) == 1.0
    euclidean = load_config(BASELINES / "reg_att.toml", TINY)  # AADB's own loss takes them as they are
    assert _prepare_train(euclidean, _with_attribute_column(tiny_curated, [0.0]), "cpu").attributes.shape[1] == 11

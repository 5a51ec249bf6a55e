"""Backbones through transformers (issue 19): per family, a tiny random-weight model built from its
transformers config and saved with ``save_pretrained`` trains in both modes through
``aadb train --config … --init-weights DIR``, reloads and predicts; bad weights give clear errors;
and a tiny DINOv2 trains under the shipped ``dinov2_small_frozen_reg_rank`` config on a 1,000-image
synthetic release, then predicts and scores (end to end, slow)."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from aadb_toolkit.cli import main
from aadb_toolkit.models import BACKBONES, baseline_names, load_config, load_model, predict
from aadb_toolkit.models.runs import RUN_SUMMARY

pytest.importorskip("transformers")
BASELINES = Path(__file__).resolve().parents[2] / "baselines"
TINY_VIT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, image_size=32,
                patch_size=8)
#: family → (transformers config class, its tiny arguments, the shipped config prefix or None)
FAMILIES = {
    "dinov2": ("Dinov2Config", "Dinov2Model", TINY_VIT, "dinov2_small"),
    "clip_vision": ("CLIPVisionConfig", "CLIPVisionModel", TINY_VIT, "clip_vit_b16"),
    "vit": ("ViTConfig", "ViTModel", TINY_VIT, None),
    "resnet": ("ResNetConfig", "ResNetModel", dict(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1],
                                                   layer_type="basic"), "resnet50"),
}
#: a few steps on 32-px crops, one CPU thread
SMALL = ["--image-size", "32", "--steps", "3", "--no-progress", "--set", "optim.batch_size=8",
         "--set", "train.cpu_threads=1", "--set", "optim.warmup_steps=1", "--set", "pairs.n_pairs=64"]


def save_tiny(family: str, folder: Path) -> Path:
    """A tiny random-weight model of ``family`` saved with save_pretrained (config.json + safetensors)."""
    import transformers

    config_class, model_class, kwargs, _ = FAMILIES[family]
    torch.manual_seed(0)
    model = getattr(transformers, model_class)(getattr(transformers, config_class)(**kwargs))
    model.save_pretrained(folder)
    return folder


def _config(family: str, mode: str, tmp_path: Path) -> str:
    """The shipped Reg+Rank config of the family, or (ViT, which ships none) a one-file TOML that
    extends the shipped recipes: a new backbone needs no more."""
    prefix = FAMILIES[family][3]
    if prefix is not None:
        return f"{prefix}_{mode}_reg_rank"
    path = tmp_path / f"vit_{mode}.toml"
    recipes = BASELINES / "recipes"
    path.write_text(f'name = "vit_{mode}_reg_rank"\nextends = ["{recipes / mode}", "{recipes / "reg_rank"}"]\n'
                    '[model]\narch = "vit"\n[data]\nmean = [0.5, 0.5, 0.5]\nstd = [0.5, 0.5, 0.5]\n')
    return str(path)


def _train(config: str, data: Path, out: Path, weights: Path, *extra: str) -> int:
    return main(["train", "--config", config, "--data", str(data), "--out", str(out), "--init-weights", str(weights),
                 *SMALL, *extra])


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_family_trains_frozen_and_finetuned_reloads_and_predicts(family, tiny_curated, tmp_path):
    weights = save_tiny(family, tmp_path / "w")
    digest = hashlib.sha256((weights / "model.safetensors").read_bytes()).hexdigest()
    runs = {}
    for mode, extra in (("frozen", ()), ("finetune", ("--set", "model.train_blocks=1", "--set", "optim.layer_decay=0.5"))):
        out = tmp_path / mode
        assert _train(_config(family, mode, tmp_path), tiny_curated, out, weights, "--init-sha256", digest, *extra) == 0
        summary = json.loads((out / RUN_SUMMARY).read_text())
        assert summary["backbone"]["family"] == family and summary["backbone"]["weights_sha256"] == digest
        assert summary["backbone"]["architecture"]["model_type"].startswith(family.split("_")[0])
        assert summary["mode"] == mode and summary["global_step"] == 3 and summary["trained_on"] == ["aadb:train", "aadb:validation"]
        net, cfg = load_model(out)  # rebuilt from the run alone: the weights folder is not needed
        assert cfg.model.arch == family and net.feature_size == net.backbone.feature_size
        preds = predict(out, tiny_curated, "test", device="cpu")
        assert len(preds) > 0 and np.isfinite(preds["score"]).all() and preds["score"].nunique() > 1
        runs[mode] = net.state_dict()  # a frozen run's backbone comes from its backbone.pt
    import transformers

    init = getattr(transformers, FAMILIES[family][1]).from_pretrained(weights).state_dict()
    blocks = [k for k in runs["frozen"] if k.startswith("backbone.model.")]
    assert blocks
    for k in blocks:  # frozen: the backbone is exactly the pretrained one
        assert torch.equal(runs["frozen"][k], init[k.removeprefix("backbone.model.")])
    changed = {k for k in blocks if not torch.equal(runs["finetune"][k], init[k.removeprefix("backbone.model.")])}
    assert changed and len(changed) < len(blocks)  # fine-tuned: the last block moved, the stem did not
    assert list((tmp_path / "frozen" / "cache").glob("features-*.npy"))  # the embeddings were cached


@pytest.mark.parametrize("mode", ["frozen", "finetune"])
def test_attribute_and_content_branches_train_on_a_transformers_backbone(mode, tiny_curated, tmp_path):
    """Every loss and branch works on any backbone's features: Reg+Rank+Att+Cont on a tiny DINOv2
    (ContClass is an MLP on the features: these backbones have no separate top layers to copy)."""
    weights = save_tiny("dinov2", tmp_path / "w")
    recipes = BASELINES / "recipes"
    config = tmp_path / "full.toml"
    config.write_text(f'name = "dinov2_full_{mode}"\nextends = ["{recipes / "dinov2_small"}", "{recipes / mode}", '
                      f'"{recipes / "reg_rank"}"]\n[attributes]\n[content]\nclusters = 2\nfinetune_epochs = 1\n'
                      '[loss.weights]\nregression = 1.0\nrank = 1.0\nattribute = 0.1\n')
    assert _train(str(config), tiny_curated, tmp_path / "run", weights) == 0
    net, cfg = load_model(tmp_path / "run")
    assert net.head.n_content == 2 and bool(net.head.content_fitted) and net.head.attribute is not None
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any(r.get("kind") == "content" for r in records)
    assert any("loss_attribute" in r and "loss_rank" in r for r in records if r.get("kind") == "train")
    assert np.isfinite(predict(tmp_path / "run", tiny_curated, "test", device="cpu")["score"]).all()


def test_bad_weights_give_clear_errors(tiny_curated, tmp_path, capsys):
    weights = save_tiny("vit", tmp_path / "vit")
    config = _config("dinov2", "frozen", tmp_path)
    (tmp_path / "empty").mkdir()
    cases = [(tmp_path / "nowhere", "no such weights folder"),
             (tmp_path / "empty", "has no config.json"),
             (weights, "family mismatch: the folder holds a 'vit' model")]
    for folder, message in cases:
        assert _train(config, tiny_curated, tmp_path / "run", folder) == 1
        assert message in capsys.readouterr().err
    good = save_tiny("dinov2", tmp_path / "d")
    assert _train(config, tiny_curated, tmp_path / "run", good, "--init-sha256", "ab" * 32) == 1
    assert "sha256 mismatch" in capsys.readouterr().err
    assert main(["train", "--config", config, "--data", str(tiny_curated), "--out", str(tmp_path / "r2"), *SMALL]) == 1
    assert "pass --init-weights DIR" in capsys.readouterr().err


def test_every_transformers_baseline_names_a_known_family_weights_and_mode():
    names = [n for n in baseline_names() if load_config(n).model.arch != "alexnet"]
    for prefix in ("dinov2_small", "dinov2_base", "clip_vit_b16", "clip_vit_l14", "resnet50"):
        for mode in ("frozen", "finetune"):
            assert {f"{prefix}_{mode}_reg", f"{prefix}_{mode}_reg_rank"} <= set(names)
    for name in names:
        cfg = load_config(name)
        fam = BACKBONES[cfg.model.arch]
        assert cfg.model.mode in name and cfg.model.weights and fam.weights_kind == "folder"
        assert (cfg.data.mean, cfg.data.std) == (fam.input.mean, fam.input.std)
        assert cfg.optim.optimizer == "adamw" and cfg.optim.schedule == "cosine"
        if name.endswith("reg_rank"):
            assert cfg.pairs.strategy == "within_cross" and cfg.loss.weights["rank"] > 0


@pytest.mark.slow
def test_tiny_dinov2_under_the_shipped_frozen_reg_rank_config_end_to_end(tmp_path, monkeypatch):
    """Our check: simulate a 1,000-image release, curate it, train a tiny DINOv2 under
    dinov2_small_frozen_reg_rank, predict the test split, score it; run.json records the weights hash."""
    monkeypatch.setenv("AADB_RATER_KEY_FILE", str(tmp_path / "key"))
    assert main(["simulate", "--out", str(tmp_path / "release"), "--images", "1000", "--image-size", "64x48"]) == 0
    assert main(["curate", "--release", str(tmp_path / "release"), "--out", str(tmp_path / "cur"),
                 "--workers", "1", "--no-progress"]) == 0
    weights = save_tiny("dinov2", tmp_path / "dinov2")
    digest = hashlib.sha256((weights / "model.safetensors").read_bytes()).hexdigest()
    assert main(["train", "--config", "dinov2_small_frozen_reg_rank", "--data", str(tmp_path / "cur"),
                 "--out", str(tmp_path / "run"), "--init-weights", str(weights), "--init-sha256", digest,
                 "--image-size", "32", "--no-progress", "--set", "pairs.n_pairs=4000", "--set", "optim.batch_size=64",
                 "--set", "train.cpu_threads=1", "--set", "optim.warmup_steps=5"]) == 0
    summary = json.loads((tmp_path / "run" / RUN_SUMMARY).read_text())
    assert summary["backbone"]["weights_sha256"] == digest and summary["backbone"]["family"] == "dinov2"
    assert summary["stopped"] == "completed" and summary["n_pairs"] == 4000
    assert main(["predict", "--run", str(tmp_path / "run"), "--data", str(tmp_path / "cur"),
                 "--out", str(tmp_path / "preds.csv")]) == 0
    sidecar = json.loads(Path(str(tmp_path / "preds.csv") + ".model.json").read_text())
    assert sidecar["backbone"]["weights_sha256"] == digest and sidecar["trained_on"] == ["aadb:train", "aadb:validation"]
    assert main(["score", "--submission", str(tmp_path / "preds.csv"), "--protocol", "aadb",
                 "--data", str(tmp_path / "cur"), "--out", str(tmp_path / "result.json"), "--n-boot", "50"]) == 0
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["model"]["backbone"]["weights_sha256"] == digest
    assert result["model"]["contamination"] == []


def test_the_recorded_sha256_covers_the_weights_transformers_loads(tmp_path):
    """Review 2026-12-04: a folder with sharded safetensors and a pytorch_model.bin had the .bin
    hashed (and checked against --init-sha256) while transformers loaded the shards."""
    import transformers

    from aadb_toolkit.models.archs import family
    from aadb_toolkit.models.archs._hf import files_sha256

    folder = tmp_path / "dinov2"
    torch.manual_seed(0)
    shards = transformers.Dinov2Model(transformers.Dinov2Config(**TINY_VIT))
    shards.save_pretrained(folder, max_shard_size="20KB")
    torch.manual_seed(1)
    other = transformers.Dinov2Model(transformers.Dinov2Config(**TINY_VIT))
    torch.save(other.state_dict(), folder / "pytorch_model.bin")
    fam = family("dinov2")
    backbone = fam.build(load_config("dinov2_small_frozen_reg").model, fam.read_architecture(str(folder)))
    digest = fam.load_weights(backbone, str(folder), None)
    assert torch.equal(backbone.model.embeddings.cls_token, shards.embeddings.cls_token)
    assert digest == files_sha256(sorted(folder.glob("model-*-of-*.safetensors")))


@pytest.mark.parametrize("content, message", [
    (b'{"model_type": "dinov2", "hidden_size": 32\xff}', "cannot read config.json"),  # not UTF-8
    (b'{"model_type": "dinov2",', "cannot read config.json"),  # cut short: not JSON
    (b'["dinov2"]', "family mismatch"),  # JSON, but not an object
    (b"[" * 100_000 + b"]" * 100_000, "cannot read config.json"),  # nested too deep: raised RecursionError
])
def test_a_backbone_config_json_that_is_not_utf8_or_json_is_a_clear_error(tmp_path, content, message):
    from aadb_toolkit.errors import InputError
    from aadb_toolkit.models.archs import family

    folder = save_tiny("dinov2", tmp_path / "w")
    (folder / "config.json").write_bytes(content)
    with pytest.raises(InputError, match=message) as exc:
        family("dinov2").read_architecture(str(folder))
    assert exc.value.file == str(folder / "config.json")


def test_a_clip_config_whose_vision_config_is_not_an_object_is_a_clear_error(tmp_path):
    """A whole-CLIP config.json (model_type "clip") is read through its vision_config; one that is
    not a JSON object raised AttributeError ('int' object has no attribute 'items')."""
    from aadb_toolkit.errors import InputError
    from aadb_toolkit.models.archs import family

    folder = save_tiny("clip_vision", tmp_path / "w")
    (folder / "config.json").write_text(json.dumps({"model_type": "clip", "vision_config": 5}))
    with pytest.raises(InputError, match="vision_config") as exc:
        family("clip_vision").read_architecture(str(folder))
    assert exc.value.file == str(folder / "config.json")


def test_a_weights_file_transformers_cannot_unpickle_is_not_echoed(tiny_curated, tmp_path, capsys, monkeypatch):
    """Review 2026-12-04 (afternoon): torch's unpickling error, which transformers passes on, quotes
    the file's text ("Unsupported global: GLOBAL orrect-horse-battery-…"); it was echoed in full. A
    copy of the rater key as the weights file is refused as the key, unread."""
    key = tmp_path / "keys" / "rater.key"
    key.parent.mkdir()
    key.write_text("correct-horse-battery-staple-secret\n")
    monkeypatch.setenv("AADB_RATER_KEY_FILE", str(key))
    config = _config("dinov2", "frozen", tmp_path)
    for text, message in (("correct-horse-battery-staple-secret\n", "rater key"),
                          ("another-secret-phrase-of-someone\n", "cannot load the weights")):
        folder = save_tiny("dinov2", tmp_path / f"d{len(text)}")
        (folder / "model.safetensors").unlink()
        (folder / "pytorch_model.bin").write_text(text)
        assert _train(config, tiny_curated, tmp_path / f"run{len(text)}", folder) == 1
        err = capsys.readouterr().err
        assert message in err and "secret" not in err and "weights_only=False" not in err, err

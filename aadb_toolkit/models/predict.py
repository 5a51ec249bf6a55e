"""Predictions of a trained run: one score per image of a split (centre crop), the attribute
predictions of a model with an attribute branch, and backbone features (AlexNet: fc7) for other
models to build on (e.g. a personalizer). Prediction files are written by
:func:`aadb_toolkit.submissions.write_predictions`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from ..data import sha256_fingerprint
from ..errors import InputError
from ..sources import AADBData, load
from . import pipeline
from .ensemble import member_dirs
from .devices import bf16_autocast, pick_device
from .heads import attribute_columns
from .inference import attribute_predictions, feature_rows, score_images, scores_and_features
from .runs import load_model


def _sampler(data: AADBData, ids: list[str], cfg, device: str, cache_dir, progress, desc: str) -> pipeline.CropSampler:
    arr = pipeline.load_or_build_cache(data, ids, cfg.data.warp_size, cache_dir=Path(cache_dir) if cache_dir else None,
                                       workers=cfg.data.decode_workers, progress=progress, desc=desc)
    return pipeline.CropSampler(pipeline.pixels_to(arr, device), cfg.data.crop_size, cfg.data.mean, cfg.data.std)


def predict(run: str | Path, data: str | Path | AADBData, split: str = "test", *, device: str | None = None,
            which: str = "best", batch_size: int = 256, cache_dir: str | Path | None = None,
            progress: bool | None = None) -> pd.DataFrame:
    """Score every image of ``split`` with the run's best (or ``which="last"``) weights.

    Returns a frame with columns ``image_id`` and ``score`` (the model's rating: predicted [0, 1]
    score for regression heads, P(high) for AlexNet FT Conf), in the split's row order. An
    ensemble run folder averages its members' scores.
    """
    device = pick_device(device)
    data = data if isinstance(data, AADBData) else load(data)
    members = member_dirs(run)
    if members is not None:
        frames = [predict(m, data, split, device=device, which=which, batch_size=batch_size, cache_dir=cache_dir,
                          progress=progress) for m in members]
        return pd.DataFrame({"image_id": frames[0]["image_id"],
                             "score": np.mean([f["score"].to_numpy() for f in frames], axis=0)})
    net, cfg = load_model(run, which=which, device=device)
    ids = list(data.split(split)["image_id"])
    if not ids:
        return pd.DataFrame({"image_id": pd.Series([], dtype=object), "score": pd.Series([], dtype=float)})
    sampler = _sampler(data, ids, cfg, device, cache_dir, progress, f"decode {split}")
    scores = score_images(net, sampler, device, batch_size=batch_size, amp=bf16_autocast(cfg.train.amp, device))
    if not np.isfinite(scores).all():
        raise InputError(f"{int((~np.isfinite(scores)).sum())} of {len(scores)} predictions are not finite (NaN/inf): "
                         "the run's weights are broken (diverged training?); nothing was written", file=str(run))
    return pd.DataFrame({"image_id": ids, "score": scores})


def features(run: str | Path, data: str | Path | AADBData, split: str | None = "test", *,
             image_ids: Sequence[str] | None = None, device: str | None = None, which: str = "best",
             batch_size: int = 256, cache_dir: str | Path | None = None,
             progress: bool | None = None) -> tuple[list[str], np.ndarray]:
    """Backbone features (AlexNet: fc7; centre crop, eval mode) of a single trained run for the images of ``split``
    (or exactly ``image_ids``): returns ``(ids, array (N, D) float32)`` in that order. This is the
    documented way for other models (the personalized protocol's reference) to build on a run."""
    data = data if isinstance(data, AADBData) else load(data)
    ids = list(image_ids) if image_ids is not None else list(data.split(split)["image_id"])
    net, sampler, device, amp = _single_run(run, data, ids, device, which, cache_dir, progress, "decode features")
    if not ids:
        return [], np.zeros((0, net.feature_size), np.float32)
    return ids, feature_rows(net, sampler, device, batch_size=batch_size, amp=amp)


def _single_run(run, data: AADBData, ids: list[str], device: str | None, which: str, cache_dir, progress,
                desc: str) -> tuple[torch.nn.Module, pipeline.CropSampler | None, str, bool]:
    """A single run's network, the centre-crop sampler of ``ids`` (None when empty), the device and
    whether bf16 autocast applies; an ensemble folder is refused (it has no single feature extractor)."""
    device = pick_device(device)
    if member_dirs(run) is not None:
        raise InputError("an ensemble has no single feature extractor; pass one of its members (members/K)", file=str(run))
    net, cfg = load_model(run, which=which, device=device)
    sampler = _sampler(data, ids, cfg, device, cache_dir, progress, desc) if ids else None
    return net, sampler, device, bf16_autocast(cfg.train.amp, device)


def _refuse_untrained_attributes(run: str | Path, cfg, which: str) -> None:
    """Refuse the best weights when the stage they were kept at came before any stage that trained the
    attribute branch (a staged recipe whose earlier stage validated best): its attribute layer then
    holds its initial weights, and its predictions would be noise passed off as the branch's."""
    from .config import trains_attributes
    from .runs import RUN_SUMMARY, read_run_json

    kept = (read_run_json(Path(run), RUN_SUMMARY) or {}).get("best_stage") if which == "best" else None
    if kept is None or not cfg.stages:
        return
    for st in cfg.stages:
        if trains_attributes(st, cfg):
            return
        if st.name == kept:
            raise InputError(f"the best weights were kept at stage {kept!r}, which never trained the attribute "
                             "branch (no stage up to it did): its attribute predictions would be untrained; "
                             "predict with the last weights (--weights last) instead", file=str(run))


def predict_attributes(run: str | Path, data: str | Path | AADBData, split: str = "test", *,
                       device: str | None = None, which: str = "best", batch_size: int = 256,
                       cache_dir: str | Path | None = None, progress: bool | None = None) -> pd.DataFrame:
    """The attribute branch's predictions (Fig. 3b, §4.3) for every image of ``split``: one row per
    (image, attribute), columns ``image_id,attribute,score`` (the ``attributes`` protocol's layout),
    image by image in the split's order and attributes in the config's order. A run without an
    attribute branch is refused; an ensemble averages its members."""
    data = data if isinstance(data, AADBData) else load(data)
    members = member_dirs(run)
    if members is not None:
        frames = [predict_attributes(m, data, split, device=device, which=which, batch_size=batch_size,
                                     cache_dir=cache_dir, progress=progress) for m in members]
        return frames[0].assign(score=np.mean([f["score"].to_numpy() for f in frames], axis=0))
    device = pick_device(device)
    net, cfg = load_model(run, which=which, device=device)
    if cfg.attributes is None:
        raise InputError("the run has no attribute branch (its config has no [attributes]); it predicts no "
                         "attributes", file=str(run))
    _refuse_untrained_attributes(run, cfg, which)
    names = list(attribute_columns(cfg.attributes.columns))
    ids = list(data.split(split)["image_id"])
    values = np.zeros((0, len(names)))
    if ids:
        sampler = _sampler(data, ids, cfg, device, cache_dir, progress, f"decode {split}")
        values = attribute_predictions(net, sampler, device, batch_size=batch_size,
                                       amp=bf16_autocast(cfg.train.amp, device))
    if not np.isfinite(values).all():
        raise InputError("the run's attribute predictions are not finite (NaN/inf): its weights are broken",
                         file=str(run))
    return pd.DataFrame({"image_id": np.repeat(np.asarray(ids, dtype=object), len(names)),
                         "attribute": np.tile(np.asarray(names, dtype=object), len(ids)),
                         "score": values.reshape(-1)})


def predictor(run: str | Path, *, what: str = "scores", device: str | None = None, progress: bool | None = None):
    """A function ``(data, split) -> DataFrame`` predicting with ``run``: its ``scores``
    (:func:`predict`) or its ``attributes`` (:func:`predict_attributes`), for in-memory scoring."""
    fn = {"scores": predict, "attributes": predict_attributes}.get(what)
    if fn is None:
        raise ValueError(f"unknown prediction kind {what!r}; expected scores or attributes")
    return lambda data, split: fn(run, data, split, device=device, progress=progress)


def predict_features(run: str | Path, data: str | Path | AADBData, image_ids: list[str], *,
                     device: str | None = None, which: str = "best", batch_size: int = 256,
                     cache_dir: str | Path | None = None, progress: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The run's score and its frozen backbone features for each of ``image_ids`` (centre crop), from
    one decode: ``(scores (n,), features (n, d))`` as float64/float32 (a personalizer's inputs)."""
    data = data if isinstance(data, AADBData) else load(data)
    ids = list(image_ids)
    net, sampler, device, amp = _single_run(run, data, ids, device, which, cache_dir, progress, "decode episodes")
    if sampler is None:
        return np.zeros(0), np.zeros((0, net.feature_size), np.float32)
    scores, features = scores_and_features(net, sampler, device, batch_size=batch_size, amp=amp)
    if not (np.isfinite(scores).all() and np.isfinite(features).all()):
        raise InputError("the run's predictions or features are not finite (NaN/inf): the run's "
                         "weights are broken (diverged training?)", file=str(run))
    return scores, features

def model_identity(run: str | Path, *, which: str = "best", split: str = "test") -> dict:
    """Who made a set of predictions: the config's name and sha256 (of its canonical JSON), a run
    id (the first 16 hex digits of the sha256 of the weights used; for an ensemble, of its members'
    weight hashes in order), the backbone (family, pretrained weights id and sha256, pretraining
    data where known) and ``trained_on`` (``dataset:split`` entries, for contamination checks)."""
    from .ensemble import ENSEMBLE_FILE
    from .runs import BEST, CHECKPOINT, CONFIG_FILE, RUN_SUMMARY, read_run_json

    run = Path(run)
    members = member_dirs(run)
    config_file = run / (ENSEMBLE_FILE if members is not None else CONFIG_FILE)
    cfg = _recorded_config(config_file, ensemble=members is not None)
    if members is None:
        weights_sha = _weights_sha256(run / (BEST if which == "best" else CHECKPOINT))
    else:
        weights_sha = sha256_fingerprint(model_identity(m, which=which)["weights_sha256"] for m in members)
    weights_sha = weights_sha.split(":", 1)[1]  # the sidecar's fields are bare hex (results.SIDECAR_FIELDS)
    summary = read_run_json(members[0] if members else run, RUN_SUMMARY) or {}
    canonical = json.dumps(cfg.to_dict(), sort_keys=True, separators=(",", ":"))
    ident = {"name": cfg.name, "config_sha256": sha256_fingerprint(canonical).split(":", 1)[1],
             "run_id": weights_sha[:16], "weights": which, "weights_sha256": weights_sha,
             "paper_table": cfg.paper_table or None, "paper_row": cfg.paper_row or None, "split": split,
             "backbone": _backbone_identity(summary.get("backbone"), cfg.model.arch),
             "trained_on": summary.get("trained_on", [])}
    return {**ident, "members": len(members)} if members is not None else ident


def _recorded_config(path: Path, *, ensemble: bool):
    """The config a run folder records: its ``config.json``, or an ensemble's ``ensemble.json``
    ``config`` entry. A file that cannot be read, is not UTF-8 or JSON, or holds no JSON object
    there is an InputError naming it (the predictions' sidecar is written from it: no traceback)."""
    from .config import config_from_dict

    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InputError(f"cannot read the run's config: {exc}", file=str(path)) from exc
    raw = raw.get("config") if ensemble and isinstance(raw, dict) else raw
    if not isinstance(raw, dict):
        raise InputError("cannot read the run's config: it is not a JSON object", file=str(path),
                         field="config" if ensemble else None)
    return config_from_dict(raw, source=str(path))


def _backbone_identity(info: dict | None, arch: str) -> dict:
    """The backbone part of a model identity: family, weights id and sha256, pretraining data
    (from run.json; the architecture itself is left out of results). A record that is not an
    object (a damaged run.json) adds nothing: the config's family alone is named."""
    info = info if isinstance(info, dict) else {}
    return {"family": info.get("family") or arch, "weights_id": info.get("weights_id"),
            "weights_sha256": info.get("weights_sha256"), "pretraining_data": info.get("pretraining_data")}


def _weights_sha256(path: Path) -> str:
    """``sha256:<hex>`` of a run's weights file; one that cannot be read is an InputError naming it."""
    try:
        return sha256_fingerprint(_file_chunks(path))
    except OSError as exc:
        raise InputError(f"cannot read the run's weights: {exc.strerror or exc}", file=str(path)) from exc


def _file_chunks(path: Path):
    """The bytes of ``path`` in 1 MiB blocks (for hashing large weight files)."""
    with open(path, "rb") as f:
        yield from iter(lambda: f.read(1 << 20), b"")

"""Predictions of a trained run: one score per image of a split (centre crop), and the submission
file of docs/protocols.md (``image_id,score``, one row per image of the split), written atomically."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .._atomic import write_json, write_text
from ..data import sha256_fingerprint
from ..errors import InputError
from ..sources import AADBData, load
from . import pipeline
from .trainer import bf16_autocast, load_model, pick_device, score_images


def predict(run: str | Path, data: str | Path | AADBData, split: str = "test", *, device: str | None = None,
            which: str = "best", batch_size: int = 256, cache_dir: str | Path | None = None,
            progress: bool | None = None) -> pd.DataFrame:
    """Score every image of ``split`` with the run's best (or ``which="last"``) weights.

    Returns a frame with columns ``image_id`` and ``score`` (the model's rating: predicted [0, 1]
    score for regression heads, P(high) for AlexNet FT Conf), in the split's row order.
    """
    device = pick_device(device)
    data = data if isinstance(data, AADBData) else load(data)
    net, cfg = load_model(run, which=which, device=device)
    images = data.split(split)
    ids = list(images["image_id"])
    if not ids:
        return pd.DataFrame({"image_id": pd.Series([], dtype=object), "score": pd.Series([], dtype=float)})
    arr = pipeline.load_or_build_cache(data, ids, cfg.data.warp_size, cache_dir=Path(cache_dir) if cache_dir else None,
                                       workers=cfg.data.decode_workers, progress=progress, desc=f"decode {split}")
    sampler = pipeline.CropSampler(torch.from_numpy(arr).to(device), cfg.data.crop_size, cfg.data.mean, cfg.data.std)
    amp = bf16_autocast(cfg.train.amp, device)
    scores = score_images(net, sampler, device, batch_size=batch_size, amp=amp)
    if not np.isfinite(scores).all():
        raise InputError(f"{int((~np.isfinite(scores)).sum())} of {len(scores)} predictions are not finite (NaN/inf): "
                         "the run's weights are broken (diverged training?); nothing was written", file=str(run))
    return pd.DataFrame({"image_id": ids, "score": scores})


def write_predictions(predictions: pd.DataFrame, path: str | Path, *, model: dict | None = None) -> Path:
    """Write ``image_id,score`` rows as a submission CSV (docs/protocols.md), atomically; with
    ``model`` (see :func:`model_identity`) also the sidecar ``<path>.model.json`` that `aadb score`
    copies into the result, tied to these exact bytes."""
    path = Path(path)
    frame = predictions[["image_id", "score"]]
    text = frame.to_csv(index=False, lineterminator="\n")  # shortest round-trip floats
    write_text(path, text)
    if model is not None:
        from ..protocols.results import MODEL_SIDECAR_SUFFIX

        sidecar = {**model, "predictions_sha256": sha256_fingerprint(text)}
        write_json(Path(str(path) + MODEL_SIDECAR_SUFFIX), sidecar)
    return path


def predict_features(run: str | Path, data: str | Path | AADBData, image_ids: list[str], *,
                     device: str | None = None, which: str = "best", batch_size: int = 256,
                     cache_dir: str | Path | None = None, progress: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The run's score and its frozen fc7 features (the input of the rating head, ``classifier[6]``)
    for each of ``image_ids`` (centre crop): ``(scores (n,), features (n, d))`` as float64/float32.
    A forward hook on the head reads its input, so this works for any head the trunk feeds."""
    device = pick_device(device)
    data = data if isinstance(data, AADBData) else load(data)
    net, cfg = load_model(run, which=which, device=device)
    head = net.classifier[6]
    arr = pipeline.load_or_build_cache(data, list(image_ids), cfg.data.warp_size,
                                       cache_dir=Path(cache_dir) if cache_dir else None,
                                       workers=cfg.data.decode_workers, progress=progress, desc="decode episodes")
    sampler = pipeline.CropSampler(torch.from_numpy(arr).to(device), cfg.data.crop_size, cfg.data.mean, cfg.data.std)
    amp = bf16_autocast(cfg.train.amp, device)
    captured: list[torch.Tensor] = []
    hook = head.register_forward_hook(lambda _m, inputs, _out: captured.append(inputs[0].detach().float().cpu()))
    try:
        scores = score_images(net, sampler, device, batch_size=batch_size, amp=amp)
    finally:
        hook.remove()
    features = torch.cat(captured).numpy() if captured else np.zeros((0, 0), np.float32)
    if features.shape[0] != len(scores) or not (np.isfinite(scores).all() and np.isfinite(features).all()):
        raise InputError("the run's predictions or fc7 features are not finite (NaN/inf) or incomplete: the run's "
                         "weights are broken (diverged training?)", file=str(run))
    return scores, features

def model_identity(run: str | Path, *, which: str = "best", split: str = "test") -> dict:
    """Who made a set of predictions: the config's name and sha256 (of its canonical JSON), and a
    run id (the first 16 hex digits of the sha256 of the weights file used)."""
    from .config import config_from_dict
    from .trainer import BEST, CHECKPOINT, CONFIG_FILE

    run = Path(run)
    config_file = run / CONFIG_FILE
    try:
        cfg = config_from_dict(json.loads(config_file.read_text(encoding="utf-8")), source=str(config_file))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read the run's config: {exc}", file=str(config_file)) from exc
    canonical = json.dumps(cfg.to_dict(), sort_keys=True, separators=(",", ":"))
    weights = run / (BEST if which == "best" else CHECKPOINT)
    h = hashlib.sha256()
    with open(weights, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return {"name": cfg.name, "config_sha256": hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
            "run_id": h.hexdigest()[:16], "weights": which, "weights_sha256": h.hexdigest(),
            "paper_table": cfg.paper_table or None, "paper_row": cfg.paper_row or None, "split": split}

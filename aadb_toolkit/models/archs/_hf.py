"""The machinery the Hugging Face ``transformers`` families share: reading a ``save_pretrained``
folder (its ``config.json`` gives the architecture; its weights are read by transformers' loader), checking the
family and the weights' sha256, building the model from a stored architecture (so a run reloads
without the original folder), and the feature extractor module.

Why transformers: it runs on the CPU build of torch and does not import torchvision (timm and
open_clip do, and the only torchvision wheels our machines reach are CUDA builds that fail to
import against CPU torch). It is imported only when such a backbone is used (it is slow to import).
Nothing is downloaded unless ``--init-weights`` is a Hub id and the machine is online.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn

from ..._keyguard import refuse_key_file
from ...errors import InputError, quote
from ._base import Family, InputSpec, check_sha256, register, weights_error

log = logging.getLogger(__name__)

#: weight files of a save_pretrained folder, in the order they are looked for
WEIGHT_FILES: tuple[str, ...] = ("model.safetensors", "pytorch_model.bin")
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


@dataclass(frozen=True)
class HFSpec:
    """How one transformers family becomes a feature extractor.

    ``model_types``: the ``config.json`` model_type values accepted (``sub_config`` names the part
    of a larger config to take, e.g. CLIP's ``vision_config``); ``config_class``/``model_class``:
    transformers class names (the model class's loader reads the weights, including those of a
    larger model: a classifier, CLIP's two towers); ``pool``: model outputs → (N, D) features;
    ``groups``: model → (stem, blocks, post) modules; ``model_kwargs``: constructor options.
    """

    model_types: tuple[str, ...]
    config_class: str
    model_class: str
    pool: Callable[[Any], torch.Tensor]
    groups: Callable[[nn.Module], tuple[nn.Module, list[nn.Module], nn.Module]]
    feature_size: Callable[[Any], int]
    interpolate: bool = False
    sub_config: str | None = None
    model_kwargs: Mapping[str, Any] = None  # type: ignore[assignment]


class HFBackbone(nn.Module):
    """A transformers vision model as a feature extractor: ``forward(x) -> (N, feature_size)``."""

    def __init__(self, spec: HFSpec, architecture: Mapping[str, Any]) -> None:
        super().__init__()
        import transformers

        config = getattr(transformers, spec.config_class).from_dict(dict(architecture))
        self.model = getattr(transformers, spec.model_class)(config, **dict(spec.model_kwargs or {}))
        self.spec = spec
        self.feature_size = int(spec.feature_size(config))
        self._image_size = getattr(config, "image_size", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features (N, D) of normalised images (N, 3, H, W)."""
        kw = {}
        if self.spec.interpolate and self._image_size is not None and tuple(x.shape[-2:]) != (self._image_size,) * 2:
            kw["interpolate_pos_encoding"] = True
        return self.spec.pool(self.model(pixel_values=x, **kw))

    def layer_groups(self) -> list[nn.Module]:
        """Stem, each block, then the final norm (possibly empty), from input to output."""
        stem, blocks, post = self.spec.groups(self.model)
        return [stem, *blocks, post]

    def architecture(self) -> dict[str, Any]:
        """The model's transformers config as a dict (enough to rebuild it)."""
        return self.model.config.to_dict()


def blocks(model: nn.Module) -> list[nn.Module]:
    """A transformer's blocks, wherever this transformers version keeps them (``encoder.layer``,
    ``encoder.layers``, or ``layers`` directly on the model, as ViT does in transformers 5)."""
    for owner in (getattr(model, "encoder", None), model):
        for name in ("layer", "layers"):
            found = getattr(owner, name, None) if owner is not None else None
            if isinstance(found, nn.ModuleList):
                return list(found)
    raise TypeError(f"cannot find the blocks of {type(model).__name__}")


def local_folder(source: str) -> Path:
    """The save_pretrained folder of ``source``: a local folder, or (online only) a Hub id fetched
    into the Hub cache. A missing folder or a fetch failure is an InputError."""
    path = Path(source)
    if path.is_dir():
        return path
    if path.exists():
        raise InputError("expected a folder in the save_pretrained layout (config.json and model.safetensors), "
                         "got a file", file=str(source), field="--init-weights")
    if not _HUB_ID.fullmatch(str(source)) or os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", ""):
        raise InputError("no such weights folder (a save_pretrained folder, or a Hub id when online)",
                         file=str(source), field="--init-weights")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id=str(source), allow_patterns=[
            "config.json", "preprocessor_config.json", "model.safetensors", "pytorch_model.bin"]))
    except Exception as exc:  # the hub client raises many types (network, auth, missing repo)
        raise InputError(f"cannot fetch {source} from the Hub: {exc}", file=str(source), field="--init-weights") from exc


def read_config(family: str, spec: HFSpec, source: str) -> dict[str, Any]:
    """The architecture in ``<folder>/config.json``, checked to belong to ``family``."""
    folder = local_folder(source)
    path = folder / "config.json"
    raw = _read_json(path, folder)
    kind = raw.get("model_type") if isinstance(raw, dict) else None
    if kind not in spec.model_types:
        shown = quote(kind) if kind is not None else None
        raise InputError(f"family mismatch: the folder holds a {shown} model (config.json model_type) but the "
                         f"config's model.arch is {family!r}, which reads {', '.join(map(repr, spec.model_types))}",
                         file=str(path), field="model_type")
    if spec.sub_config and spec.sub_config in raw:
        raw = raw[spec.sub_config]
        if not isinstance(raw, dict):  # the part of a larger model's config that this family reads
            raise InputError("is not a JSON object", file=str(path), field=spec.sub_config)
    return {k: v for k, v in raw.items() if k not in ("architectures", "_name_or_path", "transformers_version")}


def _read_json(path: Path, folder: Path) -> Any:
    """The JSON in ``path``; a missing, unreadable, non-UTF-8 or non-JSON file is an InputError
    naming it (a deeply nested one too: the parser's RecursionError), never a traceback."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("not a save_pretrained folder: it has no config.json", file=str(folder),
                         field="--init-weights") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InputError(f"cannot read config.json: {exc}", file=str(path)) from exc


def weight_files(folder: Path) -> list[Path]:
    """The weights of a folder, in the order transformers prefers them (so the sha256 covers what it
    loads: :func:`load_weights` pins the format): ``model.safetensors``, else its shards, else
    ``pytorch_model.bin``."""
    if (folder / WEIGHT_FILES[0]).is_file():
        return [folder / WEIGHT_FILES[0]]
    shards = sorted(folder.glob("model-*-of-*.safetensors"))
    if shards:
        return shards
    if (folder / WEIGHT_FILES[1]).is_file():
        return [folder / WEIGHT_FILES[1]]
    raise InputError(f"the folder has no weights file ({', '.join(WEIGHT_FILES)})", file=str(folder),
                     field="--init-weights")


def files_sha256(files: list[Path]) -> str:
    """sha256 over the files' bytes in order (for one file: that file's sha256)."""
    h = hashlib.sha256()
    for f in files:
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def load_weights(family: str, backbone: HFBackbone, source: str, sha256: str | None) -> str:
    """Copy the folder's weights into ``backbone`` through transformers' own loader (which knows
    each family's checkpoint key names; extra tensors such as a classifier or CLIP's text tower are
    ignored). A tensor the backbone needs but the folder lacks is an InputError. Returns the sha256."""
    import transformers

    folder = local_folder(source)
    files = weight_files(folder)
    for f in files:
        refuse_key_file(f, field="--init-weights")
    digest = files_sha256(files)
    check_sha256(digest, sha256, str(files[0]))
    model_class = getattr(transformers, backbone.spec.model_class)
    try:
        loaded, info = model_class.from_pretrained(str(folder), config=backbone.model.config, local_files_only=True,
                                                   output_loading_info=True, use_safetensors=files[0].suffix == ".safetensors",
                                                   **dict(backbone.spec.model_kwargs or {}))
    except Exception as exc:  # transformers raises many types for unreadable or mismatched weights
        raise InputError(f"cannot load the weights as a {family} model: {weights_error(exc)}", file=str(files[0])) from exc
    missing = list(info.get("missing_keys") or []) + list(info.get("mismatched_keys") or [])
    if missing:
        raise InputError(f"the weights lack {len(missing)} of the {family} model's tensors (e.g. {missing[:3]}); "
                         f"is this a {family} checkpoint?", file=str(files[0]))
    backbone.model.load_state_dict(loaded.state_dict())
    if info.get("unexpected_keys"):
        log.info("ignored %d tensors of %s that the %s backbone does not use", len(info["unexpected_keys"]),
                 folder, family)
    return digest


def hf_family(*, name: str, description: str, spec: HFSpec, input: InputSpec, where: str,
              pretraining: Mapping[str, str], default_pretraining: str | None = None) -> Family:
    """Declare and register a transformers family from its :class:`HFSpec`."""
    def build(model_section, architecture):
        if architecture is None:
            raise InputError(f"the {name} family reads its architecture from the weights folder's config.json: "
                             "pass --init-weights DIR (a save_pretrained folder, see docs/models.md)",
                             field="--init-weights")
        return HFBackbone(spec, architecture)

    return register(Family(
        name=name, description=description, input=input, build=build,
        read_architecture=lambda source: read_config(name, spec, source),
        load_weights=lambda backbone, source, sha256: load_weights(name, backbone, source, sha256),
        weights_kind="folder", where=where, pretraining=dict(pretraining), default_pretraining=default_pretraining))

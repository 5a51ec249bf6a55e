"""Which device a run uses, whether its forward passes run under bf16 autocast, how it seeds
torch, and how many CPU threads it runs on."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

from ..errors import InputError


def pick_device(device: str | None = None) -> str:
    """``device`` if given (``cpu``, ``cuda`` = the local rank's GPU, ``cuda:N``), else ``cuda``
    when available, else ``cpu``. Anything else, or CUDA on a machine without it, is an InputError."""
    local = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    if device is None or device == "auto":
        return local if torch.cuda.is_available() else "cpu"
    kind, _, index = device.partition(":")
    if kind not in ("cpu", "cuda") or (kind == "cpu" and index) or (index and not index.isdigit()):
        raise InputError(f"unknown device {device!r}: expected cpu, cuda or cuda:N (a GPU is 'cuda', not 'gpu')",
                         field="--device")
    if kind == "cpu":
        return "cpu"
    if not torch.cuda.is_available():
        raise InputError(f"--device {device} asks for a CUDA GPU, but torch sees none on this machine (no NVIDIA "
                         "driver or a CPU-only torch build); use --device cpu", field="--device")
    if index and int(index) >= torch.cuda.device_count():
        raise InputError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                         f"numbered from 0", field="--device")
    return device if index else local



def bf16_autocast(amp: str, device: str) -> bool:
    """Whether forward passes run under bf16 autocast: only on CUDA, unless ``train.amp = "off"``.
    (CPU autocast would be slower and change the CPU runs' exact, deterministic numbers.)"""
    return amp != "off" and device.startswith("cuda")


def seed_torch(seed: int, device: str) -> None:
    """Seed torch's random generators for a run on ``device``: on the CPU the CPU generator alone,
    in the very state ``torch.manual_seed(seed)`` gives it; elsewhere every generator, by
    ``torch.manual_seed``. On a CPU run, ``torch.manual_seed`` also queues a lazy CUDA seed, whose
    stack trace costs about 1.5 ms per call (a tenth of a small model's CPU step, and the trainer
    seeds twice a step) and which outlives the run's forked random state."""
    if torch.device(device).type == "cpu":
        torch.random.default_generator.manual_seed(int(seed))
    else:
        torch.manual_seed(seed)


@contextlib.contextmanager
def cpu_threads(n: int | None, device: str = "cpu") -> Iterator[None]:
    """torch's intra-op thread count at ``n`` inside the block on a CPU run (``None``: unchanged),
    and the caller's again after it, however the block ends: the count is process-wide."""
    prev = torch.get_num_threads()
    if n is not None and torch.device(device).type == "cpu":
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(prev)

"""Helpers for the tests that kill processes and check what survives (Linux: reads /proc)."""

from __future__ import annotations

import time
from collections.abc import Callable


def gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie is dead, only not yet reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def wait_until(pred: Callable[[], bool], seconds: float = 30.0) -> bool:
    """Poll ``pred`` until it holds or ``seconds`` pass; its last value."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return pred()

"""Shared by the lock tests: a second process holding a folder's lock (standing in for a first
writer that is still running)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def hold_lock(folder: Path) -> subprocess.Popen:
    """A second process holding ``folder``'s lock until its stdin closes (or it is killed)."""
    code = ("import sys\nfrom aadb_toolkit._lock import folder_lock\n"
            f"with folder_lock({str(folder)!r}, 'run folder'):\n"
            "    print('locked', flush=True)\n    sys.stdin.read()\n")
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    p = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                         env=env, cwd=ROOT)
    assert p.stdout.readline().strip() == "locked"
    return p

"""benchmarks/recovery.py stopped early: a SIGTERM to the suite's process (a scheduler's stop,
``timeout``, ``kill``) must end its worker processes too, not leave them running their unit and
then idle, each holding a release and a network in memory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, {bench!r})
    import recovery as R

    if __name__ == "__main__":
        R.exit_on_sigterm()
        with R.unit_pool(2) as pool:
            futures = [pool.submit(time.sleep, 300) for _ in range(4)]
            print("ready", flush=True)
            for f in futures:
                f.result()
""")


def _children(pid: int) -> set[int]:
    """Live processes whose parent is ``pid`` (from /proc)."""
    out = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                out.add(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_stopping_the_suite_ends_its_worker_processes(tmp_path, stop):
    """SIGTERM unwinds the run, which ends the workers; after SIGKILL, which nothing can catch,
    each worker sees that its parent is gone and exits."""
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(bench=str(ROOT / "benchmarks")))
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    workers: set[int] = set()
    try:
        assert child.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the spawned workers (and multiprocessing's tracker)
            workers = _children(child.pid)
            if len(workers) >= 2:
                break
            time.sleep(0.2)
        assert len(workers) >= 2, workers
        time.sleep(1.0)  # let the workers pick up their sleeping units
        os.kill(child.pid, stop)
        code = child.wait(timeout=60)
        assert code == (128 + signal.SIGTERM if stop == signal.SIGTERM else -signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_alive(w) for w in workers):
            time.sleep(0.2)
        assert not [w for w in workers if _alive(w)], "worker processes outlived the suite"
    finally:
        if child.poll() is None:
            child.kill()
        for w in _children(child.pid) | {w for w in workers if _alive(w)}:
            os.kill(w, signal.SIGKILL)

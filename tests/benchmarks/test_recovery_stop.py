"""benchmarks/recovery.py stopped early: a SIGTERM to the suite's process (a scheduler's stop,
``timeout``, ``kill``) or a SIGKILL must end its worker processes too, not leave them running
their unit and then idle, each holding a release and a network in memory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from process_fixtures import gone, wait_until

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {bench!r})
    import recovery as R

    if __name__ == "__main__":
        R.exit_on_sigterm()
        with R.unit_pool(2) as pool:
            futures = [pool.submit(time.sleep, 300) for _ in range(4)]
            print(" ".join(str(p) for p in pool._processes), flush=True)
            for f in futures:
                f.result()
""")


@pytest.mark.skipif(sys.platform != "linux", reason="uses /proc and POSIX signals")
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_stopping_the_suite_ends_its_worker_processes(tmp_path, stop):
    """SIGTERM unwinds the run, which ends the workers; after SIGKILL, which nothing can catch,
    each worker sees that its parent is gone and exits."""
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(bench=str(ROOT / "benchmarks")))
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    workers: list[int] = []
    try:
        workers = [int(p) for p in child.stdout.readline().split()]
        assert len(workers) == 2 and not any(gone(p) for p in workers)
        time.sleep(1.0)  # let the workers start on their sleeping units
        child.send_signal(stop)
        code = child.wait(timeout=60)
        assert code == (128 + signal.SIGTERM if stop == signal.SIGTERM else -signal.SIGKILL)
        assert wait_until(lambda: all(gone(p) for p in workers)), "worker processes outlived the suite"
    finally:
        child.kill()
        for p in workers:
            if not gone(p):
                os.kill(p, signal.SIGKILL)

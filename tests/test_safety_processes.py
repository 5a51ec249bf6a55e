"""What survives a kill (issue 9): curation's worker processes die with their parent, SIGTERM
removes the staging copy, and the staging copy left by kill -9 is removed by the next run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from process_fixtures import gone, wait_until

from aadb_toolkit.cli import main

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="uses /proc and POSIX signals")


def test_curation_workers_die_when_their_parent_is_killed():
    code = ("import os, sys, time\n"
            "from aadb_toolkit.curate._images import worker_pool\n"
            "pool = worker_pool(2)\n"
            "futs = [pool.submit(time.sleep, 0.3) for _ in range(4)]\n"
            "[f.result() for f in futs]\n"
            "print(' '.join(str(p) for p in pool._processes), flush=True)\n"
            "pool.submit(time.sleep, 600)\n"
            "time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        workers = [int(p) for p in proc.stdout.readline().split()]
        assert workers and not any(gone(p) for p in workers)
        proc.kill()
        proc.wait()
        assert wait_until(lambda: all(gone(p) for p in workers)), "orphaned workers still alive"
    finally:
        proc.kill()


_SLOW_PUBLISH = (
    "import sys, time\n"
    "import aadb_toolkit.hub.card as card\n"
    "def slow(stage, *a, **k):\n"
    "    print('staged', flush=True)\n"
    "    time.sleep(600)\n"
    "card.validate_card = slow\n"
    "from aadb_toolkit.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n")


def _start_publish(source: Path, out: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_PUBLISH, "publish", "--curated", str(source),
                             "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "staged"
    return proc


def _staging(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith(".staging")]


def test_sigterm_of_publish_removes_its_staging_copy(tiny_curated, tmp_path):
    proc = _start_publish(tiny_curated, tmp_path / "hub")
    assert _staging(tmp_path)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "terminated" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_staging_left_by_kill_9_is_removed_by_the_next_publish(tiny_curated, tmp_path):
    proc = _start_publish(tiny_curated, tmp_path / "hub")
    proc.kill()
    proc.wait()
    assert _staging(tmp_path)
    assert main(["publish", "--curated", str(tiny_curated), "--out", str(tmp_path / "hub")]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hub"]

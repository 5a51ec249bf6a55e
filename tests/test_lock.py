"""Issue 17 item 4: one writer per folder that grows in place. Two processes: a holder of the lock
(standing in for a first `aadb train --out R` that is still running) and the command under test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from aadb_toolkit._lock import folder_lock, try_lock
from aadb_toolkit.errors import OutputError
from lock_fixtures import hold_lock

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="flock and POSIX signals")


def test_a_second_writer_is_refused_and_the_lock_dies_with_its_holder(tmp_path):
    folder = tmp_path / "R"
    folder.mkdir()
    holder = hold_lock(folder)
    try:
        with pytest.raises(OutputError, match="another aadb process is writing"):
            with folder_lock(folder, "run folder"):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)  # a crash releases the lock too
        holder.wait()
    with folder_lock(folder, "run folder"):
        assert try_lock(folder) is None  # held: even a second descriptor of this process is refused
    assert os.listdir(folder) == []  # no lock file is left behind


def test_a_symlink_is_not_locked(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(OutputError, match="symbolic link"):
        with folder_lock(tmp_path / "link", "run folder"):
            pass

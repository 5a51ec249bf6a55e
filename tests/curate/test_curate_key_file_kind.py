"""The rater key file must be a regular file of bounded size (review 2026-12, curation stage): a
FIFO given as the key file hung ``aadb curate`` forever and ``/dev/zero`` was read without limit.
The checks run in a subprocess with a timeout and a memory cap, so a regression cannot hang the
suite or exhaust the machine."""

from __future__ import annotations

import os
import resource
import subprocess
import sys

import pytest

from aadb_toolkit.curate import KEY_FILE_ENV

_RESOLVE = """
import sys
from aadb_toolkit.curate import resolve_key
from aadb_toolkit.errors import InputError
try:
    resolve_key(key_file=sys.argv[1] or None)
except InputError as exc:
    print("InputError:", exc)
else:
    print("accepted")
"""


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (2 * 2 ** 30, 2 * 2 ** 30))


def _resolve_in_subprocess(key_file: str, env_key_file: str | None = None) -> str:
    """What ``resolve_key`` says about ``key_file`` ("" for the environment's), run with a timeout."""
    env = dict(os.environ)
    if env_key_file is not None:
        env[KEY_FILE_ENV] = env_key_file
    done = subprocess.run([sys.executable, "-c", _RESOLVE, key_file], capture_output=True, text=True, env=env,
                          check=False, timeout=30, preexec_fn=_limit_memory)
    return done.stdout + done.stderr


@pytest.mark.parametrize("via", ["argument", "environment"])
def test_a_key_file_that_is_a_fifo_is_refused_without_waiting(tmp_path, via):
    fifo = tmp_path / "keys" / "rater.key"
    fifo.parent.mkdir()
    os.mkfifo(fifo, 0o600)
    said = (_resolve_in_subprocess(str(fifo)) if via == "argument"
            else _resolve_in_subprocess("", env_key_file=str(fifo)))
    assert "InputError:" in said and "not a regular file" in said and str(fifo) in said


def test_dev_zero_as_the_key_file_is_refused():
    said = _resolve_in_subprocess("/dev/zero")
    assert "InputError:" in said and "not a regular file" in said


def test_a_key_file_larger_than_any_key_is_refused_without_reading_it_all(tmp_path):
    big = tmp_path / "keys" / "rater.key"
    big.parent.mkdir()
    with open(big, "wb") as fh:
        fh.write(b"a" * 64)
        fh.truncate(64 * 2 ** 20)  # sparse: 64 MiB that a bounded read never loads
    big.chmod(0o600)
    said = _resolve_in_subprocess(str(big))
    assert "InputError:" in said and "larger than" in said


def test_a_regular_key_file_is_still_read(tmp_path):
    path = tmp_path / "keys" / "rater.key"
    path.parent.mkdir()
    path.write_bytes(b"0123456789abcdef" * 4 + b"\n")
    path.chmod(0o600)
    assert _resolve_in_subprocess(str(path)).strip() == "accepted"

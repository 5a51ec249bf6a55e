"""One writer per folder that grows in place (a training run, a reproduction): an exclusive
``flock`` on the folder itself, held while the command writes there.

The lock is taken on an open descriptor of the folder (no lock file is written, so nothing is left
behind), without waiting: a second ``aadb train --out R`` started while the first still runs stops
at once with a message instead of mixing its checkpoints, config and metrics into the first's. The
kernel releases the lock when the holder exits, however it exits (``kill -9`` included).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path
from typing import Iterator

from .errors import OutputError


def _open_folder(path: Path) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise OutputError("is not a folder (or is a symbolic link); cannot lock it for writing",
                              file=str(path)) from exc
        raise


def try_lock(path: str | os.PathLike[str]) -> int | None:
    """An open descriptor of the folder ``path`` holding its exclusive lock, or None when another
    process (or another descriptor of this one) holds it."""
    fd = _open_folder(Path(path))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def folder_lock(path: str | os.PathLike[str], what: str) -> Iterator[Path]:
    """Hold the exclusive lock of the existing folder ``path`` for the block; refuse
    (:class:`~aadb_toolkit.errors.OutputError`) when another process is writing there. ``what``
    names the folder in the message ("run folder", "reproduction folder")."""
    p = Path(path).absolute()
    fd = try_lock(p)
    if fd is None:
        raise OutputError(f"another aadb process is writing to this {what} right now; wait until it has "
                          "finished (or stop it), or choose another --out — two writers would mix their files",
                          file=str(p))
    try:
        same = os.path.samestat(os.fstat(fd), os.stat(p, follow_symlinks=False))
    except FileNotFoundError:
        same = False
    if not same:
        os.close(fd)
        raise OutputError(f"the {what} was removed or replaced while it was being locked; run the command again",
                          file=str(p))
    try:
        yield p
    finally:
        os.close(fd)  # closing the last descriptor releases the lock

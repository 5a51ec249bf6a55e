"""Rater anonymization (docs/curation.md): a keyed hash (HMAC-SHA256) of the AMT WorkerId with a secret key
the user keeps, so the same worker gets the same rater ID across runs and releases while neither
the key nor the raw WorkerId ever reaches an output file or a log line."""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .._keyguard import (DEFAULT_KEY_FILE, FINGERPRINT_HEX_DIGITS, FINGERPRINT_SALT, FINGERPRINT_SCRYPT,
                         KEY_FILE_ENV, KEY_MAX_BYTES, key_file_path, key_fingerprint)
from ..errors import InputError

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_KEY_FILE", "KEY_FILE_ENV", "RaterKey", "anonymize", "key_fingerprint", "rater_ids",
           "resolve_key", "FINGERPRINT_HEX_DIGITS", "FINGERPRINT_SALT", "FINGERPRINT_SCRYPT"]
# the key file's location, its fingerprint and its recognition are defined once, in aadb_toolkit._keyguard
#: Rater IDs are "R" followed by this many hex digits of the HMAC (64 bits).
RATER_ID_HEX_DIGITS = 16
_MIN_KEY_BYTES = 16
_INSECURE_BITS = stat.S_IRGRP | stat.S_IWGRP | stat.S_IROTH | stat.S_IWOTH


@dataclass(frozen=True)
class RaterKey:
    """A secret anonymization key and where it came from (the path only; never print ``secret``)."""

    secret: bytes
    source: str
    created: bool = False

    def __repr__(self) -> str:  # keep the secret out of tracebacks and debug logs
        return f"RaterKey(source={self.source!r}, created={self.created}, fingerprint={self.fingerprint})"

    @functools.cached_property
    def fingerprint(self) -> str:
        """Identifies which key was used (a slow scrypt hash), without revealing it."""
        return key_fingerprint(self.secret)


def resolve_key(key: bytes | None = None, key_file: Path | str | None = None, *,
                forbidden: tuple[Path | str, ...] = (), allow_insecure: bool = False) -> RaterKey:
    """The key to use: ``key``, else ``key_file``, else ``$AADB_RATER_KEY_FILE``, else the default
    file; a named file that does not exist is created with a fresh random key (mode 0600).

    A key file inside one of the ``forbidden`` folders (the release, the output) is refused, and so
    is one that other users may read or write, unless ``allow_insecure``."""
    if key is not None:
        if not isinstance(key, (bytes, bytearray)) or len(key) < _MIN_KEY_BYTES:
            raise InputError(f"the rater key must be at least {_MIN_KEY_BYTES} bytes")
        return RaterKey(bytes(key), "argument")
    path = key_file_path(key_file)
    _check_key_location(path, forbidden)
    if not path.exists():
        return _create_key_file(path)
    secret, mode = _read_key_file(path)
    if len(secret) < _MIN_KEY_BYTES:
        raise InputError(f"the rater key file holds fewer than {_MIN_KEY_BYTES} bytes; "
                         "delete it to have a new key created, or point to the right file", file=str(path))
    if mode & _INSECURE_BITS:
        if not allow_insecure:
            raise InputError(f"the rater key file can be read or written by other users (mode "
                             f"{stat.S_IMODE(mode):o}); run: chmod 600 {path}  (or pass --allow-insecure-key)",
                             file=str(path))
        log.warning("rater key file %s can be read or written by other users; run: chmod 600 %s", path, path)
    return RaterKey(secret, str(path))


def _read_key_file(path: Path) -> tuple[bytes, int]:
    """The key file's stripped content and mode. Only a regular file of at most
    ``KEY_MAX_BYTES`` is read: a FIFO would block the run forever and a device such as
    /dev/zero would be read without end, so both are refused before the file is opened."""
    try:
        _check_regular(path, os.stat(path).st_mode)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # never waits, even if the path changed since
        with os.fdopen(fd, "rb") as fh:
            mode = os.fstat(fh.fileno()).st_mode
            _check_regular(path, mode)
            data = fh.read(KEY_MAX_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read the rater key file: {exc.strerror or exc}", file=str(path)) from exc
    if len(data) > KEY_MAX_BYTES:
        raise InputError(f"the rater key file is larger than {KEY_MAX_BYTES} bytes, so it is no rater key; "
                         "point to the right file", file=str(path))
    return data.strip(), mode


def _check_regular(path: Path, mode: int) -> None:
    """Refuse a key path that is not a regular file (a FIFO, a device, a folder)."""
    if not stat.S_ISREG(mode):
        raise InputError("the rater key file is not a regular file (a pipe, device or folder); "
                         "point to the key file itself", file=str(path))


def _check_key_location(path: Path, forbidden: tuple[Path | str, ...]) -> None:
    """Refuse a key file inside the release (never written) or the output folder (replaced whole,
    which would destroy the key and with it every rater ID)."""
    real = Path(os.path.realpath(path))
    for folder in forbidden:
        where = Path(os.path.realpath(Path(folder).expanduser()))
        if real == where or real.is_relative_to(where):
            raise InputError(f"the rater key file lies inside {folder}, a folder this command reads or replaces; "
                             "keep the key outside the release and the output folder", file=str(path))


def _create_key_file(path: Path) -> RaterKey:
    secret = secrets.token_hex(32).encode("ascii")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise InputError(f"cannot create the rater key file: {exc.strerror or exc}", file=str(path)) from exc
    with os.fdopen(fd, "wb") as fh:
        fh.write(secret + b"\n")
    log.info("created a new rater anonymization key at %s (mode 0600). Keep it private and reuse it: "
             "the same key gives the same rater IDs across runs.", path)
    return RaterKey(secret, str(path), created=True)


def rater_ids(worker_ids: pd.Series, key: RaterKey) -> pd.Series:
    """Anonymized rater IDs ("R" + 16 hex digits of HMAC-SHA256(key, WorkerId)) for raw WorkerIds."""
    codes, uniques = pd.factorize(worker_ids, sort=False)
    hashed = [anonymize(str(w), key.secret) for w in uniques]
    if len(set(hashed)) != len(hashed):
        raise RuntimeError("two distinct WorkerIds hashed to the same rater ID; use a different key")
    return pd.Series(np.asarray(hashed, dtype=object)[codes], index=worker_ids.index, dtype="str")


def anonymize(worker_id: str, secret: bytes) -> str:
    """The rater ID of one raw WorkerId under one key."""
    digest = hmac.new(secret, worker_id.encode("utf-8"), hashlib.sha256).hexdigest()
    return "R" + digest[:RATER_ID_HEX_DIGITS]

"""Rater anonymization (docs/curation.md): a keyed hash (HMAC-SHA256) of the AMT WorkerId with a secret key
the user keeps, so the same worker gets the same rater ID across runs and releases while neither
the key nor the raw WorkerId ever reaches an output file or a log line."""

from __future__ import annotations

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

from ..errors import InputError

log = logging.getLogger(__name__)

#: Environment variable naming the key file when neither ``key`` nor ``key_file`` is given.
KEY_FILE_ENV = "AADB_RATER_KEY_FILE"
#: Default key file, created with a fresh random key on first use.
DEFAULT_KEY_FILE = Path("~/.config/aadb_toolkit/rater.key")
#: Rater IDs are "R" followed by this many hex digits of the HMAC (64 bits).
RATER_ID_HEX_DIGITS = 16
_KEY_ID_MESSAGE = b"aadb-key-id"
_MIN_KEY_BYTES = 16


@dataclass(frozen=True)
class RaterKey:
    """A secret anonymization key and where it came from (the path only; never print ``secret``)."""

    secret: bytes
    source: str
    created: bool = False

    def __repr__(self) -> str:  # keep the secret out of tracebacks and debug logs
        return f"RaterKey(source={self.source!r}, created={self.created}, fingerprint={self.fingerprint})"

    @property
    def fingerprint(self) -> str:
        """Identifies which key was used (HMAC of a fixed message), without revealing it."""
        return key_fingerprint(self.secret)


def key_fingerprint(secret: bytes) -> str:
    """12 hex digits of HMAC-SHA256(key, "aadb-key-id"): the same key always gives the same value."""
    return hmac.new(secret, _KEY_ID_MESSAGE, hashlib.sha256).hexdigest()[:12]


def resolve_key(key: bytes | None = None, key_file: Path | str | None = None) -> RaterKey:
    """The key to use: ``key``, else ``key_file``, else ``$AADB_RATER_KEY_FILE``, else the default
    file; a named file that does not exist is created with a fresh random key (mode 0600)."""
    if key is not None:
        if not isinstance(key, (bytes, bytearray)) or len(key) < _MIN_KEY_BYTES:
            raise InputError(f"the rater key must be at least {_MIN_KEY_BYTES} bytes")
        return RaterKey(bytes(key), "argument")
    if key_file is None:
        env = os.environ.get(KEY_FILE_ENV)
        key_file = Path(env) if env else DEFAULT_KEY_FILE
    path = Path(key_file).expanduser()
    if not path.exists():
        return _create_key_file(path)
    try:
        secret = path.read_bytes().strip()
    except OSError as exc:
        raise InputError(f"cannot read the rater key file: {exc.strerror or exc}", file=str(path)) from exc
    if len(secret) < _MIN_KEY_BYTES:
        raise InputError(f"the rater key file holds fewer than {_MIN_KEY_BYTES} bytes; "
                         "delete it to have a new key created, or point to the right file", file=str(path))
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("rater key file %s is readable by other users; run: chmod 600 %s", path, path)
    return RaterKey(secret, str(path))


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

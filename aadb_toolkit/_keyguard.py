"""Where the rater key file is, its fingerprint, and how a command recognises it among its inputs.

The key (docs/safety.md) must never be read as data: a command refuses any input that is the key
file (the same file, or a hard link: equal device and inode), holds the same bytes, looks like a
generated key (one line of 64 hex digits, which no input of the toolkit ever is), or has the key
fingerprint a curated folder records, and says so without quoting any of it.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from . import schema
from ._jsonfile import json_object_or_none
from .errors import InputError

#: Environment variable naming the key file when a command is not given one.
KEY_FILE_ENV = "AADB_RATER_KEY_FILE"
#: Default key file, created with a fresh random key on first use by ``aadb curate``.
DEFAULT_KEY_FILE = Path("~/.config/aadb_toolkit/rater.key")
#: A key as ``aadb curate`` generates it: 32 random bytes as 64 hex digits.
_GENERATED_KEY = re.compile(rb"[0-9a-fA-F]{64}")
#: Files larger than this are never a key; only smaller ones are read to compare.
KEY_MAX_BYTES = 4096
#: The key fingerprint is scrypt(key, salt, N, r, p) — memory-hard and slow on purpose, so that even
#: someone who learnt part of a key cannot test guesses of the rest against a published fingerprint
#: quickly. 12 hex digits (48 bits) are shown; the parameters are part of what the fingerprint means.
FINGERPRINT_SALT = b"aadb_toolkit rater-key fingerprint v2"
FINGERPRINT_SCRYPT = {"n": 2 ** 15, "r": 8, "p": 1}
FINGERPRINT_HEX_DIGITS = 12
#: Only a one-line file of this size may be a key whose fingerprint is worth computing (~0.1 s each).
_FINGERPRINTED_BYTES = (16, 512)
KEY_REFUSAL = ("is the rater key file, a link to it or a copy of it (or looks like a rater key); the key is "
               "never read as data and none of it is quoted — give the intended file")


#: Said instead of a one-line file's content: a key is one line, and no valid input of the toolkit
#: is, so where no fingerprint or key file identified it, its content is still never quoted.
ONE_LINE_NOT_QUOTED = "its content is not quoted: a file of one line may be a rater key"


def key_fingerprint(secret: bytes) -> str:
    """12 hex digits of scrypt(key, :data:`FINGERPRINT_SALT`, N=2^15, r=8, p=1): the same key always
    gives the same value, and each guess of a key costs an attacker a 32 MiB, ~0.1 s computation."""
    digest = hashlib.scrypt(secret, salt=FINGERPRINT_SALT, maxmem=64 * 2 ** 20, dklen=32, **FINGERPRINT_SCRYPT)
    return digest.hex()[:FINGERPRINT_HEX_DIGITS]


def recorded_fingerprints(source: object) -> tuple[str, ...]:
    """The key fingerprint a curated folder's manifest records (none for other sources): a key kept
    elsewhere than the commands know is still recognised by it."""
    manifest = json_object_or_none(Path(str(source)) / schema.CURATED_MANIFEST)
    fp = manifest.get("key_fingerprint") if manifest is not None else None
    return (fp,) if isinstance(fp, str) and re.fullmatch(r"[0-9a-f]{12}", fp) else ()


def _matches_fingerprint(content: bytes, fingerprints: tuple[str, ...]) -> bool:
    content = content.strip()
    low, high = _FINGERPRINTED_BYTES
    if not fingerprints or not low <= len(content) <= high or b"\n" in content:
        return False
    return key_fingerprint(content) in fingerprints


def key_file_path(key_file: str | os.PathLike[str] | None = None) -> Path:
    """The key file a command uses: ``key_file``, else ``$AADB_RATER_KEY_FILE``, else the default."""
    if key_file is None:
        env = os.environ.get(KEY_FILE_ENV)
        key_file = Path(env) if env else DEFAULT_KEY_FILE
    return Path(key_file).expanduser()


def file_identity(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """(device, inode) of the file ``path`` leads to, or None when it cannot be read."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino)


def _small_file(path: str | os.PathLike[str]) -> bytes | None:
    try:
        if not os.path.isfile(path) or os.path.getsize(path) > KEY_MAX_BYTES:
            return None
        with open(path, "rb") as f:
            return f.read(KEY_MAX_BYTES + 1)
    except (OSError, ValueError):
        return None


def _looks_like_key(content: bytes, key: bytes | None) -> bool:
    content = content.strip()
    return bool(content) and (bool(_GENERATED_KEY.fullmatch(content)) or (key is not None and content == key))


def _key_bytes(key_file: Path) -> bytes | None:
    key = _small_file(key_file)
    key = key.strip() if key is not None else None
    return key or None


def is_key_file(path: str | os.PathLike[str], key_file: str | os.PathLike[str] | None = None, *,
                content: bytes | None = None, fingerprints: tuple[str, ...] = ()) -> bool:
    """True when ``path`` is the key file (or a hard or symbolic link to it), holds the key's bytes,
    holds one line of 64 hex digits (a generated key), or holds one line whose key fingerprint is
    one of ``fingerprints`` (see :func:`recorded_fingerprints`). ``content``: the file's bytes,
    when the caller has read them already."""
    key_path = key_file_path(key_file)
    ident = file_identity(path)
    if ident is not None and ident == file_identity(key_path):
        return True
    if content is None:
        content = _small_file(path)
    elif len(content) > KEY_MAX_BYTES:
        content = None
    return content is not None and (_looks_like_key(content, _key_bytes(key_path))
                                    or _matches_fingerprint(content, fingerprints))


def is_key_text(text: str, key_file: str | os.PathLike[str] | None = None) -> bool:
    """True when a value given on the command line is the key (its content, or a generated key's shape)."""
    try:
        content = str(text).encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return False
    return _looks_like_key(content, _key_bytes(key_file_path(key_file)))


def refuse_key_file(path: str | os.PathLike[str] | None, *, field: str | None = None,
                    key_file: str | os.PathLike[str] | None = None, content: bytes | None = None,
                    fingerprints: tuple[str, ...] = ()) -> None:
    """Raise :class:`InputError` (naming the path, quoting nothing) when ``path`` is the rater key."""
    if path is not None and is_key_file(path, key_file, content=content, fingerprints=fingerprints):
        raise InputError(KEY_REFUSAL, file=str(path), field=field)


def refuse_key_text(text: str, *, field: str, key_file: str | os.PathLike[str] | None = None) -> None:
    """Raise :class:`InputError` (quoting nothing) when a command-line value is the rater key."""
    if is_key_text(text, key_file):
        raise InputError("this value is the rater key (or looks like one); the key is never used as a name or "
                         "quoted — give the intended value", field=field)


def refuse_links_to_key(files: list[Path], key_file: str | os.PathLike[str] | None = None) -> None:
    """Raise :class:`InputError` when one of ``files`` is the key file itself under another name
    (a hard link: same device and inode). Only the file's name is reported."""
    key = file_identity(key_file_path(key_file))
    if key is None:
        return
    for f in files:  # lstat: a symbolic link leading out of the release is refused by the release rule
        try:
            st = os.lstat(f)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == key:
            raise InputError("is a hard link to the rater key file; the key is never read as data — remove the "
                             "link from the release", file=str(f))


def refuse_copies_of_key(files: list[Path], key_file: str | os.PathLike[str] | None = None) -> None:
    """Raise :class:`InputError` (naming the file, quoting nothing) when one of ``files`` is the key
    by content (:func:`is_key_file`: a copy of it, or a generated key's shape). For the few text
    inputs a command reads line by line and would quote: a copy is not caught by the link check."""
    for f in files:
        refuse_key_file(f, key_file=key_file)


def key_inside(folder: str | os.PathLike[str], key_file: str | os.PathLike[str] | None = None) -> bool:
    """True when the key file lies inside ``folder`` (links resolved)."""
    key = key_file_path(key_file)
    if not key.exists():
        return False
    return Path(os.path.realpath(key)).is_relative_to(Path(os.path.realpath(folder)))

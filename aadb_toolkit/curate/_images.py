"""Image checks by full decoding, in parallel worker processes: corrupt, truncated and unreadable
files are found, and grayscale/CMYK/alpha/palette images, PNG bytes behind a ``.jpg`` name and
EXIF orientation are recorded (width and height are those of the upright image)."""

from __future__ import annotations

import concurrent.futures as cf
import io
import os
import signal
import struct
import threading
import time
import warnings
from multiprocessing.context import BaseContext
from pathlib import Path

import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from .. import schema
from .._paths import inside
from ..data import sha256_fingerprint

#: Folders of the release that hold images (the 1,000-image new test folder may be separate).
IMAGE_DIRS = (schema.RELEASE_IMAGE_DIR, "AADB_newtest_originalSize")
CHECK_COLUMNS = ("image_id", "ok", "error", "format", "mode", "width", "height", "exif_orientation", "flags",
                 schema.IMAGE_SHA256)
_EXIF_ORIENTATION = 0x0112
_GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
_JPEG_SUFFIXES = (".jpg", ".jpeg")
#: Pillow's names for JPEG data: MPO is a JPEG with extra pictures (many cameras and phones write it).
_JPEG_FORMATS = ("JPEG", "MPO")
# What Pillow raises for undecodable, truncated or unreadable files (all recorded, never ignored).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError,
                  Image.DecompressionBombError)


def default_workers() -> int:
    """min(4, number of CPUs): image decoding is CPU-bound and the reference machine has 2 cores."""
    return max(1, min(4, os.cpu_count() or 1))


def list_image_files(release: Path) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Image files of the release as {image name: path relative to the release root}, and the
    files that are not used (hidden files, sub-folders, a name already seen, a name that is not
    UTF-8, a symbolic link leading outside the release) with the reason."""
    files: dict[str, str] = {}
    ignored: list[tuple[str, str]] = []
    for folder in IMAGE_DIRS:
        root = release / folder
        if not root.is_dir():
            continue
        if not inside(release, root):
            ignored.append((folder, "link_outside_release (the image folder leads outside the release; not read)"))
            continue
        for entry in sorted(os.scandir(root), key=lambda e: e.name):
            rel = f"{folder}/{_printable_name(entry.name)}"
            if not _utf8(entry.name):
                ignored.append((rel, "name_not_utf8 (the file name is not valid UTF-8; rename the file to use it)"))
            elif entry.is_symlink() and not inside(release, entry.path):
                ignored.append((rel, "link_outside_release (a symbolic link to a file outside the release; not read)"))
            elif entry.name.startswith("."):
                ignored.append((rel, "hidden_file"))
            elif not entry.is_file():
                ignored.append((rel, "not_a_file"))
            elif entry.name in files:
                ignored.append((rel, f"duplicate_name (also {files[entry.name]})"))
            else:
                files[entry.name] = rel
    return files, ignored


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes arrive from the file system as lone surrogates
        return False
    return True


def _printable_name(name: str) -> str:
    """The file name as text that can be written anywhere (bytes that are not UTF-8 as ``\\xNN``)."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def check_images(release: Path, files: dict[str, str], *, workers: int | None = None,
                 progress: bool | None = None) -> pd.DataFrame:
    """Decode every listed image fully (in ``workers`` processes) and return one row per image
    with columns :data:`CHECK_COLUMNS`; ``ok`` is False for files that cannot be decoded."""
    workers = default_workers() if workers is None else max(1, int(workers))
    items = [(name, str(release / rel)) for name, rel in sorted(files.items())]
    results: list[dict] = []
    bar = tqdm(total=len(items), desc="checking images", unit="img", disable=None if progress is None else not progress)
    try:
        if workers == 1 or len(items) < 2:
            for item in items:
                results.append(check_image(*item))
                bar.update(1)
        else:
            size = max(1, min(64, len(items) // (workers * 4) or 1))
            chunks = [items[i:i + size] for i in range(0, len(items), size)]
            pool = worker_pool(workers)
            try:
                futures = [pool.submit(_check_chunk, c) for c in chunks]
                for fut in cf.as_completed(futures):
                    part = fut.result()
                    results.extend(part)
                    bar.update(len(part))
            finally:  # on an error, Ctrl-C or SIGTERM: drop the queued chunks, let the workers exit
                pool.shutdown(wait=True, cancel_futures=True)
    finally:
        bar.close()
    frame = pd.DataFrame(results, columns=list(CHECK_COLUMNS))
    return frame.sort_values("image_id", kind="stable").reset_index(drop=True)


def worker_pool(workers: int, context: BaseContext | None = None) -> cf.ProcessPoolExecutor:
    """A process pool whose workers die with their parent, even when it is killed with SIGKILL (each
    worker watches its parent process and exits when it is gone), and leave Ctrl-C and SIGTERM to
    the parent, which shuts the pool down. ``context``: the multiprocessing start method's context
    (default: the platform's)."""
    return cf.ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_die_with_parent,
                                  initargs=(os.getpid(),))


#: How often a worker checks that its parent is still alive (seconds).
PARENT_CHECK_SECONDS = 0.5


def _die_with_parent(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="aadb-parent-watch", daemon=True).start()


def _check_chunk(items: list[tuple[str, str]]) -> list[dict]:
    return [check_image(name, path) for name, path in items]


def check_image(name: str, path: str) -> dict:
    """Decode one image fully; report its format, mode, upright size, EXIF orientation, flags and
    the sha256 of the very bytes decoded (publishing checks every image against it)."""
    row = {"image_id": name, "ok": False, "error": "", "format": "", "mode": "", "width": 0, "height": 0,
           "exif_orientation": 0, "flags": "", schema.IMAGE_SHA256: ""}
    flags = []
    fp = None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            payload = Path(path).read_bytes()
            row[schema.IMAGE_SHA256] = sha256_fingerprint(payload)
            fp = io.BytesIO(payload)
            with Image.open(fp) as im:
                im.load()
                fmt, mode, (w, h) = (im.format or ""), im.mode, im.size
                orientation = im.getexif().get(_EXIF_ORIENTATION, 1)
                has_transparency = "transparency" in im.info
    except _DECODE_ERRORS as exc:  # Pillow names the object it read: name the file instead
        row["error"] = f"{type(exc).__name__}: {str(exc).replace(repr(fp), repr(path))}"[:200]
        return row
    if not isinstance(orientation, int) or not 1 <= orientation <= 8:
        flags.append("exif_orientation_invalid")
        orientation = 1
    elif orientation != 1:
        flags.append("exif_rotated")
        if orientation in (5, 6, 7, 8):
            w, h = h, w
    if mode in _GRAY_MODES:
        flags.append("grayscale")
    if mode == "CMYK":
        flags.append("cmyk")
    if mode in _ALPHA_MODES or (mode == "P" and has_transparency):
        flags.append("alpha")
    if mode in ("P", "PA"):
        flags.append("palette")
    if name.lower().endswith(_JPEG_SUFFIXES) and fmt not in _JPEG_FORMATS:
        flags.append("png_bytes" if fmt == "PNG" else f"{fmt.lower() or 'unknown'}_bytes")
    if caught:
        flags.append("decode_warning")
        row["error"] = "; ".join(str(w.message) for w in caught)[:200]
    row.update(ok=True, format=fmt, mode=mode, width=int(w), height=int(h), exif_orientation=int(orientation),
               flags=";".join(flags))
    return row

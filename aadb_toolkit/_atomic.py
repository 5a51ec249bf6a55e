"""Atomic writes: every output file is written to a temporary sibling and renamed into place, so a
failure never leaves a half-written file, and a folder of outputs is built aside and swapped in."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from ._jsonfile import json_object_or_none
from .errors import OutputError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp creates 0600; outputs get the usual mode
    try:
        with _naming(path):
            yield tmp_path
            os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def _naming(path: Path) -> Iterator[None]:
    """Give a write failure that names no file (a full disk, a file-size limit: "File too large")
    the output it was writing, so the message says which."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically (LF line endings)."""
    write_bytes(path, text.encode("utf-8"))


def json_text(obj: Any) -> str:
    """``obj`` as the toolkit's JSON files hold it: stable, indented (sorted keys, trailing newline)."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as :func:`json_text` atomically."""
    write_text(path, json_text(obj))


def write_texts(texts: Mapping[str | os.PathLike[str], str]) -> None:
    """Write files that belong together (UTF-8 texts) all or none: each is written aside first, and
    only when every one is written are they renamed into place, back to back. A failure while
    writing (a full disk) leaves every old file as it was."""
    with contextlib.ExitStack() as stack:
        for path, text in texts.items():
            stack.enter_context(atomic_path(path)).write_bytes(text.encode("utf-8"))


#: The marker every output folder of the toolkit carries: which kind of output it is and which
#: files the toolkit wrote there. A folder is replaced only when it carries the marker of its kind.
MARKER_FILE = ".aadb_output.json"
MARKER_FORMAT = "aadb_toolkit-output"
#: Output kind → the command that writes it (named in refusals).
OUTPUT_KINDS: dict[str, str] = {
    "simulated_release": "aadb simulate", "simulated_ava": "aadb simulate-ava", "simulated_truth": "aadb simulate", "curated": "aadb curate",
    "published": "aadb publish", "consistency": "aadb consistency", "report": "aadb report",
    "run": "aadb train", "leaderboard": "aadb leaderboard", "demo": "aadb demo", "output": "the toolkit",
}
#: Kinds of folder that hold other outputs (the demo's folder); every other kind is closed to them.
CONTAINER_KINDS = frozenset({"demo"})
_STAGING = ".aadb-"  # staging and old folders: .<name>.aadb-<pid>-<random>.staging / .<name>.aadb-<pid>.old
_NAMES_SHOWN = 5


def _describe(kind: str) -> str:
    return f"{kind.replace('_', ' ')} folder (written by {OUTPUT_KINDS.get(kind, 'the toolkit')})"


def names_shown(names: list[str]) -> str:
    """The first few of ``names`` for a message (``'a', 'b' and 3 more``)."""
    shown = ", ".join(repr(n) for n in names[:_NAMES_SHOWN])
    return shown + (f" and {len(names) - _NAMES_SHOWN} more" if len(names) > _NAMES_SHOWN else "")


def read_marker(folder: str | os.PathLike[str]) -> dict | None:
    """The toolkit's output marker of ``folder`` (a dict with ``kind`` and ``files``), or None."""
    f = Path(folder) / MARKER_FILE
    try:
        if f.is_symlink() or not f.is_file():
            return None
    except OSError:
        return None
    d = json_object_or_none(f)
    return d if d is not None and d.get("format") == MARKER_FORMAT and isinstance(d.get("kind"), str) else None


def files_under(folder: Path) -> list[str]:
    """Every file (and link to a folder) under ``folder``, relative and sorted, links not followed,
    the marker left out: what a marker lists, and what replacing the folder would delete."""
    out = []
    for root, dirs, files in os.walk(folder):  # does not follow links
        rel = Path(root).relative_to(folder)
        out += [(rel / n).as_posix() for n in files + [d for d in dirs if (Path(root) / d).is_symlink()]]
    return sorted(n for n in out if n != MARKER_FILE)


def write_marker(folder: str | os.PathLike[str], kind: str, *, list_files: bool = True) -> None:
    """Mark ``folder`` as an output of ``kind``, listing the files in it (``list_files=False`` for
    folders that grow in place, such as a training run)."""
    from . import __version__

    folder = Path(folder)
    write_json(folder / MARKER_FILE, {
        "format": MARKER_FORMAT, "kind": kind, "written_by": OUTPUT_KINDS.get(kind, "the toolkit"),
        "toolkit_version": __version__, "files": files_under(folder) if list_files else None})


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _check_not_input(path: Path, inputs: tuple) -> None:
    real = _real(path)
    for given in inputs:
        if given is None or not isinstance(given, (str, os.PathLike)) or not Path(given).exists():
            continue
        inp = _real(Path(given).expanduser())
        if real == inp or inp.is_relative_to(real) or (inp.is_dir() and real.is_relative_to(inp)):
            raise OutputError(f"is, contains or lies inside the input {str(given)!r} of this command; "
                              "writing there would destroy or change the input — choose another output",
                              file=str(path))


def _check_not_inside_output(path: Path) -> None:
    for parent in _real(path).parents:
        marker = read_marker(parent)
        if marker is not None and marker["kind"] not in CONTAINER_KINDS:
            raise OutputError(f"lies inside the {_describe(marker['kind'])} {parent}, which the toolkit "
                              "replaces or manages as a whole, so anything put there is lost or mistaken for "
                              "its own — choose a folder outside it", file=str(path))


def check_output_place(path: str | os.PathLike[str], *, inputs: tuple = ()) -> Path:
    """Refuse (:class:`~aadb_toolkit.errors.OutputError`) an output folder in a place where writing
    would lose or change data, whoever owns the folder itself: a symlink, the root, an input of the
    command (or a folder in or around one), or a folder inside another output. Returns the
    absolute path."""
    p = Path(path).expanduser().absolute()
    if p.is_symlink():
        raise OutputError("is a symbolic link; the toolkit never replaces a link — give the real folder "
                          "or a new one", file=str(p))
    if p.parent == p:
        raise OutputError("is the root of the file system; choose a new folder", file=str(p))
    _check_not_input(p, inputs)
    _check_not_inside_output(p)
    return p


def check_output_folder(path: str | os.PathLike[str], kind: str, *, inputs: tuple = ()) -> Path:
    """Refuse (:class:`~aadb_toolkit.errors.OutputError`) an output folder whose replacement would
    lose data: a symlink, the root, a file, an input of the command, a folder inside another
    output, or a non-empty folder without the marker of ``kind`` or holding files the toolkit did
    not write. Returns the absolute path."""
    p = check_output_place(path, inputs=inputs)
    if not p.exists():
        return p
    if not p.is_dir():
        raise OutputError("exists and is not a folder; choose a new folder", file=str(p))
    try:
        entries = sorted(os.listdir(p))
    except OSError as exc:
        raise OutputError(f"cannot list the folder: {exc.strerror or exc}", file=str(p)) from exc
    if not entries:
        return p
    marker = read_marker(p)
    if marker is None:
        raise OutputError(f"is not empty (found {names_shown(entries)}) and is not a {_describe(kind)} (no "
                          f"{MARKER_FILE}); the toolkit replaces only folders it wrote — choose a new or empty "
                          "folder", file=str(p))
    if marker["kind"] != kind:
        raise OutputError(f"is a {_describe(marker['kind'])}, not a {_describe(kind)}; refusing to replace it",
                          file=str(p))
    listed = marker.get("files")
    if isinstance(listed, list):
        extra = sorted(set(files_under(p)) - set(map(str, listed)))
        if extra:
            raise OutputError(f"holds files the toolkit did not write ({names_shown(extra)}); replacing the folder "
                              "would delete them, so nothing was written — move them away first", file=str(p))
    return p


def check_output_file(path: str | os.PathLike[str], what: str, is_ours: Callable[[Path], bool], *,
                      inputs: tuple = ()) -> Path:
    """Refuse to write the file ``path`` over a symlink, a folder, an input of the command, a file
    inside another output folder, or an existing file that ``is_ours`` does not recognise as a
    ``what`` written by the toolkit. Returns the absolute path."""
    p = Path(path).expanduser().absolute()
    if p.is_symlink():
        raise OutputError("is a symbolic link; the toolkit never replaces a link — give a new file name", file=str(p))
    if p.is_dir():
        raise OutputError(f"is a folder; give the name of the {what} to write", file=str(p))
    _check_not_input(p, inputs)
    _check_not_inside_output(p)
    if p.exists() and not is_ours(p):
        raise OutputError(f"exists and is not a {what} written by the toolkit; refusing to overwrite it — "
                          "choose a new file name", file=str(p))
    return p


def starts_with_header(header: str) -> Callable[[Path], bool]:
    """For :func:`check_output_file`: recognises a CSV the toolkit wrote by its exact first line
    ``header`` (a file starting otherwise is a user's, and is never overwritten)."""
    def is_ours(path: Path) -> bool:
        try:
            with open(path, "rb") as fh:
                first = fh.readline(len(header) + 8)
        except OSError:
            return False
        return first.removeprefix(b"\xef\xbb\xbf").strip() == header.encode()

    return is_ours


def small_json_object(path: str | os.PathLike[str], max_bytes: int) -> dict | None:
    """For the ``is_ours`` tests of :func:`check_output_file`: the file as a JSON object when it
    is at most ``max_bytes`` and parses as one, else None (unreadable, too big, not JSON)."""
    try:
        if Path(path).stat().st_size > max_bytes:
            return None
    except OSError:
        return None
    return json_object_or_none(path)


def check_distinct_outputs(**paths: str | os.PathLike[str] | None) -> None:
    """Refuse two outputs of one command that are the same file (the second would replace the first)."""
    seen: dict[str, str] = {}
    for option, path in paths.items():
        if path is None:
            continue
        real = os.path.realpath(Path(path).expanduser())
        if real in seen:
            raise OutputError(f"is the same file as {seen[real]}; give each output its own file", file=str(path),
                              field=option)
        seen[real] = option


def claim_output_folder(path: str | os.PathLike[str], kind: str, *, inputs: tuple = (),
                        written_before_markers: Callable[[Path], bool] | None = None) -> Path:
    """For outputs that grow in place (a training run, the demo's folder): check ``path`` as
    :func:`check_output_folder` does, create it and mark it as ``kind`` (without a file list)
    unless it is marked already. ``written_before_markers`` recognises such a folder written by a
    version of the toolkit without markers (it is then marked, not refused). Returns the path."""
    p = Path(path).expanduser().absolute()
    if (written_before_markers is not None and p.is_dir() and not p.is_symlink() and read_marker(p) is None
            and written_before_markers(p)):
        _check_not_input(p, inputs)
        _check_not_inside_output(p)
        write_marker(p, kind, list_files=False)
    p = check_output_folder(p, kind, inputs=inputs)
    p.mkdir(parents=True, exist_ok=True)
    if read_marker(p) is None:
        write_marker(p, kind, list_files=False)
    return p


@contextlib.contextmanager
def claimed_output_folder(path: str | os.PathLike[str], kind: str, *, inputs: tuple = (),
                          written_before_markers: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """:func:`claim_output_folder` for the duration of a block: if the block fails before writing
    anything into a folder it created, the folder is removed again."""
    given = Path(path).expanduser().absolute()
    created = not given.exists()
    before = None if created or read_marker(given) is not None else set(os.listdir(given))
    p = claim_output_folder(path, kind, inputs=inputs, written_before_markers=written_before_markers)
    try:
        yield p
    except BaseException:
        if before is not None and set(os.listdir(p)) == before | {MARKER_FILE}:
            (p / MARKER_FILE).unlink(missing_ok=True)  # a refused run leaves an unmarked folder as it was
        if created and os.listdir(p) == [MARKER_FILE]:
            from ._lock import try_lock

            fd = try_lock(p)  # not while another process (which claimed it too) is working there
            if fd is not None:
                shutil.rmtree(p, ignore_errors=True)
                os.close(fd)
        raise


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_staging(path: str | os.PathLike[str]) -> list[Path]:
    """Remove the staging and old copies of ``path`` left by a killed run of the toolkit (named
    ``.<name>.aadb-<pid>…``, from a process that no longer exists); returns what was removed."""
    path = Path(path).absolute()
    removed = []
    if not path.parent.is_dir():
        return removed
    prefix = f".{path.name}{_STAGING}"
    for entry in path.parent.iterdir():
        rest = entry.name[len(prefix):] if entry.name.startswith(prefix) else ""
        pid = rest.split("-", 1)[0].split(".", 1)[0]
        if (not pid.isdigit() or not entry.name.endswith((".staging", ".old")) or entry.is_symlink()
                or not entry.is_dir() or _pid_alive(int(pid))):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], *, kind: str = "output", overwrite: bool = True,
               inputs: tuple = ()) -> Iterator[Path]:
    """Build a whole output folder aside and swap it in when the block succeeds.

    ``path`` is first checked with :func:`check_output_folder` (only a folder carrying the marker
    of ``kind`` and nothing the toolkit did not write is replaced); the new folder gets that marker.
    On failure the staging folder is removed and whatever was at ``path`` before is untouched.
    With ``overwrite=False`` an existing non-empty ``path`` is an error.
    """
    path = check_output_folder(path, kind, inputs=inputs)
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise FileExistsError(f"{path}: folder exists and is not empty")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(path)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}{_STAGING}{os.getpid()}-", suffix=".staging",
                                    dir=path.parent))
    os.chmod(staging, 0o777 & ~_umask())
    try:
        with _naming(path):
            yield staging
        check_output_folder(path, kind, inputs=inputs)  # again: a user may have added a file meanwhile
        write_marker(staging, kind)
        if path.exists() and exchange_paths(staging, path):
            pass  # one atomic swap: ``path`` now holds the new folder, ``staging`` the old one
        else:
            old = None
            if path.exists():
                old = path.with_name(f".{path.name}{_STAGING}{os.getpid()}.old")
                if old.exists():
                    shutil.rmtree(old)
                os.replace(path, old)
            os.replace(staging, path)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def exchange_paths(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Atomically swap two existing paths (Linux ``renameat2(RENAME_EXCHANGE)``), so a reader sees
    the old folder or the new one and never neither. Returns False where the system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(err, os.strerror(err), str(b))

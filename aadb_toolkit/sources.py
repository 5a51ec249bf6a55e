"""One loader for every data source the downstream tools accept: a curated folder (the output of
``aadb curate``), a published Hugging Face dataset folder (the output of ``aadb publish``), or a
Hub repo id. Each gives the same canonical tables (docs/curation.md, "Output: the curated folder") and access to the image bytes."""

from __future__ import annotations

import os
from pathlib import Path

from . import schema
from ._atomic import read_marker
from ._jsonfile import read_json_object
from ._keyguard import key_inside
from ._paths import inside, plainly_relative
from ._registry import close_matches
from .data import AADBData, Provenance, fingerprint_images, read_parquet, setting_record, sha256_fingerprint
from .errors import InputError, SourceError, quote

__all__ = ["AADBData", "Provenance", "SourceError", "fingerprint_images", "load", "load_curated"]



#: The explicit form of a Hub repo id, for an id whose ORG is also the name of a local folder.
HUB_PREFIX = "hf://"


def load(source: str | Path, *, images: bool = True) -> AADBData:
    """Load a curated folder, a published dataset folder, an AVA folder (recognised by its
    ``AVA.txt``), or a Hub repo id: the one place (with the CLI and demo that call it) where a path
    or Hub id becomes data.

    Which strings go to the Hub (a folder that exists is always read as a folder):
    ``hf://ORG/NAME`` always; a plain ``ORG/NAME`` only when it could be a Hub repo id (exactly two
    parts, each of the Hub's characters: ``hub.layout.is_repo_id``) *and* no local folder ``ORG``
    exists, since ``pub/aabd`` beside a folder ``pub`` is a mistyped path, not a repo. Anything else
    that does not exist is "no such folder", with the closest existing path when there is one.
    ``images=False`` is for callers that read no image (scoring): an AVA folder's photos are then
    not checked up front (nor needed)."""
    text = str(source)
    if text.startswith(HUB_PREFIX):
        return _load_hub(text[len(HUB_PREFIX):], text)
    path = Path(source)
    if path.is_dir():
        return _load_folder(path, images)
    if path.exists():
        raise SourceError(f"{path}: is a file; expected a curated folder, a published folder or a Hub repo id")
    if could_be_hub_id(text):
        return _load_hub(text, text)
    raise SourceError(_no_such_folder(text))


def _no_such_folder(text: str) -> str:
    """"no such folder", the closest existing path, and why the string was not tried on the Hub."""
    hint = _close_path(Path(text))
    message = f"{text}: no such folder" + (f"; did you mean {hint!r}?" if hint else "")
    if _is_repo_id_form(text):
        return message + (f" (read as a path, not a Hub repo id, because a folder {text.split('/')[0]!r} "
                          f"exists here; write {HUB_PREFIX}{text} for the Hub)")
    return message + "; a Hub repo id has the form ORG/NAME"


def could_be_hub_id(text: str) -> bool:
    """True for ``ORG/NAME`` in the Hub's characters where no local folder ``ORG`` exists."""
    return _is_repo_id_form(text) and not Path(text.split("/")[0]).is_dir()


def _is_repo_id_form(text: str) -> bool:
    from .hub.layout import is_repo_id

    return is_repo_id(text)


def _load_folder(path: Path, images: bool = True) -> AADBData:
    if (path / schema.CURATED_MANIFEST).is_file():
        return load_curated(path)
    from . import ava

    if (path / ava.AVA_TXT).is_file():
        return ava.load_ava_source(path, check_files=images)
    from . import hub

    if hub.is_published_folder(path):
        return hub.load_published(path)
    raise SourceError(
        f"{path}: not a curated folder (no {schema.CURATED_MANIFEST}), a published dataset "
        "folder (no README.md with dataset configs) nor an AVA folder (no AVA.txt)"
    )


def _load_hub(repo_id: str, source: str) -> AADBData:
    """Load ``repo_id`` from the Hub; when that fails and a local path close to ``source`` exists,
    the error says so (a mistyped folder name often looks like ``ORG/NAME``)."""
    from . import hub

    if not _is_repo_id_form(repo_id):
        raise SourceError(f"{source}: not a Hub repo id of the form ORG/NAME")
    try:
        return hub.load_from_hub(repo_id)
    except SourceError as exc:
        hint = None if source.startswith(HUB_PREFIX) else _close_path(Path(source))
        if hint is None:
            raise
        raise SourceError(f"{exc}; nor is there a local folder {source!r}: did you mean {hint!r}?") from exc


def _close_path(path: Path) -> str | None:
    """``path`` with its first missing part replaced by the closest name in the folder above it,
    when that path exists (``pub/aabd`` → ``pub/aadb``); None when nothing is close."""
    parts = path.parts
    for i, part in enumerate(parts):
        head = Path(*parts[:i]) if i else Path(".")
        if (head / part).exists():
            continue
        try:
            names = sorted(e.name for e in os.scandir(head) if not e.name.startswith("."))
        except OSError:
            return None
        close = [c for c in close_matches(part, names, n=3) if head.joinpath(c, *parts[i + 1:]).exists()]
        return str(head.joinpath(close[0], *parts[i + 1:])) if close else None
    return None


def load_curated(path: str | Path) -> AADBData:
    """Load a folder written by :func:`aadb_toolkit.curate.curate`. Its ``release_root`` and image
    paths say where to read, but grant nothing: every image read must match the sha256 that
    curation recorded (see :class:`CuratedImageReader`)."""
    path = Path(path)
    manifest_file = path / schema.CURATED_MANIFEST
    try:
        manifest = read_json_object(manifest_file, "curated manifest")
    except InputError as exc:  # a data source that cannot be read: a SourceError, as every other
        raise SourceError(str(exc)) from None
    if manifest.get("format") != schema.CURATED_FORMAT:
        raise SourceError(f"{manifest_file}: format is {quote(manifest.get('format'))}, expected "
                          f"{schema.CURATED_FORMAT!r}")
    images = read_parquet(path / schema.CURATED_IMAGES)
    ratings = read_parquet(path / schema.CURATED_RATINGS)
    release_root = _release_root(path, manifest.get("release_root"))
    paths = dict(zip(images["image_id"].tolist(), images["path"].tolist()))  # lists: no per-item Arrow iteration
    climbing = [(i, p) for i, p in paths.items() if not plainly_relative(str(p))]
    if climbing:
        i, p = climbing[0]
        raise SourceError(f"{path / schema.CURATED_IMAGES}: image {quote(i)} has path {quote(p)}, which "
                          f"leads outside the release folder ({len(climbing)} such row(s)); the toolkit reads "
                          "nothing outside the release")
    hashes = None
    if schema.IMAGE_SHA256 in images.columns:
        hashes = dict(zip(images["image_id"].tolist(), images[schema.IMAGE_SHA256].astype(str).tolist()))
        images = images.drop(columns=schema.IMAGE_SHA256)
    read = CuratedImageReader(path / schema.CURATED_IMAGES, release_root, paths, hashes)
    provenance = Provenance(origin=str(path), kind="curated", synthetic=curated_is_synthetic(manifest, release_root),
                            test_list=_manifest_test_list(manifest, manifest_file), setting=_manifest_setting(manifest, path))
    return AADBData(images=images, ratings=ratings, origin=str(path), read_image_bytes=read, provenance=provenance)


def _missing_image_message(path: Path, release_root: Path, file: Path) -> str:
    """Why an image of a curated folder cannot be read, and how to point the folder at a moved release."""
    fix = (f"if the release was moved, point the folder at its new place with `aadb curate relocate --data {path} "
           "--release NEW_PLACE`, which checks every image against the sha256 recorded at curation "
           "(docs/curation.md, \"Moving the release\")")
    if not release_root.is_dir():
        return (f"{path}: the release this curated folder was made from is no longer at {release_root} (moved or "
                f"deleted); {fix}")
    return f"{path}: the image file {file} is missing from the release {release_root}; {fix}"


def _release_root(folder: Path, value: object) -> Path:
    """The manifest's ``release_root`` as a folder, refused when it is not a plain folder path, is
    the root of the file system, or holds the rater key file."""
    manifest_file = folder / schema.CURATED_MANIFEST
    if not isinstance(value, str) or not value.strip():
        raise SourceError(f"{manifest_file}: release_root is {quote(value)}; expected the path of the release folder")
    root = Path(value)
    if not root.is_absolute():
        root = (folder / root).resolve()
    if os.path.realpath(root) == os.path.realpath(root.anchor or "/"):
        raise SourceError(f"{manifest_file}: release_root is the root of the file system; a release is a folder "
                          "of its own (curate it again)")
    if key_inside(root):
        raise SourceError(f"{manifest_file}: release_root {quote(value)} holds the rater key file; the toolkit "
                          "reads no image from a folder holding the key — keep the key outside the release")
    return root


class CuratedImageReader:
    """Reads the bytes of a curated folder's images from its release, each checked against the
    sha256 recorded at curation: the hash ties the bytes to what curation decoded, so an edited
    ``release_root`` or ``path`` cannot make the toolkit read any other file as an image."""

    def __init__(self, table: Path, release_root: Path, paths: dict, hashes: dict | None) -> None:
        self.table, self.release_root, self.paths, self.hashes = table, release_root, paths, hashes

    @property
    def hashes_recorded(self) -> bool:
        """False for a folder curated before image hashes were recorded (publishing refuses it)."""
        return self.hashes is not None

    def __call__(self, image_id: str) -> bytes:
        try:
            rel = self.paths[image_id]
        except KeyError:
            raise KeyError(f"unknown image_id {quote(image_id)} in {self.table.parent}") from None
        file = self.release_root / rel
        if not inside(self.release_root, file):
            raise SourceError(f"{self.table}: image {quote(image_id)}: {quote(rel)} is a symbolic link leading "
                              "outside the release folder; the toolkit reads nothing outside it")
        try:
            payload = file.read_bytes()
        except FileNotFoundError:
            raise SourceError(_missing_image_message(self.table.parent, self.release_root, file)) from None
        except OSError as exc:
            raise SourceError(f"{self.table.parent}: image {quote(image_id)}: cannot read {quote(rel)} in the release "
                              f"{self.release_root}: {exc.strerror or exc}") from None
        if self.hashes is not None and sha256_fingerprint(payload) != self.hashes.get(image_id):
            raise SourceError(f"{self.table}: image {quote(image_id)}: the bytes of {quote(rel)} do not match the "
                              "sha256 recorded at curation (the file changed, or the curated folder was edited); "
                              "nothing is read from it — curate the release again (aadb curate)")
        return payload


def _manifest_test_list(manifest: dict, manifest_file: Path) -> str | None:
    """The manifest's ``test_list``: None (unknown) or one of the release's label lists
    (:data:`~aadb_toolkit.schema.TEST_LISTS`). It names files in the dataset card's text and YAML,
    so any other value (markup, a number) is refused here rather than carried into the card."""
    value = manifest.get("test_list")
    if value is not None and value not in schema.TEST_LISTS:
        raise SourceError(f"{manifest_file}: field 'test_list' is {quote(value)}, expected one of "
                          f"{list(schema.TEST_LISTS)} or null; curate the release again (aadb curate)")
    return value


def _manifest_setting(manifest: dict, path: Path) -> dict | None:
    """The generator's setting a simulated release's manifest records (None for real data)."""
    raw = manifest.get("synthetic_setting")
    if raw is None:
        return None
    try:
        return setting_record(raw if isinstance(raw, dict) else {})
    except ValueError as exc:
        raise SourceError(f"{path / 'manifest.json'}: synthetic_setting: {exc.args[0]}; curate the release "
                          "again (aadb curate)") from None


def curated_is_synthetic(manifest: dict, release_root: str | Path) -> bool:
    """A curated folder is synthetic when its manifest says so, or when its release is one the
    simulator wrote (:func:`is_simulated_release`; a manifest curated before the mark). The loader
    and ``aadb curate relocate`` (which keeps the mark when the release moves) both ask this."""
    return bool(manifest.get("synthetic")) or is_simulated_release(release_root)


def is_simulated_release(release: str | Path) -> bool:
    """Whether ``aadb simulate`` wrote the release folder ``release``: its output marker of kind
    :data:`~aadb_toolkit.schema.SIMULATED_RELEASE_KIND` lies *inside* it. The one rule for
    "synthetic" of a release: a real release has no marker, whatever lies beside it (a sibling
    ``X.truth`` folder is anyone's to make, so it proves nothing and is never read here)."""
    marker = read_marker(release)
    return marker is not None and marker.get("kind") == schema.SIMULATED_RELEASE_KIND

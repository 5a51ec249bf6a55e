"""Push a published AADB folder to the Hugging Face Hub as a dataset repository.

The shards are uploaded first, in chunks, to the Hub's large-file storage under their final paths
(`preupload_lfs_files`): this is resumable, since blobs the Hub already holds are not sent again.
Then a single commit adds every file and deletes the repository's stale shards, so the repository
shows either the previous release or the new one, never a mix. The token comes from the standard
places (`HF_TOKEN`, the login cache) via `huggingface_hub.get_token()` and is never printed."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import AADBError, InputError
from . import card as card_mod
from . import layout
from .reader import is_published_folder

log = logging.getLogger(__name__)

#: Bytes of shards uploaded per pre-upload call (each call is a unit that need not be redone).
UPLOAD_CHUNK_BYTES = 1024**3
#: Files of a remote repository that a push never deletes.
KEEP_REMOTE = frozenset({".gitattributes"})


@dataclass(frozen=True)
class PushPlan:
    """What a push sends: every file of the folder with its size, in upload order."""

    repo_id: str
    files: list[tuple[str, int]]
    gated: bool
    private: bool

    @property
    def total_bytes(self) -> int:
        return sum(size for _, size in self.files)


@dataclass(frozen=True)
class PushResult:
    """The outcome of :func:`push`: the plan, and (unless a dry run) the commit made."""

    plan: PushPlan
    dry_run: bool
    commit_url: str | None = None
    commit_oid: str | None = None
    deleted: list[str] = field(default_factory=list)
    #: The repository's visibility as the Hub reported it before the upload (None for a dry run):
    #: the only ground for saying a push went to a private repository.
    private: bool | None = None


def plan_push(folder: Path, repo_id: str, *, private: bool = False) -> PushPlan:
    """List what :func:`push` would upload from ``folder`` (no network)."""
    folder = Path(folder)
    if not is_published_folder(folder):
        raise InputError("not a published AADB dataset folder (run `aadb publish` first)", file=str(folder))
    card_mod.validate_card(folder)
    files = [(p.relative_to(folder).as_posix(), p.stat().st_size)
             for p in sorted(folder.rglob("*")) if p.is_file() and not _hidden(p.relative_to(folder))]
    meta = card_mod.read_metadata(folder / layout.README)
    return PushPlan(repo_id=repo_id, files=files, gated=bool(meta.get("extra_gated_prompt")), private=private)


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def push(folder: Path, repo_id: str, *, private: bool = False, dry_run: bool = False,
         token: str | None = None, revision: str | None = None) -> PushResult:
    """Upload a published folder to the dataset repo ``repo_id`` (created if needed) in one commit.

    With ``dry_run`` only the plan is returned. A card with gating fields turns on access requests
    (``gated="auto"``) before any data is committed. With ``private`` the repository must be private
    once created: the Hub keeps an existing repository's visibility, so a public one is refused
    before anything is sent (see :func:`_prepare_repo`).
    """
    plan = plan_push(folder, repo_id, private=private)
    if dry_run:
        return PushResult(plan=plan, dry_run=True)
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, get_token
    from huggingface_hub.errors import HfHubHTTPError

    token = token or get_token()
    if not token:
        raise AADBError("no Hugging Face token found: run `hf auth login` or set HF_TOKEN")
    api = HfApi(token=token)
    folder = Path(folder)
    try:
        visible_private = _prepare_repo(api, plan)
        remote = set(api.list_repo_files(repo_id, repo_type="dataset", revision=revision))
        additions = [CommitOperationAdd(path_in_repo=path, path_or_fileobj=str(folder / path))
                     for path, _ in plan.files]
        for chunk in _chunks(additions, dict(plan.files)):
            api.preupload_lfs_files(repo_id, additions=chunk, repo_type="dataset", revision=revision)
            log.info("uploaded %d file(s) to %s", len(chunk), repo_id)
        local = {path for path, _ in plan.files}
        stale = sorted(p for p in remote if p not in local and p not in KEEP_REMOTE)
        operations = [*additions, *(CommitOperationDelete(path_in_repo=p) for p in stale)]
        info = api.create_commit(repo_id, operations=operations, repo_type="dataset", revision=revision,
                                 commit_message=f"Publish AADB ({len(plan.files)} files)")
    except HfHubHTTPError as exc:
        # The message of an HTTP error names the URL and status, never the Authorization header.
        raise AADBError(f"push to {repo_id} failed: {exc}") from exc
    except _network_errors() as exc:  # no network, DNS, refused or dropped connection, timeout
        raise AADBError(f"push to {repo_id} failed: cannot reach {api.endpoint} ({type(exc).__name__}; no "
                        "network?); nothing was committed — run the push again when the Hub can be reached") from exc
    return PushResult(plan=plan, dry_run=False, commit_url=getattr(info, "commit_url", None),
                      commit_oid=getattr(info, "oid", None), deleted=stale, private=visible_private)


def _prepare_repo(api, plan: PushPlan) -> bool:
    """Create the dataset repo if needed, check its visibility, then turn on gating; returns whether
    the repo is private. ``create_repo`` ignores ``private`` for a repo that already exists, so the
    visibility is read back (``repo_info``): a push asked to be private into a repo that is not is
    refused before any setting or file changes, since changing a user's repo settings is theirs to do."""
    repo_id = plan.repo_id
    api.create_repo(repo_id, repo_type="dataset", private=True if plan.private else None, exist_ok=True)
    private = getattr(api.repo_info(repo_id, repo_type="dataset"), "private", None)
    if plan.private and private is not True:
        state = "is public" if private is False else "has a visibility the Hub did not report"
        raise InputError(f"push to {repo_id} refused: --private was asked, but the dataset repository already "
                        f"exists and {state}, and the Hub keeps an existing repository's visibility; nothing was "
                        f"uploaded. Make it private in its settings ({api.endpoint}/datasets/{repo_id}/settings, "
                        "or `HfApi().update_repo_settings(repo_id, repo_type=\"dataset\", private=True)`) and push "
                        "again, or push without --private to publish it publicly", field="--private")
    if plan.gated:
        api.update_repo_settings(repo_id, repo_type="dataset", gated="auto")
    return bool(private)


def _network_errors() -> tuple[type[BaseException], ...]:
    """The exceptions of the Hub client's HTTP stack for a connection that fails (httpx in recent
    huggingface_hub releases, requests before; both are caught, as either may be installed)."""
    import importlib

    errors: list[type[BaseException]] = [OSError]  # requests' ConnectionError and timeouts are OSErrors
    for name in ("httpx", "httpx2"):  # the client's HTTP library, under either of its distribution names
        try:
            errors.append(importlib.import_module(name).TransportError)
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


def _chunks(additions: list, sizes: dict[str, int]) -> list[list]:
    """Group uploads into chunks of about ``UPLOAD_CHUNK_BYTES``."""
    chunks, current, total = [], [], 0
    for op in additions:
        current.append(op)
        total += sizes[op.path_in_repo]
        if total >= UPLOAD_CHUNK_BYTES:
            chunks.append(current)
            current, total = [], 0
    if current:
        chunks.append(current)
    return chunks

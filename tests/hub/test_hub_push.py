"""Push: dry run without network, and real `huggingface_hub` uploads against a fake Hub behind a
mocked HTTP transport (no network at all): one commit with every file, stale shards deleted,
interrupted pushes leave the remote untouched and resume without re-sending stored blobs, and the
token never reaches logs, stdout or error messages."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from pathlib import Path

import pytest

from aadb_toolkit import hub, sources
from aadb_toolkit.errors import AADBError, InputError

TOKEN = "hf_FAKEsecretTOKENvalue0123456789abcdef"
REPO = "org/aadb"


class FakeHub:
    """Just enough of the Hub's HTTP API for create_repo, settings, tree listing, preupload, the LFS
    batch protocol and commits; records every request."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.files: dict[str, bytes] = {".gitattributes": b"*.parquet filter=lfs\n",
                                         "data/old-00000-of-00001.parquet": b"stale"}
        self.lfs: dict[str, bytes] = {}
        self.commits: list[dict] = []
        self.requests: list[tuple[str, str]] = []
        self.auth: set[str] = set()
        self.settings: dict = {}
        self.created: list[dict] = []
        self.fail_commit = False
        self.validated: list[str] = []
        #: The repository's visibility: None until created (creating it sets it), like the Hub, which
        #: ignores the visibility asked of `create_repo` for a repository that already exists.
        self.private: bool | None = None

    def _oid(self, path: str) -> str | None:
        """The Hub's oid of a stored file: sha256 for LFS files, the git blob sha1 otherwise."""
        if path not in self.files:
            return None
        body = self.files[path]
        if path.endswith(".parquet"):
            return hashlib.sha256(body).hexdigest()
        return hashlib.sha1(b"blob %d\0" % len(body) + body).hexdigest()

    def __call__(self, request):
        import httpx2

        self.requests.append((request.method, request.url.path))
        if "authorization" in request.headers:
            self.auth.add(request.headers["authorization"])
        path = request.url.path
        base = "/api/datasets/org/aadb"
        if request.method == "POST" and path == "/api/repos/create":
            self.created.append(json.loads(request.content))
            if self.private is None:
                self.private = self.created[-1].get("visibility") == "private"
            return httpx2.Response(200, json={"url": f"{self.endpoint}/datasets/{REPO}"})
        if request.method == "POST" and path == "/api/validate-yaml":
            # the Hub validates README.md metadata before a commit that touches it
            body = json.loads(request.content)
            self.validated.append(body["repoType"])
            ok = body["content"].startswith("---\n") and "\nconfigs:\n" in body["content"]
            return httpx2.Response(200 if ok else 400, json={"errors": [] if ok else [{"message": "bad"}],
                                                              "warnings": []})
        if request.method == "GET" and path == base:  # repo_info: the repository's visibility
            return httpx2.Response(200, json={"id": REPO, "private": bool(self.private), "sha": f"{len(self.commits):040d}",
                                              "siblings": [{"rfilename": p} for p in sorted(self.files)]})
        if request.method == "PUT" and path == f"{base}/settings":
            self.settings.update(json.loads(request.content))
            return httpx2.Response(200, json={})
        if request.method == "GET" and path.startswith(f"{base}/tree/main"):
            return httpx2.Response(200, json=[
                {"type": "file", "path": p, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                for p, b in sorted(self.files.items())])
        if request.method == "POST" and path == f"{base}/preupload/main":
            files = json.loads(request.content)["files"]
            return httpx2.Response(200, json={"files": [
                {"path": f["path"], "uploadMode": "lfs" if f["path"].endswith(".parquet") else "regular",
                 "shouldIgnore": False, "oid": self._oid(f["path"])} for f in files]})
        if request.method == "GET" and path == f"{base}/revision/main":
            return httpx2.Response(200, json={"id": REPO, "sha": f"{len(self.commits):040d}",
                                              "siblings": [{"rfilename": p} for p in sorted(self.files)]})
        if request.method == "POST" and path == "/datasets/org/aadb.git/info/lfs/objects/batch":
            objects = json.loads(request.content)["objects"]
            out = []
            for o in objects:
                item = {"oid": o["oid"], "size": o["size"]}
                if o["oid"] not in self.lfs:
                    item["actions"] = {"upload": {"href": f"{self.endpoint}/lfs-upload/{o['oid']}"}}
                out.append(item)
            return httpx2.Response(200, json={"transfer": "basic", "objects": out})
        if request.method == "PUT" and path.startswith("/lfs-upload/"):
            oid = path.rsplit("/", 1)[1]
            body = request.read()
            assert hashlib.sha256(body).hexdigest() == oid
            self.lfs[oid] = body
            return httpx2.Response(200)
        if request.method == "POST" and path == f"{base}/commit/main":
            if self.fail_commit:
                return httpx2.Response(409, json={"error": "simulated interruption before the commit"})
            lines = [json.loads(line) for line in request.content.decode().splitlines() if line.strip()]
            commit = {"added": {}, "deleted": []}
            for line in lines:
                v = line["value"]
                if line["key"] == "file":
                    commit["added"][v["path"]] = base64.b64decode(v["content"])
                elif line["key"] == "lfsFile":
                    commit["added"][v["path"]] = self.lfs[v["oid"]]
                elif line["key"] == "deletedFile":
                    commit["deleted"].append(v["path"])
            self.commits.append(commit)
            for p in commit["deleted"]:
                self.files.pop(p, None)
            self.files.update(commit["added"])
            return httpx2.Response(200, json={"commitUrl": f"{self.endpoint}/datasets/{REPO}/commit/c{len(self.commits)}",
                                              "commitOid": f"{len(self.commits):040d}", "pullRequestUrl": None})
        return httpx2.Response(404, json={"error": f"fake hub: no route {request.method} {path}"})


@pytest.fixture()
def fake_hub(monkeypatch):
    import httpx2
    from huggingface_hub import constants, set_client_factory
    from huggingface_hub.utils._http import default_client_factory

    fake = FakeHub(constants.ENDPOINT)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)  # the LFS protocol; Xet needs a real CAS server
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(fake)))
    try:
        yield fake
    finally:
        set_client_factory(default_client_factory)


@pytest.fixture(scope="module")
def published(tiny_curated, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("push") / "hubdir"
    hub.publish(sources.load(tiny_curated), out, gated=True, repo_id=REPO)
    return out


def _local_files(folder: Path) -> dict[str, bytes]:
    """What an upload carries: every file except the toolkit's local output marker."""
    from aadb_toolkit._atomic import MARKER_FILE

    assert (folder / MARKER_FILE).is_file()
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*")
            if p.is_file() and p.name != MARKER_FILE}


def test_dry_run_lists_files_without_network(published, monkeypatch):
    import huggingface_hub

    def no_network(*a, **k):
        raise AssertionError("dry run must not touch the network")

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", no_network)
    result = hub.push(published, REPO, dry_run=True)
    assert result.dry_run and result.commit_oid is None
    assert dict(result.plan.files) == {k: len(v) for k, v in _local_files(published).items()}
    assert result.plan.gated and result.plan.total_bytes == sum(len(v) for v in _local_files(published).values())


def test_push_is_one_commit_and_never_leaks_the_token(published, fake_hub, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    result = hub.push(published, REPO, private=True)
    assert fake_hub.created[0]["visibility"] == "private" and fake_hub.created[0]["type"] == "dataset"
    assert fake_hub.settings.get("gated") == "auto"
    assert len(fake_hub.commits) == 1
    commit = fake_hub.commits[0]
    assert commit["added"] == _local_files(published)
    assert commit["deleted"] == ["data/old-00000-of-00001.parquet"] == result.deleted
    assert set(fake_hub.files) == set(_local_files(published)) | {".gitattributes"}
    assert fake_hub.auth == {f"Bearer {TOKEN}"}
    assert fake_hub.validated == ["dataset"]
    assert result.commit_oid == f"{1:040d}"
    captured = capsys.readouterr()
    for text in (caplog.text, captured.out, captured.err, repr(result)):
        assert TOKEN not in text


def test_interrupted_push_leaves_remote_untouched_and_resumes(published, fake_hub, caplog, capsys):
    before = dict(fake_hub.files)
    fake_hub.fail_commit = True
    with pytest.raises(AADBError, match="push to org/aadb failed") as err:
        hub.push(published, REPO)
    assert TOKEN not in str(err.value)
    assert fake_hub.files == before and fake_hub.commits == []  # nothing visible changed
    stored = dict(fake_hub.lfs)
    assert len(stored) == len(list(published.rglob("*.parquet")))  # the shards were staged in LFS storage
    uploads_before = sum(1 for m, p in fake_hub.requests if p.startswith("/lfs-upload/"))
    fake_hub.fail_commit = False
    hub.push(published, REPO)
    uploads_after = sum(1 for m, p in fake_hub.requests if p.startswith("/lfs-upload/"))
    assert uploads_after == uploads_before  # resumed: no blob was sent twice
    assert len(fake_hub.commits) == 1 and fake_hub.commits[0]["added"] == _local_files(published)
    assert TOKEN not in caplog.text + "".join(capsys.readouterr())


def test_pushing_an_identical_folder_again_makes_no_commit(published, fake_hub):
    hub.push(published, REPO)
    uploads = sum(1 for _, p in fake_hub.requests if p.startswith("/lfs-upload/"))
    result = hub.push(published, REPO)
    assert len(fake_hub.commits) == 1  # the Hub client skipped the unchanged files: no empty commit
    assert sum(1 for _, p in fake_hub.requests if p.startswith("/lfs-upload/")) == uploads
    assert result.commit_oid == f"{1:040d}"  # the current head


def test_cli_push(tiny_curated, fake_hub, tmp_path, capsys):
    from aadb_toolkit.cli import main

    rc = main(["publish", "--curated", str(tiny_curated), "--out", str(tmp_path / "hubdir"),
               "--repo-id", REPO, "--push"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "uploaded 9 files" in out and "commit: " in out and "deleted stale data/old-00000-of-00001.parquet" in out
    assert TOKEN not in out + err
    assert len(fake_hub.commits) == 1


def test_push_without_token_is_a_clear_error(published, monkeypatch):
    import huggingface_hub

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(AADBError, match="no Hugging Face token"):
        hub.push(published, REPO)


def test_push_refuses_a_folder_that_is_not_published(tmp_path):
    with pytest.raises(InputError, match="not a published AADB dataset folder"):
        hub.push(tmp_path, REPO, dry_run=True)


def test_large_uploads_go_in_several_preupload_chunks_and_one_commit(published, fake_hub, monkeypatch):
    from aadb_toolkit.hub import upload

    monkeypatch.setattr(upload, "UPLOAD_CHUNK_BYTES", 50_000)
    hub.push(published, REPO)
    preuploads = [p for m, p in fake_hub.requests if p.endswith("/preupload/main")]
    assert len(preuploads) >= 3  # one per chunk (create_commit asks nothing more: modes are known)
    assert len(fake_hub.commits) == 1 and fake_hub.commits[0]["added"] == _local_files(published)


def _sent_anything(fake: FakeHub) -> bool:
    """Whether a push changed the fake Hub: settings, staged blobs, preuploads or a commit."""
    return bool(fake.settings or fake.lfs or fake.commits
                or any(p.endswith("/preupload/main") or p.startswith("/lfs-upload/") for _, p in fake.requests))


def test_private_push_to_an_existing_public_repo_is_refused_before_anything_is_sent(published, fake_hub):
    """Review (safety 4): `create_repo(private=True, exist_ok=True)` leaves an existing public repo
    public, and the push uploaded into it anyway; now it is refused, and the repo's settings kept."""
    fake_hub.private = False
    before = dict(fake_hub.files)
    with pytest.raises(InputError, match="exists and is public") as err:
        hub.push(published, REPO, private=True)
    message = str(err.value)
    assert "private" in message and "without --private" in message and REPO in message
    assert not _sent_anything(fake_hub) and fake_hub.files == before and fake_hub.private is False


def test_cli_private_push_to_a_public_repo_fails_and_never_says_private(tiny_curated, fake_hub, tmp_path, capsys):
    from aadb_toolkit.cli import main

    fake_hub.private = False
    rc = main(["publish", "--data", str(tiny_curated), "--out", str(tmp_path / "hubdir"), "--repo-id", REPO,
               "--push", "--private", "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 1 and "exists and is public" in err, err
    assert "(private)" not in out and "uploaded" not in out and not _sent_anything(fake_hub)


@pytest.mark.parametrize("existing", [None, True], ids=["new_repo", "existing_private_repo"])
def test_private_push_reports_the_visibility_it_checked(published, fake_hub, existing):
    fake_hub.private = existing
    result = hub.push(published, REPO, private=True)
    assert result.private is True and len(fake_hub.commits) == 1


def test_push_without_private_reports_a_public_repo_as_public(published, fake_hub):
    fake_hub.private = False
    result = hub.push(published, REPO)
    assert result.private is False and len(fake_hub.commits) == 1

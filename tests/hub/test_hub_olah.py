"""End to end against a real Hub-compatible server: the published folder is committed to a local
git repository and served on loopback by the `olah` mirror (``mirrors-path``, offline mode); then
the stock `datasets` client and `aadb_toolkit.sources.load` read ``org/aadb`` from it through
``HF_ENDPOINT``. The test starts and stops the server itself."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from aadb_toolkit import hub, schema, sources

pytestmark = pytest.mark.slow

REPO = "org/aadb"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _git(*args: str, cwd: Path) -> None:
    env = {**os.environ, "GIT_AUTHOR_DATE": "2020-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2020-01-01T00:00:00Z",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "-c", "user.name=aadb-test", "-c", "user.email=aadb@example.invalid", *args],
                   cwd=cwd, env=env, check=True, capture_output=True, timeout=60)


#: Proxy settings for every process of these tests: loopback is reached directly, anything else
#: goes to a closed loopback port and fails (the client subprocesses also refuse such connects).
DEAD_PROXY = "http://127.0.0.1:9"
NO_NETWORK_ENV = {"HTTP_PROXY": DEAD_PROXY, "HTTPS_PROXY": DEAD_PROXY, "ALL_PROXY": DEAD_PROXY,
                  "http_proxy": DEAD_PROXY, "https_proxy": DEAD_PROXY, "all_proxy": DEAD_PROXY,
                  "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}

#: Prepended to each client script: a connect to a non-loopback address is refused and recorded in
#: the file named by AADB_TEST_NET_LOG, which the test then requires to be empty.
LOOPBACK_GUARD = textwrap.dedent('''\
    import ipaddress, os, socket
    _real_connect, _real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    def _check(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = str(address[0]).split("%")[0]
            try:
                loopback = ipaddress.ip_address(host).is_loopback
            except ValueError:
                loopback = host == "localhost"
            if not loopback:
                with open(os.environ["AADB_TEST_NET_LOG"], "a") as f:
                    f.write(f"{address}\\n")
                raise OSError(f"test guard: non-loopback connection to {address} refused")
    def _connect(self, address):
        _check(self, address)
        return _real_connect(self, address)
    def _connect_ex(self, address):
        _check(self, address)
        return _real_connect_ex(self, address)
    socket.socket.connect, socket.socket.connect_ex = _connect, _connect_ex
    ''')


def _client_env(tmp_path: Path, endpoint: str) -> dict[str, str]:
    """A clean environment for a client subprocess: no HF settings of the caller, the mirror as
    endpoint, fresh caches, no route off the machine."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "HUGGINGFACE_")) and k.lower() not in {k2.lower() for k2 in NO_NETWORK_ENV}}
    env.update(NO_NETWORK_ENV, HF_ENDPOINT=endpoint, HF_HOME=str(tmp_path / "hf-home"),
               HF_DATASETS_CACHE=str(tmp_path / "hf-datasets"), HF_HUB_DISABLE_TELEMETRY="1",
               AADB_TEST_NET_LOG=str(tmp_path / "non-loopback.log"))
    return env


def _assert_no_outside_traffic(tmp_path: Path) -> None:
    log = tmp_path / "non-loopback.log"
    assert not log.exists(), f"a client tried to leave the machine: {log.read_text()}"


def _wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy of the caller
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"olah exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with direct.open(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    raise RuntimeError(f"olah not ready after {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def olah_server(tiny_curated, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("olah")
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    pytest.importorskip("olah")
    mirrors = tmp_path / "mirrors"
    repo = mirrors / "datasets" / REPO
    hub.publish(sources.load(tiny_curated), repo, repo_id=REPO)
    _git("init", "-q", "-b", "main", cwd=repo)
    _git("add", "-A", cwd=repo)
    _git("commit", "-q", "-m", "Publish AADB", cwd=repo)
    for attempt in range(3):  # a free port can be taken before olah binds it: retry on another
        port = _free_port()
        log = tmp_path / f"olah-{attempt}.log"
        proc = _start_olah(tmp_path, mirrors, port, log)
        try:
            _wait_ready(f"http://127.0.0.1:{port}/api/datasets/{REPO}/revision/main", proc, log)
        except RuntimeError:
            _stop(proc)
            if attempt == 2 or "address already in use" not in log.read_text().lower():
                raise
            continue
        break
    try:
        yield f"http://127.0.0.1:{port}", log
    finally:
        _stop(proc)


def _start_olah(tmp_path: Path, mirrors: Path, port: int, log: Path) -> subprocess.Popen:
    """Start olah on loopback in offline mode, serving the git repositories under ``mirrors``."""
    config = tmp_path / f"olah-{port}.toml"
    config.write_text(textwrap.dedent(f"""\
        [basic]
        host = "127.0.0.1"
        port = {port}
        repos-path = "{tmp_path / 'olah-cache'}"
        mirrors-path = ["{mirrors}"]

        [accessibility]
        offline = true
        """))
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-c", "from olah.server import cli; cli()", "--config", str(config),
             "--log-path", str(tmp_path / "olah-logs")],
            cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env={**{k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))},
                 **NO_NETWORK_ENV})


def _stop(proc: subprocess.Popen) -> None:
    """Terminate the server's whole process group (SIGKILL after 15 s), even if its leader exited."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=15)
            break
        except subprocess.TimeoutExpired:
            continue
    if proc.poll() is None:
        proc.wait(timeout=15)


CLIENT = textwrap.dedent("""\
    import hashlib, json, sys
    from pathlib import Path
    import datasets, pandas as pd
    from aadb_toolkit import sources
    out = Path(sys.argv[1]); repo = sys.argv[2]
    rows, nested = [], []
    images = datasets.load_dataset(repo)
    for split in images:
        d = images[split].cast_column("image", datasets.Image(decode=False))
        for row in d:
            rows.append({"image_id": row["image_id"], "split": split, "row_split": row["split"],
                         "score_mean": row["score_mean"],
                         "sha256": hashlib.sha256(row["image"]["bytes"]).hexdigest()})
            nested += [{"image_id": row["image_id"], **r} for r in row["ratings"]]
    pd.DataFrame(rows).to_parquet(out / "images.parquet")
    pd.DataFrame(nested).to_parquet(out / "nested.parquet")
    ratings = datasets.load_dataset(repo, "ratings")
    pd.concat([ratings[s].to_pandas().assign(hf_split=s) for s in ratings]).to_parquet(out / "ratings.parquet")
    data = sources.load(repo)
    data.images.to_parquet(out / "src_images.parquet")
    data.ratings.to_parquet(out / "src_ratings.parquet")
    json.dump({i: hashlib.sha256(data.image_bytes(i)).hexdigest() for i in data.images["image_id"]},
              open(out / "src_bytes.json", "w"))
    print("origin", data.origin)
    """)


def _key(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["image_id", "batch_id", "rater_id"]).reset_index(drop=True)


def test_load_dataset_from_olah_mirror_equals_curated(olah_server, tiny_curated, tmp_path):
    endpoint, log = olah_server
    result = tmp_path / "result"
    result.mkdir()
    env = _client_env(tmp_path, endpoint)
    proc = subprocess.run([sys.executable, "-c", LOOPBACK_GUARD + CLIENT, str(result), REPO], env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:] + "\n--- olah log ---\n" + log.read_text()[-2000:]
    _assert_no_outside_traffic(tmp_path)
    assert str(tmp_path / "hf-home") in proc.stdout  # the repo came through the Hub cache, not a local path
    served = log.read_text()
    assert f"/api/datasets/{REPO}" in served and "/resolve/" in served

    curated = sources.load(tiny_curated)
    want_bytes = {i: hashlib.sha256(curated.image_bytes(i)).hexdigest() for i in curated.images["image_id"]}
    split_of = dict(zip(curated.images["image_id"], curated.images["split"]))

    images = pd.read_parquet(result / "images.parquet")
    assert len(images) == 200 and images["image_id"].is_unique
    assert dict(zip(images["image_id"], images["sha256"])) == want_bytes
    assert dict(zip(images["image_id"], images["split"])) == split_of
    assert (images["split"] == images["row_split"]).all()

    want_ratings = _key(curated.ratings)
    nested = _key(pd.read_parquet(result / "nested.parquet")[list(schema.RATING_COLUMNS)])
    pd.testing.assert_frame_equal(nested, want_ratings, check_dtype=False)
    ratings = pd.read_parquet(result / "ratings.parquet")
    assert (ratings["image_id"].map(split_of) == ratings["hf_split"]).all()
    pd.testing.assert_frame_equal(_key(ratings[list(schema.RATING_COLUMNS)]), want_ratings, check_dtype=False)

    src_images = pd.read_parquet(result / "src_images.parquet")
    pd.testing.assert_frame_equal(src_images.sort_values("image_id").reset_index(drop=True),
                                  curated.images.sort_values("image_id").reset_index(drop=True))
    pd.testing.assert_frame_equal(_key(pd.read_parquet(result / "src_ratings.parquet")), want_ratings)
    assert json.loads((result / "src_bytes.json").read_text()) == want_bytes


OFFLINE_CLIENT = textwrap.dedent("""\
    import sys
    from aadb_toolkit import sources
    from aadb_toolkit.errors import SourceError
    data = sources.load(sys.argv[1])
    print("images", len(data.images), "ratings", len(data.ratings))
    try:
        sources.load("org/never-downloaded")
    except SourceError as exc:
        print("error", exc)
    """)


def test_offline_mode_reads_the_hub_cache(olah_server, tmp_path):
    endpoint, _ = olah_server
    env = _client_env(tmp_path, endpoint)
    warm = subprocess.run([sys.executable, "-c", LOOPBACK_GUARD + "from aadb_toolkit import sources; "
                           "sources.load('org/aadb')"], env=env, capture_output=True, text=True, timeout=120)
    assert warm.returncode == 0, warm.stderr[-3000:]
    # now offline, and the endpoint points at a closed port: only the cache can answer
    env.update(HF_HUB_OFFLINE="1", HF_ENDPOINT=f"http://127.0.0.1:{_free_port()}")
    proc = subprocess.run([sys.executable, "-c", LOOPBACK_GUARD + OFFLINE_CLIENT, REPO], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _assert_no_outside_traffic(tmp_path)
    assert "images 200 ratings 1000" in proc.stdout
    assert "error org/never-downloaded: not in the local cache" in proc.stdout

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


def _wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"olah exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
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
    hub.publish(tiny_curated, repo, repo_id=REPO)
    _git("init", "-q", "-b", "main", cwd=repo)
    _git("add", "-A", cwd=repo)
    _git("commit", "-q", "-m", "Publish AADB", cwd=repo)
    port = _free_port()
    config = tmp_path / "olah.toml"
    config.write_text(textwrap.dedent(f"""\
        [basic]
        host = "127.0.0.1"
        port = {port}
        repos-path = "{tmp_path / 'olah-cache'}"
        mirrors-path = ["{mirrors}"]

        [accessibility]
        offline = true
        """))
    log = tmp_path / "olah.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from olah.server import cli; cli()", "--config", str(config),
             "--log-path", str(tmp_path / "olah-logs")],
            cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_ready(f"http://127.0.0.1:{port}/api/datasets/{REPO}/revision/main", proc, log)
        yield f"http://127.0.0.1:{port}", log
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
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
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(tmp_path / "hf-home"),
               HF_DATASETS_CACHE=str(tmp_path / "hf-datasets"), HF_HUB_DISABLE_TELEMETRY="1",
               NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    proc = subprocess.run([sys.executable, "-c", CLIENT, str(result), REPO], env=env, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:] + "\n--- olah log ---\n" + log.read_text()[-2000:]
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
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(tmp_path / "hf-home"), HF_HUB_DISABLE_TELEMETRY="1",
               NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    warm = subprocess.run([sys.executable, "-c", "from aadb_toolkit import sources; sources.load('org/aadb')"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert warm.returncode == 0, warm.stderr[-3000:]
    # now offline, and the endpoint points at a closed port: only the cache can answer
    env.update(HF_HUB_OFFLINE="1", HF_ENDPOINT=f"http://127.0.0.1:{_free_port()}")
    proc = subprocess.run([sys.executable, "-c", OFFLINE_CLIENT, REPO], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "images 200 ratings 1000" in proc.stdout
    assert "error org/never-downloaded: not in the local cache" in proc.stdout

"""The human-consistency report: files, content beside the paper's numbers, determinism, the CLI,
and a real headless-Chromium rendering that checks every embedded figure decodes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from aadb_toolkit import paper, sources
from aadb_toolkit.cli import main as cli_main
from aadb_toolkit.reports import human_consistency

from tiny_data import make_tiny_curated

CHROMIUM = "/usr/bin/chromium"
FIGURES = set(human_consistency.FIGURE_FILES.values())


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    cur = make_tiny_curated(root, n_batches=60, seed=5, image_size=8, noise_raters=0.2)
    data = sources.load(cur)
    test = data.split("test")
    truth = pd.read_parquet(root / "truth_images.parquet").set_index("image_id")["latent_quality"]
    noise = np.random.default_rng(0).normal(0, 0.5, len(test))
    pd.DataFrame({"image_id": test["image_id"], "score": truth.loc[test["image_id"]].to_numpy() + noise}).to_csv(
        root / "pred.csv", index=False)
    out = root / "out"
    paths = human_consistency.write_report(sources.load(cur), out, predictions=root / "pred.csv", n_perm=500, rater_n_perm=300,
                                           n_boot=100, thresholds=(0, 50, 100))
    return root, cur, out, paths


def test_report_files_and_content(built):
    root, cur, out, paths = built
    html = (out / "report.html").read_text(encoding="utf-8")
    md = (out / "report.md").read_text(encoding="utf-8")
    # self-contained: every image is a data: URI, nothing is fetched
    assert len(re.findall(r'<img src="data:image/png;base64,', html)) == len(FIGURES)
    assert not re.search(r'(src|href)="(?!data:)', html)
    for name in FIGURES:
        assert f"]({name})" in md and (out / name).read_bytes()[:4] == b"\x89PNG"
    # Table 6 beside the paper's numbers, with the model's ρ
    for text in ("paper (AADB)", f"{paper.TABLE6_HUMAN[100][1]:.4f}", f"{paper.TABLE6_OUR_BEST_RHO:.4f}",
                 f"{paper.CONSISTENCY_PERCENT_SIGNIFICANT:.2f} %", "Krippendorff", "ICC", "Methods in plain words"):
        assert text in html and text in md, text
    hc = json.loads((out / "human_consistency.json").read_text())
    assert [g["min_images"] for g in hc["thresholds"]] == [0, 50, 100]
    assert hc["model_rho_overall"] > 0.5 and hc["predictions_file"] == "pred.csv"
    cons = json.loads((out / "consistency.json").read_text())
    assert cons["n_batches"] == 60 and cons["n_perm"] == 500
    rel = json.loads((out / "reliability.json").read_text())
    assert set(rel["krippendorff_alpha"]) == {"ordinal", "interval"}
    raters = pd.read_csv(out / "rater_reliability.csv")
    truth = pd.read_parquet(root / "truth_raters.parquet")
    merged = raters.merge(truth, on="rater_id")
    busy = merged[merged["n_images"] >= 50]
    assert (busy["chance_like"] == busy["random"]).all()  # planted random raters with enough images are flagged
    assert f"{hc['thresholds'][0]['mean_rho']:.4f}" in html


def test_report_is_deterministic(built, tmp_path):
    root, cur, out, _ = built
    again = tmp_path / "again"
    human_consistency.write_report(sources.load(cur), again, predictions=root / "pred.csv", n_perm=500, rater_n_perm=300,
                                   n_boot=100, thresholds=(0, 50, 100))
    assert (again / "report.md").read_text() == (out / "report.md").read_text()
    assert (again / "report.html").read_bytes() == (out / "report.html").read_bytes()


def test_cli_report(built, tmp_path, capsys):
    root, cur, _, _ = built
    rc = cli_main(["report", "human-consistency", "--data", str(cur), "--out", str(tmp_path / "r"),
                   "--n-perm", "200", "--rater-n-perm", "100", "--n-boot", "20", "--thresholds", "0", "20"])
    assert rc == 0 and (tmp_path / "r" / "report.html").is_file()
    assert "model ρ" not in (tmp_path / "r" / "report.md").read_text().split("## 3.")[0]
    bad = tmp_path / "bad.csv"
    bad.write_text("image_id,score\nnot_an_image,1.0\n")
    rc = cli_main(["report", "human-consistency", "--data", str(cur), "--out", str(tmp_path / "r2"),
                   "--predictions", str(bad), "--n-perm", "50"])
    assert rc == 1 and "unknown image_id" in capsys.readouterr().err
    assert not (tmp_path / "r2" / "report.html").exists()
    with pytest.raises(SystemExit):
        cli_main(["report", "human-consistancy", "--data", str(cur), "--out", str(tmp_path / "r3")])


_PROBE = ('<script>window.addEventListener("load",function(){var o=document.createElement("pre");o.id="probe";'
          'o.textContent=Array.from(document.images).map(function(i){return i.getAttribute("data-file")+"="+'
          '(i.complete?i.naturalWidth:0)}).join(";");document.body.appendChild(o);});</script>')


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", "--virtual-time-budget=5000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.mark.browser
@pytest.mark.slow
def test_report_renders_in_headless_chromium(built, tmp_path):
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip(f"headless Chromium not installed ({CHROMIUM}); apt-get install chromium to run this test")
    _, _, out, _ = built
    probe = tmp_path / "probe.html"
    probe.write_text((out / "report.html").read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"),
                     encoding="utf-8")
    res = _chromium(["--dump-dom", probe.as_uri()], tmp_path / "profile1")
    m = re.search(r'<pre id="probe">([^<]*)</pre>', res.stdout)
    assert m, f"probe not found in the DOM; chromium stderr: {res.stderr[-2000:]}"
    widths = dict(item.split("=") for item in m.group(1).split(";"))
    assert set(widths) == FIGURES
    assert all(int(w) >= 300 for w in widths.values()), widths
    # and the page itself (no probe) paints something: a screenshot that is not blank
    shot = tmp_path / "shot.png"
    res = _chromium([f"--screenshot={shot}", "--window-size=1100,2400", (out / "report.html").as_uri()],
                    tmp_path / "profile2")
    assert shot.is_file(), res.stderr[-2000:]
    img = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert img.std() > 10 and (img < 128).mean() > 0.005


def test_synthetic_source_is_labelled(built, tmp_path):
    _, cur, out, _ = built
    assert "SYNTHETIC" not in (out / "report.md").read_text()
    root = tmp_path / "syn"
    syn = make_tiny_curated(root, n_batches=20, seed=1, image_size=8)
    manifest = json.loads((syn / "manifest.json").read_text())
    (syn / "manifest.json").write_text(json.dumps({**manifest, "synthetic": True}))
    human_consistency.write_report(sources.load(syn), tmp_path / "r", n_perm=50, rater_n_perm=50, n_boot=10)
    for name in ("report.md", "report.html"):
        assert "SYNTHETIC" in (tmp_path / "r" / name).read_text(encoding="utf-8")


@pytest.mark.parametrize("seed", ["-1", str(2**63)], ids=["negative", "past_int64"])
def test_cli_refuses_a_seed_outside_the_one_range_before_loading(tmp_path, capsys, seed):
    """``aadb report human-consistency --seed -1``: a one-line error naming ``--seed``, with the
    range of every command, before the data is loaded (here there is none to load)."""
    rc = cli_main(["report", "human-consistency", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r"),
                   "--seed", seed])
    err = capsys.readouterr().err
    assert rc == 1 and "--seed must be a whole number from 0 to 9,223,372,036,854,775,807" in err, err
    assert not (tmp_path / "r").exists()


def test_every_summary_json_of_a_synthetic_report_names_it_synthetic(built, tmp_path):
    """SPEC: a synthetic source is named synthetic in every result. Only report.md/html carried the
    note; consistency.json, human_consistency.json and reliability.json now record ``dataset``,
    ``synthetic`` and ``synthetic_setting`` as a score result does."""
    _, _, out, _ = built
    setting = {"setting": "model", "overrides": {}, "sha256": "0" * 64}
    syn = make_tiny_curated(tmp_path / "syn", n_batches=20, seed=1, image_size=8)
    manifest = json.loads((syn / "manifest.json").read_text())
    (syn / "manifest.json").write_text(json.dumps({**manifest, "synthetic": True, "synthetic_setting": setting}))
    human_consistency.write_report(sources.load(syn), tmp_path / "r", n_perm=20, rater_n_perm=20, n_boot=10)
    for name in ("consistency.json", "human_consistency.json", "reliability.json"):
        doc = json.loads((tmp_path / "r" / name).read_text())
        assert (doc["synthetic"], doc["dataset"], doc["synthetic_setting"]) == (True, "synthetic-aadb", setting), name
        real = json.loads((out / name).read_text())
        assert (real["synthetic"], real["dataset"]) == (False, "aadb") and "synthetic_setting" not in real, name

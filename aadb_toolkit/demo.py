"""The end-to-end demo on the embedded default: a small synthetic AADB (a test instrument, not AADB)
goes through every stage of the flow — simulate → curate → consistency → publish (and load back)
→ train → predict → human-consistency report → score → piaa (episodes, personalize, score)
→ leaderboard.

Each step calls the stage's public library function; nothing here is specific to the demo but
the small sizes. Everything lands under the demo's folder, the rater key included (``rater.key``,
outside the release and the curated folder, as docs/safety.md requires). A rerun over an earlier
demo folder first checks every output it will replace, with the rules each stage applies, and
refuses (naming the first offending path) before it removes or writes anything; once the data
stages have succeeded it removes the trained stages' old outputs (only files the toolkit wrote),
so that the folder never holds scores of data that is no longer there.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

#: Model variant trained by the demo (a file under ``baselines/``): small, CPU, a couple of minutes.
DEMO_BASELINE = "demo_cpu"
DEMO_MODEL_NAME = "demo: Reg+Rank (within & cross), CPU, from scratch"
DEMO_PIAA_NAME = "demo: ridge on fc7 of the demo model, generic offset"
#: The demo's own rater key, in its folder (outside ``release/`` and ``curated/``; docs/safety.md).
DEMO_KEY_FILE = "rater.key"
#: What the trained stages (train → predict → score → piaa → leaderboard) write in the demo's folder:
#: removed at the start of every rerun, so that a run without them (``--no-train``) or with another
#: seed leaves no stale model, predictions, scores or boards behind.
TRAINED_OUTPUTS = ("model", "predictions.csv", "predictions.csv.model.json", "score.json", "piaa", "leaderboard",
                   "leaderboard.sqlite", "leaderboard.sqlite-wal", "leaderboard.sqlite-shm")
#: The demo's output folders that carry a marker → the kind their stage replaces (``_atomic`` checks).
MARKED_FOLDERS = {"release": "simulated_release", "release.truth": "simulated_truth", "curated": "curated",
                  "consistency": "consistency", "hub/aadb": "published", "report": "report"}
#: The files a training run folder may hold (its marker lists none), besides its pixel cache.
RUN_FILES = frozenset({"checkpoint.pt", "best.pt", "metrics.jsonl", "metrics.png", "run.json", "config.json",
                       "backbone.pt"})


@dataclass
class DemoResult:
    """Where the demo wrote each stage's output, and how long each stage took (seconds)."""

    out: Path
    paths: dict[str, Path] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)


class _Stages:
    """Runs the demo's stages in order, timing each and echoing its headline lines."""

    def __init__(self, result: DemoResult, echo: Callable[[str], None]) -> None:
        self.result, self.echo = result, echo

    def __call__(self, name: str, fn: Callable[[], object]) -> object:
        self.echo(f"[{len(self.result.seconds) + 1}] {name} ...")
        t0 = time.perf_counter()
        value = fn()
        self.result.seconds[name] = time.perf_counter() - t0
        return value

    def say(self, line: str) -> None:
        self.result.lines.append(line)
        self.echo("    " + line)


def run_demo(out: str | Path, *, n_images: int = 1000, seed: int = 0, quirks: bool = True, n_perm: int = 2000,
             train_model: bool = True, echo: Callable[[str], None] = print, progress: bool | None = None) -> DemoResult:
    """Run the whole pipeline on a synthetic release of ``n_images`` images into ``out``.

    ``quirks`` injects the real-world mess of the raw release so the curation report has something
    to say; ``train_model=False`` skips training, prediction, scoring and the leaderboard (and
    removes what an earlier run of them left in ``out``). ``progress``: bars while simulating and
    publishing (None: on a terminal only).
    """
    from .reports import human_consistency

    from ._atomic import claim_output_folder

    out = claim_output_folder(out, "demo")  # a folder of the demo's own, or a new or empty one
    check_demo_outputs(out)  # every refusal before anything is removed or written
    result = DemoResult(out=out)
    stage = _Stages(result, echo)
    data = _curate_and_publish(stage, out, n_images=n_images, seed=seed, quirks=quirks, n_perm=n_perm,
                               progress=progress)
    _remove_old_trained_outputs(out, echo, train_model)
    predictions = _train_and_predict(stage, out, data) if train_model else None
    report_dir = out / "report"
    stage("human-consistency report", lambda: human_consistency.write_report(
        data, report_dir, predictions=result.paths.get("predictions"), n_perm=n_perm, rater_n_perm=500, n_boot=200,
        show_progress=False))
    stage.say(f"human-consistency report -> {report_dir / 'report.html'} (and report.md)")
    result.paths["report"] = report_dir
    if predictions is not None:
        _score_and_rank(stage, out, predictions, data, seed=seed)
    return result


def check_demo_outputs(out: Path) -> None:
    """Refuse (:class:`~aadb_toolkit.errors.OutputError` naming the first offending path, in stage
    order) a demo folder where a stage would replace or a rerun would remove a file the toolkit did
    not write: checked up front so that a refusal leaves every earlier output as it was."""
    from ._atomic import check_output_folder

    for name, kind in MARKED_FOLDERS.items():
        check_output_folder(out / name, kind)
    check_trained_outputs(out)


def check_trained_outputs(out: Path) -> None:
    """Refuse trained stages' outputs in ``out`` that are not the toolkit's (see :func:`check_demo_outputs`):
    the run folder by its file names (the library's trainer, which the demo calls, marks no run
    folder: ``aadb train`` does), every single file by its own ownership check."""
    _check_own_files(out / "model", _is_run_file)
    for name, (what, is_ours) in _single_files(out).items():
        _check_file(out / name, what, is_ours)
    _check_own_files(out / "piaa", lambda rel: rel in _piaa_files())
    for rel, (what, is_ours) in _piaa_files().items():
        _check_file(out / "piaa" / rel, what, is_ours)
    _check_own_files(out / "leaderboard", lambda rel: rel in _board_files())


def _check_file(path: Path, what: str, is_ours: Callable[[Path], bool]) -> None:
    from ._atomic import check_output_file

    check_output_file(path, what, is_ours)


def _single_files(out: Path) -> dict[str, tuple[str, Callable[[Path], bool]]]:
    """The trained stages' files in the demo folder → (what they are, their stage's ownership test)."""
    from ._atomic import starts_with_header
    from .protocols.results import is_result_file
    from .submissions import is_model_sidecar

    db = out / "leaderboard.sqlite"
    side = ("leaderboard database side file", lambda p: _is_leaderboard(db))
    return {"predictions.csv": ("predictions CSV", starts_with_header("image_id,score")),
            "predictions.csv.model.json": ("model sidecar", is_model_sidecar),
            "score.json": ("result document", is_result_file),
            "leaderboard.sqlite": ("leaderboard database", _is_leaderboard),
            "leaderboard.sqlite-wal": side, "leaderboard.sqlite-shm": side}


def _piaa_files() -> dict[str, tuple[str, Callable[[Path], bool]]]:
    """The files the piaa step writes in ``piaa/`` → (what they are, their ownership test)."""
    from ._atomic import starts_with_header
    from .piaa.episodes import COLUMNS, KEY_COLUMNS
    from .protocols.results import is_result_file

    keyed, image = starts_with_header(",".join((*KEY_COLUMNS, "score"))), starts_with_header("image_id,score")
    return {"episodes.csv": ("piaa episodes CSV", starts_with_header(",".join(COLUMNS))),
            "predictions.csv": ("personalized predictions CSV", keyed),
            "generic.csv": ("predictions CSV", lambda p: keyed(p) or image(p)),
            "score.json": ("result document", is_result_file)}


def _board_files() -> set[str]:
    """The files :func:`aadb_toolkit.leaderboard.render` writes: one board per registered protocol."""
    from .protocols import PROTOCOLS

    return {f"{p}.{ext}" for p in PROTOCOLS for ext in ("md", "html", "csv")} | {"index.md", "index.html"}


def _is_run_file(rel: str) -> bool:
    """Whether a path inside a training run folder is one the trainer writes (a run file or a pixel cache)."""
    import fnmatch

    from .models.pipeline import CACHE_GLOB

    top, _, rest = rel.partition("/")  # the marker, if any, is not among them (files_under)
    return rel in RUN_FILES or (top == "cache" and "/" not in rest and fnmatch.fnmatch(rest, CACHE_GLOB))


def _is_leaderboard(db: Path) -> bool:
    """Whether ``db`` is a leaderboard database (or an empty file), as ``aadb score --db`` checks it."""
    import sqlite3

    from .errors import InputError
    from .leaderboard.store import check_database

    try:
        check_database(db)
    except (InputError, sqlite3.Error):
        return False
    return db.is_file()


def _check_own_files(folder: Path, is_own: Callable[[str], bool]) -> None:
    """Refuse ``folder`` (a link, a file, or a folder holding a file ``is_own`` does not accept,
    which a rerun would delete with it)."""
    from ._atomic import check_output_place, files_under, names_shown
    from .errors import OutputError

    if not os.path.lexists(folder):
        return
    check_output_place(folder)
    if not folder.is_dir():
        raise OutputError("exists and is not a folder the demo wrote; move it away first", file=str(folder))
    extra = [rel for rel in files_under(folder) if not is_own(rel) or (folder / rel).is_symlink()]
    if extra:
        raise OutputError(f"holds files the toolkit did not write ({names_shown(extra)}); a rerun of the demo would "
                          "delete them, so nothing was written — move them away first", file=str(folder))


def _remove_old_trained_outputs(out: Path, echo: Callable[[str], None], train_model: bool) -> None:
    """Once the data stages have succeeded: drop the earlier run's trained outputs, which no longer
    match the data (this run writes them anew, or skips them)."""
    removed = remove_trained_outputs(out)
    if removed:
        echo(f"removed the outputs of an earlier run's trained stages from {out}: {', '.join(removed)}"
             + (" (this run skips training)" if not train_model else " (this run writes them anew)"))


def remove_trained_outputs(out: Path) -> list[str]:
    """Remove :data:`TRAINED_OUTPUTS` from the demo folder ``out``; returns the names removed. They
    are checked again first (:func:`check_trained_outputs`: a file the toolkit did not write is
    refused, never removed); a link is removed as a link, never followed."""
    check_trained_outputs(out)
    removed = []
    for name in TRAINED_OUTPUTS:
        path = out / name
        if path.is_symlink() or path.is_file():
            path.unlink()
            removed.append(name)
        elif path.is_dir():
            shutil.rmtree(path)
            removed.append(name + "/")
    return removed


def _curate_and_publish(stage: _Stages, out: Path, *, n_images: int, seed: int, quirks: bool, n_perm: int,
                        progress: bool | None = None):
    """simulate → curate → load (once) → consistency → publish and load back; returns the data."""
    from . import consistency, curate, hub, simulate, sources

    release = out / "release"
    sim = stage("simulate", lambda: simulate.simulate(release, n_images=n_images, seed=seed, quirks=quirks,
                                                      progress=progress))
    stage.say(f"synthetic release (a test instrument, not AADB): {sim.n_images} images, {sim.n_hits} HITs, "
              f"{sim.n_csv_rows} assignment rows, {sim.n_quirks} planted quirks -> {sim.release_dir}")
    curated = out / "curated"
    cur = stage("curate", lambda: curate.curate(release, curated, on_bad_value="exclude", progress=False,
                                                key_file=out / DEMO_KEY_FILE))
    stage.say(cur.summary().replace("\n", "\n    "))
    stage.result.paths.update(release=release, curated=curated, curation_report=curated / "curation_report.md",
                              rater_key=out / DEMO_KEY_FILE)

    data = sources.load(curated)
    cons_dir = out / "consistency"
    cons = stage("consistency", lambda: consistency.run_consistency(data, cons_dir, n_perm=n_perm,
                                                                    show_progress=False))
    s = cons.summary
    stage.say(f"{s['n_significant']} of {s['n_batches']} batches show significant agreement at FDR q={s['q']} "
              f"({s['percent_significant']:.2f}%; paper: 98.45% on AADB) -> {cons_dir / 'consistency.json'}")
    stage.result.paths["consistency"] = cons_dir

    hub_dir = out / "hub" / "aadb"
    summary = json.loads((cons_dir / "consistency.json").read_text(encoding="utf-8"))
    from .piaa import episodes as ep

    pub = stage("publish", lambda: hub.publish(data, hub_dir, consistency_summary=summary,
                                               extra_configs=(hub.piaa_config(*ep.published_table(data)),),
                                               progress=progress))
    back = stage("load back", lambda: _load_back(hub_dir, data))
    stage.say(f"Hugging Face dataset folder -> {pub.out} ({len(pub.files)} files); loaded back with "
              f"datasets.load_dataset: {back['images']} images, {back['ratings']} ratings, "
              f"{back['raters']} rater IDs, identical to the curated tables")
    stage.result.paths["hub"] = hub_dir
    return data


def _train_and_predict(stage: _Stages, out: Path, data):
    """train the demo baseline and predict its test split (kept as a submission file too); returns
    the predictions and the model's identity."""
    from .models import baseline_config, predict, train
    from .models.predict import model_identity
    from .submissions import write_predictions

    run_dir = out / "model"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*from scratch.*")
        run = stage("train", lambda: train(baseline_config(DEMO_BASELINE), data, run_dir, progress=False))
    stage.say(f"trained {DEMO_BASELINE} on {run.device} for {run.epochs_completed} epochs: best validation "
              f"rho {run.best_val_rho:.3f} -> {run_dir}")
    path = out / "predictions.csv"
    identity = model_identity(run_dir)
    predictions = stage("predict", lambda: predict(run_dir, data, "test", progress=False))
    write_predictions(predictions, path, model=identity)
    stage.say(f"test-split predictions (submission format) -> {path}")
    stage.result.paths.update(model=run_dir, predictions=path)
    return predictions, identity


def _score_and_rank(stage: _Stages, out: Path, predicted, data, *, seed: int) -> None:
    """score the predictions in memory under the aadb protocol, personalize the model on the piaa
    episodes and score that, and put both on a leaderboard."""
    from . import leaderboard
    from .protocols import evaluate, write_result

    predictions, identity = predicted
    scored = stage("score", lambda: evaluate("aadb", data, predictions, n_boot=1000, seed=seed, model=identity))
    write_result(out / "score.json", scored)
    rho = scored.metrics["spearman"]
    stage.say(f"aadb protocol: Spearman rho {rho.value:.4f} (95% CI {rho.ci_low:.3f}-{rho.ci_high:.3f}) "
              f"on {scored.n_images} test images -> {out / 'score.json'}")
    personal = stage("piaa", lambda: _piaa_step(out, stage.result.paths["model"], data, seed))
    if personal is None:
        stage.say("piaa: no rater has enough validation/test ratings for an episode; step skipped")
    else:
        stage.say(f"piaa protocol (ridge on fc7, generic offset): mean per-rater rho {_value(personal, 'mean_rho')} "
                  f"(k=10: {_value(personal, 'rho_k10')} vs generic {_value(personal, 'generic_rho_k10')}, "
                  f"{_value(personal, 'n_raters_k10', 0)} raters) -> {out / 'piaa'}")
        stage.result.paths["piaa"] = out / "piaa"
    db = out / "leaderboard.sqlite"
    stage("leaderboard", lambda: (leaderboard.record(db, scored, DEMO_MODEL_NAME),
                                  personal is not None and leaderboard.record(db, personal, DEMO_PIAA_NAME),
                                  leaderboard.render(db, out / "leaderboard")))
    stage.result.paths.update(score=out / "score.json", leaderboard=out / "leaderboard")
    stage.echo("")
    stage.echo(leaderboard.format_markdown(db, "aadb"))
    if personal is not None:
        stage.echo(leaderboard.format_markdown(db, "piaa"))


def _piaa_step(out: Path, run_dir: Path, data, seed: int):
    """Episodes → personalized and generic predictions → the piaa score (None when no rater qualifies)."""
    from .piaa import episodes as ep
    from .piaa.personalize import personalize
    from .protocols import evaluate, write_result
    from .submissions import write_predictions

    table = ep.make_episodes(data)
    if table.empty:
        return None
    folder = out / "piaa"
    ep.write_episodes(table, folder / "episodes.csv")
    preds, generic = personalize(run_dir, data, table, progress=False)
    write_predictions(preds, folder / "predictions.csv")
    write_predictions(generic, folder / "generic.csv")
    scored = evaluate("piaa", data, preds, generic=generic, episodes=table, n_boot=1000, seed=seed)
    write_result(folder / "score.json", scored)
    return scored


def _value(result, metric: str, digits: int = 3) -> str:
    m = result.metrics.get(metric)
    return "n/a" if m is None or m.value is None else f"{m.value:.{digits}f}"


def _load_back(hub_dir: Path, curated) -> dict[str, int]:
    """Read the published folder with the stock ``datasets`` client and the toolkit's loader, and
    check both give back the curated tables."""
    import datasets
    import pandas as pd

    from . import sources
    from .errors import AADBError

    per_image = datasets.load_dataset(str(hub_dir))
    long = datasets.load_dataset(str(hub_dir), "ratings")
    n_images = sum(len(per_image[s]) for s in per_image)
    n_ratings = sum(len(long[s]) for s in long)
    published = sources.load(hub_dir)
    key = ["image_id", "rater_id", "batch_id", "score"]
    same_ratings = published.ratings[key].sort_values(key).reset_index(drop=True).equals(
        curated.ratings[key].sort_values(key).reset_index(drop=True))
    if (n_images, n_ratings) != (len(curated.images), len(curated.ratings)) or not same_ratings:
        raise AADBError(f"{hub_dir}: published data does not match the curated tables "
                        f"({n_images} images / {n_ratings} ratings vs {len(curated.images)} / {len(curated.ratings)})")
    return {"images": n_images, "ratings": n_ratings,
            "raters": int(pd.Series(published.ratings["rater_id"]).nunique())}

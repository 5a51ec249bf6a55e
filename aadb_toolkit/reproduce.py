"""Reproduce a table of the paper: a recipe (``baselines/tables/NAME.toml``) lists its rows — label,
config, overrides, the paper's number (a key path into :mod:`aadb_toolkit.paper`), the row it is
compared against, the data role and the protocol. :func:`reproduce` trains what is missing
(reusing finished runs, resuming interrupted ones), scores every row through the protocol
registry, tests each row against its reference row (paired bootstrap and Steiger's Z), and
writes the table as Markdown and CSV (plus a PNG when the recipe declares a figure).

Data roles name the sources a table reads (``"aadb"`` is ``--data``); a new source (AVA) is a new
role, and a new table is a new recipe file: nothing here branches on a table's name.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import re
import sys
import tomllib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from . import __version__, paper
from ._atomic import check_output_place, write_bytes, write_json, write_text
from ._csvcells import table_csv
from ._format import format_p
from ._jsonfile import read_json_object
from ._lock import folder_lock
from ._markdown import escape, escape_text
from ._paths import input_folders
from .errors import InputError, OutputError, quote
from .sources import AADBData

log = logging.getLogger(__name__)

BUDGETS = ("quick", "paper")
SUMMARY_FILE = "reproduce.json"
SUMMARY_FORMAT = "aadb-reproduce"


@dataclass(frozen=True)
class Row:
    """One row of a recipe."""

    label: str
    config: str
    paper: tuple[Any, ...] = ()
    compare: str = ""
    set: Mapping[str, Any] = field(default_factory=dict)
    budget_set: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    select: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    data: str = "aadb"
    protocol: str = ""
    x: float | None = None
    test_data: str = ""  # role of the test set when it is not the training set (Table 7); default ``data``
    run: str = ""  # rows naming the same run share one trained model (Table 7's two test sets)

    @property
    def roles(self) -> set[str]:
        """The data roles the row reads: its training set and its test set."""
        return {self.data, self.test_data or self.data}


@dataclass(frozen=True)
class Recipe:
    """A table recipe: its rows, the default protocol and data role, per-budget overrides, an
    optional figure (``figure.x`` = the x value of each row, ``figure.y`` = "validation" or "test")
    and whether the best row is picked on validation (Table 4's ω_r)."""

    name: str
    title: str
    protocol: str
    rows: tuple[Row, ...]
    budgets: Mapping[str, Mapping[str, Any]]
    figure: Mapping[str, str] = field(default_factory=dict)
    select_row_on_validation: bool = False
    note: str = ""
    source: str = ""
    #: extra metric columns beside the main one: ``{metric, label, paper_index, scale}`` (Table 3's accuracy)
    columns: tuple[Mapping[str, Any], ...] = ()


def tables_dir() -> Path:
    """The folder of table recipes (``baselines/tables/``)."""
    from .models.config import baselines_dir

    return baselines_dir() / "tables"


def available_tables() -> list[str]:
    """Names of the recipes under ``baselines/tables/``."""
    return sorted(p.stem for p in tables_dir().glob("*.toml") if not p.name.startswith("_"))


def shared_budgets() -> dict[str, dict[str, Any]]:
    """The budget overrides every recipe starts from (``baselines/tables/_budgets.toml``)."""
    path = tables_dir() / "_budgets.toml"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"cannot read the shared budgets: {exc}", file=str(path)) from exc
    return {b: dict(raw.get("budgets", {}).get(b, {}).get("set", {})) for b in BUDGETS}


def load_recipe(name_or_path: str | Path) -> Recipe:
    """Read and check a recipe (a name under ``baselines/tables/`` or a TOML path)."""
    path = Path(name_or_path)
    if not path.suffix:
        names = available_tables()
        if str(name_or_path) not in names:
            from ._registry import did_you_mean

            hint = did_you_mean(name_or_path, names)
            raise InputError(f"no table recipe {str(name_or_path)!r}; {hint or 'known: ' + ', '.join(names)}",
                             field="--table")
        path = tables_dir() / f"{name_or_path}.toml"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"cannot read table recipe: {exc}", file=str(path)) from exc
    return _recipe_from_dict(raw, str(path))


def _recipe_from_dict(raw: Mapping[str, Any], source: str) -> Recipe:
    """Check every field of a parsed recipe (type first, so a malformed recipe is an
    :class:`InputError` naming the field, raised before ``--out`` is claimed) and build the Recipe."""
    rows = _rows(raw.get("rows", []), source)
    labels = [r.label for r in rows]
    if len(set(labels)) != len(labels):
        raise InputError("row labels must be unique", file=source, field="rows")
    for r in rows:
        if r.compare and r.compare not in labels:
            raise InputError(f"row {quote(r.label)} compares against unknown row {quote(r.compare)}", file=source,
                             field="rows.compare")
        if r.paper:
            paper_number(r.paper, source)
    return Recipe(name=_plain_name(raw.get("name", Path(source).stem), source),
                  title=_typed(raw.get("title", ""), str, source, "title"),
                  protocol=_typed(raw.get("protocol", "aadb"), str, source, "protocol"), rows=tuple(rows),
                  budgets=_budgets(raw.get("budgets", {}), source), figure=_figure(raw.get("figure", {}), source),
                  select_row_on_validation=_typed(raw.get("select_row_on_validation", False), bool, source,
                                                  "select_row_on_validation"),
                  note=_typed(raw.get("note", ""), str, source, "note"), source=source,
                  columns=_columns(raw.get("columns", []), source))


_NUMBER = (int, float)
_TYPE_NAMES = {str: "a string", list: "an array", dict: "a table", bool: "true or false", int: "an integer",
               _NUMBER: "a number"}
#: The type of each row field (``paper`` is a key path, ``select`` a table of arrays).
_ROW_TYPES: dict[str, Any] = {"label": str, "config": str, "paper": list, "compare": str, "set": dict,
                              "budget_set": dict, "select": dict, "data": str, "protocol": str, "x": _NUMBER,
                              "test_data": str, "run": str}


def _typed(value: Any, kind: Any, source: str, field: str) -> Any:
    """``value`` if it has the recipe type ``kind`` (true/false is no number), else an InputError
    naming ``field``: a recipe is user text, and a wrong type must not surface as an internal error."""
    if isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool):
        return value
    raise InputError(f"expected {_TYPE_NAMES[kind]}, got {quote(value)}", file=source, field=field)


def _rows(raw: Any, source: str) -> list[Row]:
    """The recipe's ``[[rows]]``, each field's type checked."""
    rows = []
    for i, r in enumerate(_typed(raw, list, source, "rows")):
        r = _typed(r, dict, source, f"rows[{i}]")
        unknown = set(r) - set(_ROW_TYPES)
        if unknown or "label" not in r or "config" not in r:
            raise InputError(f"row needs label and config; unknown keys {quote(sorted(unknown))}", file=source,
                             field=f"rows[{i}]")
        for key, value in r.items():
            _typed(value, _ROW_TYPES[key], source, f"rows[{i}].{key}")
        for key, value in r.get("budget_set", {}).items():
            _typed(value, dict, source, f"rows[{i}].budget_set.{key}")
        for key, value in r.get("select", {}).items():
            _typed(value, list, source, f"rows[{i}].select.{key}")
        rows.append(Row(**{**r, "paper": tuple(r.get("paper", ()))}))
    if not rows:
        raise InputError("a recipe needs [[rows]]", file=source, field="rows")
    return rows


def _budgets(raw: Any, source: str) -> dict[str, dict[str, Any]]:
    """The shared budgets overridden by the recipe's ``[budgets.<budget>] set = {…}``."""
    shared = shared_budgets()
    _typed(raw, dict, source, "budgets")
    out = {}
    for b in BUDGETS:
        entry = _typed(raw.get(b, {}), dict, source, f"budgets.{b}")
        out[b] = {**shared[b], **_typed(entry.get("set", {}), dict, source, f"budgets.{b}.set")}
    return out


def _figure(raw: Any, source: str) -> dict[str, str]:
    """The recipe's ``[figure]``: text settings (``y``, ``xlabel``, ``ylabel``)."""
    return {k: _typed(v, str, source, f"figure.{k}") for k, v in _typed(raw, dict, source, "figure").items()}


_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def _plain_name(name: object, source: str) -> str:
    """A recipe's name names its output files (``<name>.md`` in ``--out``), so it must be a plain
    name: letters, digits, ``_``, ``.``, ``-``; no folder, no ``..``, no absolute path."""
    if not isinstance(name, str) or not _PLAIN_NAME.fullmatch(name) or ".." in name:
        raise InputError(f"the recipe name {quote(name)} is not a plain name (letters, digits, '_', '.', '-'; at "
                         "most 64 characters, no '/' or '..'): it names the files written into --out",
                         file=source, field="name")
    return name


def _columns(raw: Any, source: str) -> tuple[Mapping[str, Any], ...]:
    """The recipe's extra metric columns, checked: each names a result ``metric`` and a ``label``;
    ``paper_index`` picks the paper value's entry (e.g. 1: Table 3's accuracy), ``scale`` multiplies ours."""
    out = []
    for i, c in enumerate(_typed(raw, list, source, "columns")):
        if not isinstance(c, dict) or not {"metric", "label"} <= set(c) or set(c) - {"metric", "label", "paper_index", "scale"}:
            raise InputError("a column needs metric and label (and optionally paper_index, scale)", file=source,
                             field=f"columns[{i}]")
        where = f"columns[{i}]."
        index = c.get("paper_index")
        out.append({"metric": _typed(c["metric"], str, source, where + "metric"),
                    "label": _typed(c["label"], str, source, where + "label"),
                    "paper_index": None if index is None else _typed(index, int, source, where + "paper_index"),
                    "scale": float(_typed(c.get("scale", 1.0), _NUMBER, source, where + "scale"))})
    return tuple(out)


def paper_number(keys: Sequence[Any], source: str = "recipe", index: int = 0) -> float | None:
    """The number at a key path in :mod:`aadb_toolkit.paper` (``["TABLE5_PAIRS", "cross", 2000000]``);
    a tuple value gives its first entry (ρ of Table 3)."""
    node: Any = paper
    try:
        node = getattr(paper, keys[0])
        for k in keys[1:]:
            node = node[tuple(k) if isinstance(k, list) else k]
    except (AttributeError, KeyError, TypeError, IndexError) as exc:
        raise InputError(f"no paper number at {list(keys)}", file=source, field="rows.paper") from exc
    if isinstance(node, tuple):
        node = node[index]
    return None if node is None else float(node)


# --- one row -------------------------------------------------------------------------------

def slug(text: str) -> str:
    """A folder name for a row label or a setting."""
    s = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()
    return s or "row"


def row_config(recipe: Recipe, row: Row, budget: str, extra: Mapping[str, Any] | None = None):
    """The validated config of a row under a budget: baseline, budget overrides, row overrides."""
    from .models.config import baseline_config

    overrides = {**recipe.budgets.get(budget, {}), **row.set, **row.budget_set.get(budget, {}), **(extra or {})}
    return baseline_config(row.config, overrides)


def _grid(row: Row) -> list[dict[str, Any]]:
    if not row.select:
        return [{}]
    keys = sorted(row.select)
    return [dict(zip(keys, values)) for values in itertools.product(*(row.select[k] for k in keys))]


def _finished(run: Path, cfg, data: AADBData, init_weights: str | Path | None = None) -> bool:
    """Whether ``run`` holds a finished run of ``cfg`` to reuse. One trained on other data (its
    recorded data fingerprint differs, or it recorded none) or from other initial weights (none
    against a file, or another file) is refused, not reused: the table would score models trained
    on one data set, or from one starting point, while naming another."""
    from .models.runs import CONFIG_FILE, RUN_SUMMARY, data_fingerprint, read_run_json

    summary, config = read_run_json(run, RUN_SUMMARY), read_run_json(run, CONFIG_FILE)
    if summary is None or config is None:
        return False
    if summary.get("stopped") != "completed" or _material_diff(config, cfg):
        return False
    theirs, ours = summary.get("data_fingerprint"), data_fingerprint(data)
    if theirs != ours:
        shown = theirs if isinstance(theirs, str) and re.fullmatch(r"sha256:[0-9a-f]{64}", theirs) else quote(theirs)
        raise InputError(f"this row's finished run was trained on other data (its data fingerprint "
                         f"{shown}, this --data {ours}); reusing it would score a model of one "
                         "data set as another — use another --out for this data, or remove the run "
                         "folder to retrain it", file=str(run))
    theirs, ours = summary.get("init_weights"), None if init_weights is None else str(init_weights)
    if (theirs is None) != (ours is None) or (ours is not None and os.path.realpath(str(theirs)) != os.path.realpath(ours)):
        raise InputError(f"this row's finished run started from other initial weights ({quote(theirs or 'none')}, "
                         f"this --init-weights {quote(ours or 'none')}); reusing it would report one starting point "
                         "as another — use another --out, or remove the run folder to retrain it", file=str(run))
    return True


def _material_diff(other: Mapping[str, Any], cfg) -> list[str]:
    """Config keys that differ and matter for the result (not e.g. the checkpoint cadence)."""
    from .models.runs import RESUMABLE_CHANGES, config_diff

    return [k for k in config_diff(dict(other), cfg.to_dict()) if k not in RESUMABLE_CHANGES]


def _refuse_other_config(run: Path, cfg) -> None:
    from .models.runs import CONFIG_FILE, read_run_json

    other = read_run_json(run, CONFIG_FILE)
    diff = _material_diff(other, cfg) if other is not None else []
    if diff:
        raise InputError(f"this row's run folder holds a run of another config (differs in "
                         f"{diff}): the recipe, the budget or a config changed "
                         "since; remove that run folder to retrain it, or use another --out", file=str(run))


def train_row(recipe: Recipe, row: Row, data: AADBData, run_root: Path, budget: str, *,
              init_weights: str | Path | None = None, device: str | None = None, progress: bool | None = None,
              cache_dir: Path | None = None, stop_after_steps: int | None = None) -> tuple[Path, dict[str, Any]]:
    """Train (or reuse) every candidate of a row; returns the run chosen on validation and its setting."""
    from .models import train
    from .models.runs import RUN_SUMMARY, read_run_json

    chosen: tuple[float, Path, dict[str, Any]] | None = None
    for setting in _grid(row):
        cfg = row_config(recipe, row, budget, setting)
        run = run_root / (slug("_".join(f"{k}={v}" for k, v in setting.items())) if setting else "run")
        if _finished(run, cfg, data, init_weights):
            log.info("reusing finished run %s", run)
        else:  # a new run, or the interrupted one resumed from its checkpoint
            _refuse_other_config(run, cfg)
            train(cfg, data, run, device=device, init_weights=init_weights, progress=progress,
                  cache_dir=cache_dir, stop_after_steps=stop_after_steps)
        val = (read_run_json(run, RUN_SUMMARY) or {}).get("best_val_rho")
        score = -math.inf if val is None else float(val)
        if chosen is None or score > chosen[0]:
            chosen = (score, run, setting)
    assert chosen is not None
    return chosen[1], chosen[2]


def score_row(protocol_name: str, run: Path, data: AADBData, *, n_boot: int, device: str | None = None,
              cache_dir: Path | None = None, dest: Path | None = None):
    """Predict the run's test split (and each split the protocol's inputs need, e.g. the ava
    protocol's validation) and score the predictions in memory through the protocol registry; the
    predictions are kept beside the score (``<split>.csv``) for the record. Returns the
    :class:`~aadb_toolkit.protocols.Result`."""
    from .models.predict import model_identity, predict
    from .protocols import evaluate, get_protocol, write_result
    from .submissions import write_predictions

    p = get_protocol(protocol_name)
    dest = dest or run  # where the prediction files and the score go (a shared run's rows each have their own)
    splits = {"predictions": "test", **{i.name: i.split for i in p.inputs if i.kind == "predictions" and i.split}}
    predicted = {}
    for name, split in splits.items():
        predicted[name] = predict(run, data, split, device=device, cache_dir=cache_dir)
        write_predictions(predicted[name], dest / f"{split}.csv")
    predictions = predicted.pop("predictions")
    result = evaluate(p.name, data, predictions, n_boot=n_boot, model=model_identity(run), **predicted)
    write_result(dest / "score.json", result)
    return result


# --- the table -----------------------------------------------------------------------------

def is_synthetic(data: AADBData) -> bool:
    """Whether a source is synthetic, as its loader recorded in its provenance."""
    return bool(data.provenance is not None and data.provenance.synthetic)


def _row_record(recipe: Recipe, row: Row, result, run: Path, setting: Mapping[str, Any],
                synthetic: bool) -> dict[str, Any]:
    metric = result.metrics[result.main_metric]
    from .models.runs import RUN_SUMMARY, read_run_json

    summary = read_run_json(run, RUN_SUMMARY) or {}
    ours = metric.value
    ref = paper_number(row.paper) if row.paper else None
    return {
        "label": row.label, "config": row.config, "protocol": result.protocol, "metric": result.main_metric,
        "ours": ours, "ci_low": metric.ci_low, "ci_high": metric.ci_high, "paper": ref,
        "ours_minus_paper": None if ours is None or ref is None else ours - ref,
        "validation_rho": summary.get("best_val_rho"), "steps": summary.get("global_step"),
        "selected": json.dumps(dict(setting)) if setting else "", "x": row.x,
        "compared_with": row.compare, "delta_vs_compared": None, "delta_ci_low": None, "delta_ci_high": None,
        "p_bootstrap": None, "p_steiger": None, "data_synthetic": synthetic, "run": str(run),
        **_extra_columns(recipe, row, result),
    }


def _extra_columns(recipe: Recipe, row: Row, result) -> dict[str, Any]:
    """Ours and the paper's value of each extra column of the recipe (keys ``<label>``, ``paper <label>``)."""
    out: dict[str, Any] = {}
    for c in recipe.columns:
        m = result.metrics.get(c["metric"])
        out[c["label"]] = None if m is None or m.value is None else m.value * c["scale"]
        idx = c["paper_index"]
        out[f"paper {c['label']}"] = paper_number(row.paper, index=idx) if row.paper and idx is not None else None
    return out


def _add_comparisons(records: list[dict[str, Any]], results: Mapping[str, Any], *, n_boot: int) -> None:
    """Paired significance of each row against the row it is meant to improve on (same images)."""
    from .protocols.significance import compare

    for rec in records:
        other = rec["compared_with"]
        if not other or other not in results:
            continue
        a, b = results[rec["label"]].paired, results[other].paired
        if a is None or b is None or a.image_ids != b.image_ids:
            continue
        c = compare(a.truth, a.predictions, b.predictions, n_boot=n_boot, seed=0)
        rec.update(delta_vs_compared=c.delta, delta_ci_low=c.delta_ci_low, delta_ci_high=c.delta_ci_high,
                   p_bootstrap=c.bootstrap_p, p_steiger=c.steiger_p)


def _fmt(v: Any, nd: int = 4) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def render_markdown(recipe: Recipe, records: list[dict[str, Any]], *, budget: str, synthetic: bool,
                    data_origin: str) -> str:
    """The table as Markdown: ours with its 95% CI, the paper's number, and the paired test."""
    lines = [f"# {escape_text(recipe.title or recipe.name)}", ""]
    if synthetic:
        lines += ["> **Synthetic data — not AADB or AVA.** These numbers come from synthetic data (a test "
                  "instrument); they say nothing about the paper's claims on real photos.", ""]
    lines += [f"Budget `{budget}`; data `{data_origin}`; toolkit {__version__}. ρ is Spearman's on the test split "
              "with a bootstrap 95% CI; Δ is this row minus the row it is compared with, tested by a paired "
              "bootstrap over the same test images (p) and Steiger's Z (p_Z).", ""]
    if recipe.note:
        lines += [escape_text(recipe.note), ""]
    extra = [c["label"] for c in recipe.columns]
    head = "".join(f" ours {escape(x)} | paper {escape(x)} |" for x in extra)
    lines += ["| row | ours ρ | 95% CI | paper ρ |" + head + " vs | Δρ | p | p_Z | val ρ | steps |",
              "|---|---|---|---|" + "---|---|" * len(extra) + "---|---|---|---|---|---|"]
    for r in records:
        ci = "–" if r["ci_low"] is None else f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"
        label = r["label"] + (" ✓ (chosen on validation)" if r.get("selected_on_validation") else "")
        if r["selected"]:
            label += f" — {r['selected']}"
        cells = "".join(f" {_fmt(r.get(x), 2)} | {_fmt(r.get('paper ' + x), 2)} |" for x in extra)
        lines.append(f"| {_md(label)} | {_fmt(r['ours'])} | {ci} | {_fmt(r['paper'])} |{cells} {_md(r['compared_with']) or '–'} | "
                     f"{_fmt(r['delta_vs_compared'])} | {_p(r['p_bootstrap'])} | {_p(r['p_steiger'])} | "
                     f"{_fmt(r['validation_rho'])} | {r['steps']} |")
    return "\n".join(lines) + "\n"


def _p(p: float | None) -> str:
    return "–" if p is None or not math.isfinite(p) else format_p(p)


def _md(text: str) -> str:
    return re.sub(r"([\\`*_{}\[\]<>|#])", r"\\\1", str(text))


def render_figure(recipe: Recipe, records: list[dict[str, Any]], *, synthetic: bool) -> bytes:
    """The recipe's figure: ρ (validation or test) against each row's ``x``."""
    from ._plotting import figure, to_png

    key = "validation_rho" if recipe.figure.get("y", "validation") == "validation" else "ours"
    pts = sorted((r["x"], r[key]) for r in records if r["x"] is not None and r[key] is not None)
    fig, ax = figure()
    if pts:
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-")
    ax.set_xlabel(recipe.figure.get("xlabel", "x"))
    ax.set_ylabel(recipe.figure.get("ylabel", f"{key.replace('_', ' ')}"))
    ax.set_title((recipe.title or recipe.name) + ("\n(SYNTHETIC data, not AADB)" if synthetic else ""))
    return to_png(fig)


# --- the whole table -------------------------------------------------------------------------

@dataclass(frozen=True)
class TableResult:
    """What :func:`reproduce` wrote: the rows and the files."""

    records: list[dict[str, Any]]
    files: list[Path]
    synthetic: bool


def _claim_out(out: Path, recipe: Recipe, budget: str, inputs: tuple = ()) -> None:
    """Use ``out`` only if it is new, empty, or a reproduce folder of the same table and budget,
    and lies in a place where writing loses nothing (not a link, nor in or around an input or
    inside another command's output: :func:`~._atomic.check_output_place`)."""
    check_output_place(out, inputs=inputs)
    marker = out / SUMMARY_FILE
    if out.exists() and not out.is_dir():
        raise InputError("--out is a file, not a folder", file=str(out), field="--out")
    if out.is_dir() and any(out.iterdir()):
        if not marker.is_file():
            raise InputError(f"{out} holds files that `aadb reproduce` did not write (no {SUMMARY_FILE}); "
                             "choose a new or empty --out", file=str(out), field="--out")
        doc = read_json_object(marker, SUMMARY_FILE)
        if doc.get("format") != SUMMARY_FORMAT or (doc.get("table"), doc.get("budget")) != (recipe.name, budget):
            raise InputError(f"{out} holds a reproduction of table {quote(doc.get('table'))} at budget "
                             f"{quote(doc.get('budget'))}; use another --out for {recipe.name!r} at {budget!r}",
                             file=str(out), field="--out")
    _check_places_inside(out, recipe)
    out.mkdir(parents=True, exist_ok=True)


def _places(out: Path, recipe: Recipe) -> list[Path]:
    """The folders a reproduction writes into inside ``out``: runs/, scores/, cache/ and each row's."""
    rows = [out / "runs" / slug(r.run or r.label) for r in recipe.rows]
    rows += [out / "scores" / slug(r.label) for r in recipe.rows if r.run]
    return [out / "runs", out / "scores", out / "cache", *rows]


def _check_places_inside(out: Path, recipe: Recipe) -> None:
    """Refuse (:class:`OutputError`) runs/, scores/, cache/ or a row folder that is a symbolic link
    or leads outside ``out``: training, scoring and the cache pruning would write (and delete)
    files there, outside the folder the user gave."""
    for place in _places(out, recipe):
        _refuse_outside(out, place, "the reproduction writes only inside --out — remove the link or choose "
                                    "another --out")


def _refuse_outside(out: Path, place: Path, why: str) -> None:
    """Raise :class:`OutputError` naming ``place`` when it is a symbolic link or leads outside ``out``."""
    if place.is_symlink() or not Path(os.path.realpath(place)).is_relative_to(os.path.realpath(out)):
        raise OutputError(f"is a symbolic link or leads outside --out; {why}", file=str(place))


def reproduce(recipe: Recipe, sources: Mapping[str, AADBData], out: str | Path, *, budget: str = "quick",
              init_weights: str | Path | None = None, device: str | None = None, n_boot: int = 1000,
              progress: bool | None = None, stop_after_steps: int | None = None) -> TableResult:
    """Train, score and tabulate every row of ``recipe`` on ``sources`` (data role → loaded data)
    into ``out``: ``runs/<row>/`` per row, ``<table>.md``, ``<table>.csv`` (and ``<table>.png``)."""
    if budget not in BUDGETS:
        raise InputError(f"unknown budget {budget!r}; expected one of {BUDGETS}", field="--budget")
    from .models import pick_device

    device = pick_device(device)  # a device that cannot be had fails before anything is written
    if budget == "paper" and device == "cpu":
        log.warning("the paper budget is the full GPU recipe (hours per row on a GPU); on the CPU it "
                    "would take weeks: use --budget quick")
    roles = set().union(*(r.roles for r in recipe.rows))
    missing = sorted(roles - set(sources))
    if missing:
        raise InputError(f"table {recipe.name!r} needs the data source(s) {missing}", field="--data")
    out = Path(out)
    _claim_out(out, recipe, budget, inputs=(init_weights, *(f for d in sources.values() for f in input_folders(d))))
    with folder_lock(out, "reproduction folder"):  # one writer: rows are reused and grown in place
        return _reproduce_rows(recipe, sources, out, roles, budget=budget, init_weights=init_weights, device=device,
                               n_boot=n_boot, progress=progress, stop_after_steps=stop_after_steps)


def _reproduce_rows(recipe: Recipe, sources: Mapping[str, AADBData], out: Path, roles: set[str], *, budget: str,
                    init_weights, device: str, n_boot: int, progress: bool | None,
                    stop_after_steps: int | None) -> TableResult:
    """The body of :func:`reproduce`, with ``out`` claimed and locked."""
    import time

    t_start = time.time()
    synthetic = any(is_synthetic(sources[r]) for r in roles)
    doc = {"format": SUMMARY_FORMAT, "table": recipe.name, "budget": budget, "synthetic": synthetic,
           "toolkit_version": __version__, "status": "running",
           "data": {role: {"origin": d.origin, "synthetic": is_synthetic(d)} for role, d in sources.items()}}
    write_json(out / SUMMARY_FILE, doc)
    records, results = [], {}
    from tqdm.auto import tqdm

    lines = progress is None and not sys.stderr.isatty()  # a log file: one plain line per row instead of a bar
    if init_weights is None:
        log.warning("no --init-weights: every row trains AlexNet from scratch (the paper fine-tunes ImageNet weights)")
    for i, row in enumerate(tqdm(recipe.rows, desc=f"reproduce {recipe.name}",
                                 disable=None if progress is None else not progress), 1):
        if lines:
            print(f"reproduce {recipe.name}: row {i}/{len(recipe.rows)} {row.label!r}", file=sys.stderr, flush=True)
        data = sources[row.data]
        with warnings.catch_warnings():  # said once above, not once per row
            warnings.filterwarnings("ignore", message=".*from scratch.*")
            run, setting = train_row(recipe, row, data, out / "runs" / slug(row.run or row.label), budget,
                                     init_weights=init_weights, device=device, progress=progress,
                                     cache_dir=out / "cache", stop_after_steps=stop_after_steps)
        dest = out / "scores" / slug(row.label) if row.run else None
        if dest is not None:
            dest.mkdir(parents=True, exist_ok=True)
        result = score_row(row.protocol or recipe.protocol, run, sources[row.test_data or row.data], n_boot=n_boot,
                           device=device, dest=dest,
                           cache_dir=out / "cache")
        results[row.label] = result
        records.append(_row_record(recipe, row, result, run, setting, synthetic))
    _add_comparisons(records, results, n_boot=n_boot)
    if recipe.select_row_on_validation:
        best = max((r for r in records if r["validation_rho"] is not None), key=lambda r: r["validation_rho"],
                   default=None)
        for r in records:
            r["selected_on_validation"] = r is best
    files = _write_table(recipe, records, out, budget=budget, synthetic=synthetic,
                         data_origin=", ".join(d.origin for d in sources.values()))
    write_json(out / SUMMARY_FILE, {**doc, "status": "complete", "files": [f.name for f in files],
                                    "rows": records})
    from .models.pipeline import prune_cache

    if _own_cache(out):
        prune_cache(out / "cache", used_since=t_start)  # keep only the pixels this table used
    return TableResult(records=records, files=files, synthetic=synthetic)


def _own_cache(out: Path) -> bool:
    """Whether ``out/cache`` may be pruned: a real folder inside ``out``; a link (or a folder
    leading outside) is refused (:class:`OutputError`), never pruned through."""
    cache = out / "cache"
    _refuse_outside(out, cache, "its files are not pruned")
    return cache.is_dir()


def _write_table(recipe: Recipe, records: list[dict[str, Any]], out: Path, *, budget: str, synthetic: bool,
                 data_origin: str) -> list[Path]:
    md, csv = out / f"{recipe.name}.md", out / f"{recipe.name}.csv"
    write_text(md, render_markdown(recipe, records, budget=budget, synthetic=synthetic, data_origin=data_origin))
    frame = pd.DataFrame(records).drop(columns=["run"])
    for col in [c for c in frame.columns if c == "paper" or c.startswith("paper ")]:  # as the paper gives them
        frame[col] = [None if v is None or pd.isna(v) else paper.as_reported(v) for v in frame[col]]
    # text cells that a spreadsheet would run as formulas are written as text (as the leaderboard's)
    write_text(csv, table_csv(frame, lineterminator="\n", float_format="%.17g"))
    files = [md, csv]
    if recipe.figure:
        png = out / f"{recipe.name}.png"
        write_bytes(png, render_figure(recipe, records, synthetic=synthetic))
        files.append(png)
    return files

"""The human-consistency report: batch-level rater consistency (paper §3), Table 6 and Fig. 6
(paper §5.4) beside the paper's numbers, Krippendorff's α, per-rater reliability, and the methods
in plain words. Written as a self-contained HTML page and a Markdown twin, with the JSON and CSV
results of every analysis beside them."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from .. import _atomic, consistency, human, paper, reliability
from .._csvcells import table_csv
from .._paths import input_folders
from ..data import AADBData
from .._plotting import figure, to_png
from . import Option
from ._document import Document, Figure, Table, render_html, render_markdown

#: Command-line options of ``aadb report human-consistency`` (passed to :func:`write_report`).
OPTIONS: tuple[Option, ...] = (
    Option("--submission", "predictions", "submission CSV (image_id,score; docs/protocols.md) of a model on the scope split",
           aliases=("--predictions",)),
    Option("--n-perm", "n_perm", "permutations per batch test", int, consistency.DEFAULT_N_PERM),
    Option("--q", "q", "Benjamini–Hochberg false discovery rate", float, paper.CONSISTENCY_FDR_Q),
    Option("--method", "method", "batch-test method", str, consistency.DEFAULT_METHOD, tuple(consistency.METHODS)),
    Option("--rater-n-perm", "rater_n_perm", "permutations per rater in the reliability table", int,
           reliability.DEFAULT_RATER_N_PERM),
    Option("--scope", "scope", "split on which per-worker ρ is taken", str, "test", human.SCOPES),
    Option("--count-scope", "count_scope", "where images rated are counted for the thresholds", str, "all",
           (*human.SCOPES, "scope")),
    Option("--leave-one-out", "leave_one_out", "leave the worker's own rating out of the mean", bool, False,
           action="store_true"),
    Option("--thresholds", "thresholds", "images-rated thresholds (a worker counts when n_images > t)", int,
           human.PAPER_THRESHOLDS, nargs="+"),
    Option("--n-boot", "n_boot", "bootstrap resamples for confidence intervals", int, 1000),
    Option("--seed", "seed", "seed of permutations and bootstrap (0 to 2**63 - 1)", int, 0),
)

REPORT_HTML = "report.html"
REPORT_MD = "report.md"
FIGURE_FILES = {
    "rho_histogram": consistency.OUTPUT_FILES["rho_histogram"],
    "p_histogram": consistency.OUTPUT_FILES["p_histogram"],
    "fig6_images": "fig6_images_per_worker.png",
    "fig6_rho": "fig6_worker_rho.png",
}
RELIABILITY_FILES = {"summary": "reliability.json", "raters": "rater_reliability.csv"}
#: Above this many raters the report lists the flagged ones and the busiest; the CSV has all.
MAX_RATER_ROWS = 200


def read_predictions(path: str | Path, expected_ids: list[str]) -> pd.Series:
    """Scores of a submission CSV, validated by :func:`aadb_toolkit.submissions.read_submission`."""
    from ..submissions import read_submission

    return read_submission(path, expected_ids, split_name="scope split").scores


#: Output-marker kind of a report folder (see :mod:`aadb_toolkit._atomic`).
OUTPUT_KIND = "report"


def write_report(data: AADBData, out_dir: str | Path, *, predictions: str | Path | None = None,
                 n_perm: int = consistency.DEFAULT_N_PERM, q: float = paper.CONSISTENCY_FDR_Q,
                 method: str = consistency.DEFAULT_METHOD, rater_n_perm: int = reliability.DEFAULT_RATER_N_PERM,
                 scope: str = "test", count_scope: str = "all", leave_one_out: bool = False,
                 thresholds: tuple[int, ...] = human.PAPER_THRESHOLDS, n_boot: int = 1000,
                 seed: int = 0, show_progress: bool | None = None) -> dict[str, Path]:
    """Run every analysis on loaded ``data`` and write ``report.html``, ``report.md``, their figures
    and the JSON/CSV results into the folder ``out_dir``, built aside and swapped in whole (it
    replaces only a report folder the toolkit wrote); returns the paths by role."""
    inputs = input_folders(data) + ((predictions,) if predictions is not None else ())
    _atomic.check_output_folder(out_dir, OUTPUT_KIND, inputs=inputs)  # before the work, and at the swap
    preds = None
    if predictions is not None:
        ids = data.images["image_id"].astype(str) if scope == "all" else data.split(scope)["image_id"].astype(str)
        preds = read_predictions(predictions, ids.tolist())
    cons = consistency.analyze_batches(data.ratings, n_perm=n_perm, q=q, method=method, seed=seed,
                                       source=data.origin, show_progress=show_progress, provenance=data.provenance)
    workers = human.worker_table(data.ratings, data.images, scope=scope, count_scope=count_scope,
                                 leave_one_out=leave_one_out, predictions=preds)
    hdoc = human.summarize(workers, data, thresholds=tuple(thresholds), leave_one_out=leave_one_out, scope=scope,
                           count_scope=count_scope, predictions=preds, n_boot=n_boot, seed=seed)
    if predictions is not None:
        hdoc["predictions_file"] = Path(predictions).name
    rdoc, raters = reliability.reliability_summary(data.ratings, n_perm=rater_n_perm, q=q,
                                                   n_boot=min(n_boot, 200), seed=seed, provenance=data.provenance)
    pngs = consistency.figures(cons)
    pngs["fig6_images"] = fig6_images_per_worker(workers)
    pngs["fig6_rho"] = fig6_worker_rho(workers, hdoc.get("model_rho_overall"))
    doc = build_document(data, cons, workers, hdoc, rdoc, raters, pngs)

    out = Path(out_dir).expanduser().absolute()
    with _atomic.atomic_dir(out, kind=OUTPUT_KIND, inputs=inputs) as stage:
        paths = dict(consistency.write_outputs(cons, stage))
        paths.update({f"human_{k}": v for k, v in human.write_outputs(hdoc, workers, stage).items()})
        rel = {k: stage / v for k, v in RELIABILITY_FILES.items()}
        _atomic.write_json(rel["summary"], rdoc)
        _atomic.write_text(rel["raters"], table_csv(raters))
        paths.update({f"reliability_{k}": v for k, v in rel.items()})
        for f in doc.figures():
            _atomic.write_bytes(stage / f.file, f.png)
            paths[f"figure:{f.file}"] = stage / f.file
        _atomic.write_text(stage / REPORT_MD, render_markdown(doc))
        _atomic.write_text(stage / REPORT_HTML, render_html(doc))
        paths["markdown"], paths["html"] = stage / REPORT_MD, stage / REPORT_HTML
    return {role: out / p.relative_to(stage) for role, p in paths.items()}


# --- figures ---------------------------------------------------------------------------------
#: Fig. 6 panels in inches at the toolkit's 200 dpi: 1,400 px wide, the width of the report page.
FIG6_SIZE: tuple[float, float] = (7.0, 3.2)


def fig6_images_per_worker(workers: pd.DataFrame) -> bytes:
    """Fig. 6 (left): images rated per worker, workers sorted by workload (the long tail)."""
    fig, ax = figure(*FIG6_SIZE)
    n = np.sort(workers["n_images"].to_numpy())[::-1]
    if len(n):
        ax.bar(np.arange(1, len(n) + 1), n, width=1.0, color="#4C72B0")
        for t, colour, width in ((100, "#777", 1.0), (200, "#111", 1.4)):
            ax.axhline(t, color=colour, linestyle="--", linewidth=width, label=f"{t} images")
        ax.legend(loc="upper right")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("worker (sorted by images rated)")
    ax.set_ylabel("images rated")
    ax.set_title(f"Images rated per worker ({len(n)} workers)")
    return to_png(fig)


def fig6_worker_rho(workers: pd.DataFrame, model_rho: float | None) -> bytes:
    """Fig. 6 (right): each worker's ρ against the mean score, in the left panel's order, with the
    model's ρ as a red line when predictions are given."""
    fig, ax = figure(*FIG6_SIZE)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    order = workers.sort_values(["n_images", "rater_id"], ascending=[False, True], kind="stable").reset_index(drop=True)
    ok = order["rho"].notna().to_numpy()
    x = np.arange(1, len(order) + 1)
    ax.scatter(x[ok], order["rho"].to_numpy()[ok], s=10, color="#4C72B0", label="worker ρ")
    if ok.any():
        ax.axhline(float(order["rho"][ok].mean()), color="#555", linestyle="--", linewidth=1, label="mean worker ρ")
    if model_rho is not None and math.isfinite(model_rho):
        ax.axhline(model_rho, color="red", linewidth=1.5, label=f"model ρ = {model_rho:.4f}")
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel("worker (sorted by images rated)")
    ax.set_ylabel("Spearman ρ")
    ax.set_title(f"Per-worker ρ ({int(ok.sum())} workers with a defined ρ)")
    ax.legend(loc="lower left", fontsize=8)
    return to_png(fig)


# --- document --------------------------------------------------------------------------------
def _f(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return f"{x:.{digits}f}"


def _p(x: Any) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return f"{x:.2e}" if x < 1e-3 else f"{x:.4f}"


def build_document(data: Any, cons: consistency.ConsistencyResult, workers: pd.DataFrame, hdoc: dict[str, Any],
                   rdoc: dict[str, Any], raters: pd.DataFrame, pngs: dict[str, bytes]) -> Document:
    """Assemble the report's blocks (shared by the HTML and the Markdown renderings)."""
    doc = Document("Human-consistency report")
    _intro(doc, data, cons.summary, hdoc)
    _batch_section(doc, cons.summary, pngs)
    _table6_section(doc, hdoc)
    _fig6_section(doc, pngs, "model_rho_overall" in hdoc)
    _reliability_section(doc, rdoc, raters)
    _methods_section(doc, cons.summary)
    return doc


def _intro(doc: Document, data: Any, s: dict[str, Any], hdoc: dict[str, Any]) -> None:
    if data.provenance.synthetic:
        doc.note("This data is SYNTHETIC (written by `aadb simulate`): a test instrument in AADB's format, "
                 "not AADB. Every number computed here describes simulated raters; only the columns "
                 "labelled “paper (AADB)” are about the real data set.")
    doc.para(f"Data: {data.origin} — {len(data.images):,} images, {len(data.ratings):,} ratings, "
             f"{data.ratings['rater_id'].nunique():,} raters, {s['n_batches']:,} batches. "
             f"Toolkit {s['toolkit_version']}. Numbers labelled “paper (AADB)” are those reported by "
             "Kong et al. (ECCV 2016) on the real AADB; all other numbers are computed on this data.")
    if "fingerprint" in hdoc:
        doc.para(f"Ground-truth fingerprint of the {hdoc['scope']} split: {hdoc['fingerprint']}")


def _batch_section(doc: Document, s: dict[str, Any], pngs: dict[str, bytes]) -> None:
    doc.heading("1. Batch-level consistency (paper §3)")
    unit = "pairs of raters" if s["unit"] == "pair" else "batches"
    doc.para(f"Method: {s['method']} ({s['method_description']}); {s['n_perm']:,} permutations per test, "
             f"Benjamini–Hochberg at FDR q = {s['q']}, seed {s['seed']}.")
    doc.add(Table(["quantity", "this data", "paper (AADB)"], [
        [f"{unit} with significant agreement", f"{s['n_significant']:,} of {s['n_tests']:,} tested", "—"],
        ["percent significant (of all batches)" if s["unit"] == "batch" else "percent significant (of all pairs)",
         _f(s["percent_significant"], 2) + " %", f"{paper.CONSISTENCY_PERCENT_SIGNIFICANT:.2f} %"],
        ["percent significant (of tested)", _f(s["percent_significant_of_tested"], 2) + " %", "—"],
        ["batches not tested", ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in s["degenerate"].items()), "—"],
        ["pairs excluded", ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in s["excluded_pairs"].items()), "—"],
        ["mean / median batch ρ", f"{_f(s['mean_batch_rho'])} / {_f(s['median_batch_rho'])}", "—"],
        ["ratings without a score (excluded)", f"{s['n_ratings_missing_score']:,}", "—"],
    ], caption="Batch consistency"))
    doc.add(Figure(FIGURE_FILES["rho_histogram"], pngs["rho_histogram"], "Histogram of batch mean Spearman rho",
                   "Mean pairwise Spearman ρ of each tested batch."))
    doc.add(Figure(FIGURE_FILES["p_histogram"], pngs["p_histogram"], "Histogram of permutation p-values",
                   "Permutation p-values before the Benjamini–Hochberg adjustment."))


def _table6_section(doc: Document, hdoc: dict[str, Any]) -> None:
    doc.heading("2. Human consistency: Table 6 (paper §5.4)")
    has_model = "model_rho_overall" in hdoc
    cols = ["#Images", "#Workers", "ρ (this data)", "95% CI"]
    if has_model:
        cols += ["model ρ, same workers' images"]
    cols += ["#Workers paper (AADB)", "ρ paper (AADB)"]
    rows = []
    for g in hdoc["thresholds"]:
        t = g["min_images"]
        ref = paper.TABLE6_HUMAN.get(t)
        row = [f"> {t}", f"{g['n_workers']}" + (f" (+{g['n_workers_undefined']} undefined)" if g["n_workers_undefined"] else ""),
               _f(g["mean_rho"]), f"[{_f(g['ci_low'])}, {_f(g['ci_high'])}]"]
        if has_model:
            row.append(_f(g.get("mean_model_rho")))
        row += [str(ref[0]) if ref else "—", _f(ref[1]) if ref else "—"]
        rows.append(row)
    best = ["model (predictions), all scope images", "—", _f(hdoc.get("model_rho_overall")), "—"] if has_model else None
    if best is not None:
        rows.append(best + ["—", "—", "—"])
    rows.append(["paper's best model (Reg+Rank+Att+Cont)", "—", "—", "—"] + (["—"] if has_model else [])
                + ["—", _f(paper.TABLE6_OUR_BEST_RHO)])
    doc.add(Table(cols, rows, caption="Table 6: workers grouped by images rated, mean Spearman ρ against the mean score"))
    doc.para(f"ρ is taken over each worker's {hdoc['scope']} images; images rated are counted over "
             f"{'all splits' if hdoc['count_scope'] == 'all' else hdoc['count_scope']}; the worker's own rating is "
             f"{'left out of' if hdoc['leave_one_out'] else 'included in'} the mean. A worker is in a group when "
             f"they rated more images than its threshold. Undefined ρ (fewer than {human.MIN_IMAGES_FOR_RHO} scope "
             "images, or constant scores) is not averaged: " + ", ".join(
                 f"{k.replace('_', ' ')}: {v}" for k, v in hdoc["rho_status_counts"].items()) + ".")


def _fig6_section(doc: Document, pngs: dict[str, bytes], has_model: bool) -> None:
    doc.heading("3. Fig. 6: workload and per-worker ρ")
    doc.add(Figure(FIGURE_FILES["fig6_images"], pngs["fig6_images"], "Images rated per worker, sorted",
                   "Images rated per worker, workers sorted by workload (long tail); dashed lines at 100 (grey) and 200 (black)."))
    doc.add(Figure(FIGURE_FILES["fig6_rho"], pngs["fig6_rho"], "Per-worker Spearman rho",
                   "Each worker's ρ against the mean score, in the same order"
                   + ("; red line: the model's ρ on all scope images." if has_model else
                      "; run with --submission to draw a model's ρ as a red line.")))


def _reliability_section(doc: Document, rdoc: dict[str, Any], raters: pd.DataFrame) -> None:
    doc.heading("4. Inter-rater reliability")
    ka = rdoc["krippendorff_alpha"]
    doc.add(Table(["level", "Krippendorff's α", "95% CI (bootstrap over images)", "pairable images", "values"], [
        [lvl, _f(a["alpha"]), f"[{_f(a['ci_low'])}, {_f(a['ci_high'])}]", f"{a['n_pairable_images']:,}", f"{a['n_values']:,}"]
        for lvl, a in ka.items()], caption="Krippendorff's α of the overall score"))
    doc.note(rdoc["icc_note"])
    rs = rdoc["raters"]
    doc.para(f"Per-rater reliability: {rs['n_raters']} raters; {rs['status_counts']['tested']} tested, "
             f"{rs['n_significant']} agree with the others beyond chance, {rs['n_chance_like']} are flagged as "
             f"indistinguishable from chance (BH-adjusted p > {rs['q']}); "
             + ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in rs["status_counts"].items() if k != "tested")
             + " not tested.")
    shown = raters
    if len(raters) > MAX_RATER_ROWS:
        shown = pd.concat([raters[raters["chance_like"]], raters[~raters["chance_like"]].head(
            max(0, MAX_RATER_ROWS - int(raters["chance_like"].sum())))])
        doc.para(f"Showing {len(shown)} of {len(raters)} raters (all flagged ones first); "
                 f"{RELIABILITY_FILES['raters']} lists every rater.")
    flagged = {k for k, v in enumerate(shown["chance_like"].to_numpy()) if v}
    doc.add(Table(["rater", "images", "used", "ρ vs others' mean", "p", "p (BH)", "flag"], [
        [r.rater_id, r.n_images, r.n_used, _f(r.rho), _p(r.p_value), _p(r.p_adjusted),
         "chance-like" if r.chance_like else ("agrees" if r.significant else r.status.replace("_", " "))]
        for r in shown.itertuples(index=False)], caption="Per-rater reliability", flagged=flagged))


def _methods_section(doc: Document, s: dict[str, Any]) -> None:
    doc.heading("5. Methods in plain words")
    doc.bullets([
        "Batch consistency. The same five workers rate each batch of ten images. For every pair of workers in "
        "a batch we rank the images by each worker's score (tied scores share the average rank) and compute "
        "Spearman's ρ over the images both rated. A worker who gave every image the same score has no ranking; "
        "their pairs are left out and counted. The batch's statistic is the mean ρ over its pairs.",
        "Is the agreement more than chance? We shuffle each worker's scores among the images they rated, "
        f"independently for every worker, {s['n_perm']:,} times, and count how often the shuffled batch agrees "
        "at least as well as the real one: p = (1 + count) / (1 + shuffles). Shuffles are drawn from a seeded "
        "generator, so the numbers are reproducible.",
        f"Many batches are tested at once, so we use the Benjamini–Hochberg procedure to keep the "
        f"expected share of false discoveries at {s['q']}. A batch that cannot be tested (fewer than 2 workers, "
        "no pair with 3 common images, or only constant workers) is reported as not tested and counts as not "
        "significant in the headline percentage; the percentage of tested batches is given too.",
        "Human consistency (Table 6, Fig. 6). For each worker, Spearman's ρ between their scores and the mean "
        "score of the same images (as in the paper, the worker's own rating is part of the mean unless "
        "leave-one-out is chosen). Workers are grouped by how many images they rated; the confidence interval "
        "resamples workers (percentile bootstrap).",
        "Krippendorff's α measures agreement among all ratings, correcting for chance, and allows each image "
        "to be rated by a different set of workers. Ordinal α respects only the order of the scores 1–5; "
        "interval α treats them as equally spaced.",
        "Per-rater reliability. Each rater's scores are compared (Spearman's ρ) with the mean of the other "
        "raters on the same images; shuffling the rater's scores gives a permutation p-value, and "
        "Benjamini–Hochberg across raters decides which raters agree beyond chance. A flagged rater is "
        "one whose agreement cannot be told apart from random answers with the images they rated — few "
        "images make that more likely, so the flag is not a verdict on the person.",
    ])

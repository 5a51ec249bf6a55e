"""The curation report: ``curation_report.json`` (complete and machine-readable: counts, the
accounting identities, a status for every CSV row and image, and every finding with its location)
and ``curation_report.md`` (the same summary for people, with the first findings of each kind)."""

from __future__ import annotations

from collections import defaultdict

from .._markdown import code, escape

REPORT_JSON = "curation_report.json"
REPORT_MD = "curation_report.md"
REPORT_FORMAT = "aadb-curation-report"
REPORT_FORMAT_VERSION = 1
_MD_EXAMPLES_PER_REASON = 10


def accounting(total: int, parts: dict[str, int]) -> dict:
    """An accounting identity: ``total`` must equal the sum of ``parts``."""
    return {"total": int(total), "parts": {k: int(v) for k, v in parts.items()},
            "balanced": int(total) == sum(int(v) for v in parts.values())}


def render_markdown(report: dict) -> str:
    """A readable summary of a curation report."""
    s = report["summary"]
    lines = [
        "# AADB curation report",
        "",
        f"- Release: {code(report['release_root'])}",
        f"- Toolkit: aadb_toolkit {report['toolkit_version']}",
        f"- Raw results: {code(report['csv']['file'])} ({report['csv']['rows_total']} rows; "
        f"{report['csv']['row_numbering']})",
        f"- Bad values: `{report['options']['on_bad_value']}`; strict labels: {report['options']['strict_labels']}",
        f"- Rater key fingerprint: `{report['key_fingerprint']}` (identifies the key, does not reveal it)",
        "",
        "## Result",
        "",
        "| | count |",
        "|---|---:|",
        f"| images kept | {s['images']} |",
        f"| ratings kept | {s['ratings']} |",
        f"| batches (HITs) | {s['batches']} |",
        f"| raters | {s['raters']} |",
        *(f"| split {k} | {v} |" for k, v in s["splits"].items()),
        "",
        f"Split method: **{_md(report['split']['method'])}** — {_md(report['split']['detail'])}",
        "",
        "## Accounting",
        "",
        "Every input item is kept, excluded or flagged; each line below must add up.",
        "",
        "| what | total | parts | adds up |",
        "|---|---:|---|:---:|",
    ]
    for name, acc in report["accounting"].items():
        parts = ", ".join(f"{k} {v}" for k, v in acc["parts"].items())
        lines.append(f"| {name} | {acc['total']} | {parts} | {'yes' if acc['balanced'] else '**NO**'} |")
    lines += ["", "## Findings by kind and reason", ""]
    if not report["findings"]:
        lines.append("None: every row, answer and image was kept unflagged.")
    else:
        lines += ["| kind | action | reason | count |", "|---|---|---|---:|"]
        for f in report["findings"]:
            lines.append(f"| {_md(f['kind'])} | {_md(f['action'])} | {_md(f['reason'])} | {f['count']} |")
        groups: dict[tuple, list] = defaultdict(list)
        for e in report["entries"]:
            groups[(e["kind"], e["action"], e["reason"])].append(e)
        for (kind, action, reason), entries in groups.items():
            lines += ["", f"### {_md(kind)} {_md(action)}: {_md(reason)} ({len(entries)})", "",
                      "| file | row | column | image | value | detail |", "|---|---:|---|---|---|---|"]
            for e in entries[:_MD_EXAMPLES_PER_REASON]:
                cells = [e["file"], e["row"], e["column"], e["image_id"], e["value"], e["detail"]]
                lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
            if len(entries) > _MD_EXAMPLES_PER_REASON:
                lines.append(f"\n… and {len(entries) - _MD_EXAMPLES_PER_REASON} more in `{REPORT_JSON}`.")
    return "\n".join(lines) + "\n"


def _md(value: object) -> str:
    return escape(value)

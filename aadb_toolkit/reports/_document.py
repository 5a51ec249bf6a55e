"""A small document model rendered twice: a self-contained HTML page (figures as data: URIs, inline
CSS, no scripts or external references) and a Markdown twin (figures as PNG files beside it)."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from typing import Any, Sequence

from .._markdown import escape

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; max-width: 1000px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #4C72B0; padding-bottom: .2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: .3em .6em; text-align: right; }
th { background: #f0f3f8; }
td:first-child, th:first-child { text-align: left; }
caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: .3em; }
figure { margin: 1.2em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #555; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: .5em .8em; }
tr.flag td { background: #fdecea; }
"""


@dataclass
class Figure:
    """A PNG figure: ``file`` is its name beside the Markdown file."""

    file: str
    png: bytes
    alt: str
    caption: str = ""


@dataclass
class Table:
    """A table of already formatted cells; rows whose index is in ``flagged`` are highlighted."""

    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    caption: str = ""
    flagged: set[int] = field(default_factory=set)


@dataclass
class Document:
    """An ordered list of blocks: ("h1"|"h2"|"p"|"note", text), ("list", [text]), Table, Figure."""

    title: str
    blocks: list[Any] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append((f"h{level}", text))

    def para(self, text: str) -> None:
        self.blocks.append(("p", text))

    def note(self, text: str) -> None:
        self.blocks.append(("note", text))

    def bullets(self, items: Sequence[str]) -> None:
        self.blocks.append(("list", list(items)))

    def add(self, block: Table | Figure) -> None:
        self.blocks.append(block)

    def figures(self) -> list[Figure]:
        """The figures in document order."""
        return [b for b in self.blocks if isinstance(b, Figure)]


def _cell(v: Any) -> str:
    return "" if v is None else str(v)


def render_html(doc: Document) -> str:
    """The document as one self-contained HTML page."""
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{e(doc.title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>", f"<h1>{e(doc.title)}</h1>"]
    for b in doc.blocks:
        if isinstance(b, Figure):
            data = base64.b64encode(b.png).decode("ascii")
            out.append(f'<figure><img src="data:image/png;base64,{data}" alt="{e(b.alt)}" data-file="{e(b.file)}">'
                       + (f"<figcaption>{e(b.caption)}</figcaption>" if b.caption else "") + "</figure>")
        elif isinstance(b, Table):
            out.append("<table>" + (f"<caption>{e(b.caption)}</caption>" if b.caption else ""))
            out.append("<thead><tr>" + "".join(f"<th>{e(str(c))}</th>" for c in b.columns) + "</tr></thead><tbody>")
            for k, row in enumerate(b.rows):
                cls = ' class="flag"' if k in b.flagged else ""
                out.append(f"<tr{cls}>" + "".join(f"<td>{e(_cell(v))}</td>" for v in row) + "</tr>")
            out.append("</tbody></table>")
        else:
            kind, payload = b
            if kind == "list":
                out.append("<ul>" + "".join(f"<li>{e(x)}</li>" for x in payload) + "</ul>")
            elif kind == "note":
                out.append(f'<p class="note">{e(payload)}</p>')
            elif kind == "p":
                out.append(f"<p>{e(payload)}</p>")
            else:
                out.append(f"<{kind}>{e(payload)}</{kind}>")
    out += ["</body>", "</html>", ""]
    return "\n".join(out)


def _md_escape(text: str) -> str:
    return escape(text)


def render_markdown(doc: Document) -> str:
    """The document as Markdown; figures refer to their PNG files by name."""
    out = [f"# {_md_escape(doc.title)}", ""]
    for b in doc.blocks:
        if isinstance(b, Figure):
            out += [f"![{_md_escape(b.alt)}]({b.file})", ""]
            if b.caption:
                out += [f"*{_md_escape(b.caption)}*", ""]
        elif isinstance(b, Table):
            if b.caption:
                out += [f"**{_md_escape(b.caption)}**", ""]
            out.append("| " + " | ".join(_md_escape(c) for c in b.columns) + " |")
            out.append("|" + "|".join(["---"] + ["---:"] * (len(b.columns) - 1)) + "|")
            for k, row in enumerate(b.rows):
                cells = [_md_escape(_cell(v)) for v in row]
                if k in b.flagged:
                    cells[0] = f"**{cells[0]}** ⚑"
                out.append("| " + " | ".join(cells) + " |")
            out.append("")
        else:
            kind, payload = b  # text may carry data (paths, names): escaped like the table cells
            if kind == "list":
                out += [f"- {_md_escape(x)}" for x in payload] + [""]
            elif kind == "note":
                out += [f"> **Note.** {_md_escape(payload)}", ""]
            elif kind == "p":
                out += [_md_escape(payload), ""]
            else:
                out += ["#" * int(kind[1]) + " " + _md_escape(payload), ""]
    return "\n".join(out).rstrip() + "\n"

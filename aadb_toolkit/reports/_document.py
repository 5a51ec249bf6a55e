"""A small document model rendered twice: a self-contained HTML page (figures as data: URIs, inline
CSS, no scripts or external references) and a Markdown twin (figures as PNG files beside it).
The reports and the leaderboard pages share it, and so share one look.

Text is plain: in HTML it is escaped (a `backtick span` becomes ``<code>``); in Markdown, table
cells are escaped, except :class:`Verbatim` cells, text the toolkit wrote itself."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from .._markdown import escape, escape_text, printable

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; max-width: 1000px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #4C72B0; padding-bottom: .2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
.table-wrap { overflow-x: auto; margin: 1em 0; }
table { border-collapse: collapse; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: .3em .6em; text-align: right; }
th { background: #f0f3f8; }
td:first-child, th:first-child, th.text, td.text { text-align: left; }
th.wide, td.wide { text-align: left; min-width: 16em; }
th.group { text-align: center; }
table.board td { white-space: nowrap; }
table.board td.wide, table.board td.text { white-space: normal; }
caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: .3em; }
figure { margin: 1.2em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #555; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: .5em .8em; }
tr.flag td { background: #fdecea; }
table.reported td { background: #f6f6f6; font-style: italic; }
code { font-size: 0.92em; background: #f3f3f3; padding: 0 .2em; }
"""
_CODE_SPAN = re.compile(r"`([^`\n]+)`")


class Verbatim(str):
    """Table-cell text the toolkit wrote itself (e.g. the paper's row names): Markdown shows it as
    is instead of escaping it. Never wrap text that comes from users or files in it."""


@dataclass
class Figure:
    """A PNG figure: ``file`` is its name beside the Markdown file."""

    file: str
    png: bytes
    alt: str
    caption: str = ""


@dataclass
class Table:
    """A table of already formatted cells; rows whose index is in ``flagged`` are highlighted.

    Columns in ``text`` are left-aligned, those in ``wide`` also get room (a name column); ``groups``
    ((label, number of columns), covering every column) adds a header row above the columns in HTML,
    where ``labels`` (if given) are the columns' names under their group; Markdown keeps ``columns``."""

    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    caption: str = ""
    flagged: set[int] = field(default_factory=set)
    css_class: str = ""
    text: frozenset[str] = frozenset()
    wide: frozenset[str] = frozenset()
    groups: Sequence[tuple[str, int]] = ()
    labels: Sequence[str] = ()


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

    def links(self, items: Sequence[tuple[str, str, str]]) -> None:
        """A list of links to sibling pages: (text, page stem, description); the HTML page links to
        ``<stem>.html``, the Markdown twin to ``<stem>.md``."""
        self.blocks.append(("links", list(items)))

    def add(self, block: Table | Figure) -> None:
        self.blocks.append(block)

    def figures(self) -> list[Figure]:
        """The figures in document order."""
        return [b for b in self.blocks if isinstance(b, Figure)]


def _cell(v: Any) -> str:
    return "" if v is None else printable(v)


def _inline(text: str) -> str:
    """Plain text as HTML: escaped, with `backtick spans` as ``<code>``."""
    return _CODE_SPAN.sub(r"<code>\1</code>", html.escape(printable(text)))


def _e(text: Any) -> str:
    """Text as HTML, escaped and without control characters."""
    return html.escape(printable(text))


#: Link targets a page may carry: a sibling page's plain file stem, nothing with a scheme or a path.
_PLAIN_STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def _header(text: str) -> str:
    """A column header as HTML: escaped, and never broken inside an arrow (``->``)."""
    return _e(text).replace("-&gt;", "\u2011&gt;")


def _html_table(b: Table) -> list[str]:
    """A table inside a box that scrolls sideways on its own, so a wide table never widens the page."""
    def cls(col: str, extra: str = "") -> str:
        names = [n for n, on in (("wide", col in b.wide), ("text", col in b.text), (extra, bool(extra))) if on]
        return f' class="{" ".join(names)}"' if names else ""

    css = f' class="{_e(b.css_class)}"' if b.css_class else ""
    out = [f'<div class="table-wrap"><table{css}>' + (f"<caption>{_inline(b.caption)}</caption>" if b.caption else "")]
    out.append("<thead>")
    if b.groups:
        out.append("<tr>" + "".join(f'<th colspan="{n}" class="group">{_header(g)}</th>' for g, n in b.groups)
                   + "</tr>")
    labels = list(b.labels) or list(b.columns)
    out.append("<tr>" + "".join(f"<th{cls(c)}>{_header(t)}</th>" for c, t in zip(b.columns, labels))
               + "</tr></thead><tbody>")
    for k, row in enumerate(b.rows):
        flag = ' class="flag"' if k in b.flagged else ""
        out.append(f"<tr{flag}>" + "".join(f"<td{cls(c)}>{_e(_cell(v))}</td>" for c, v in zip(b.columns, row))
                   + "</tr>")
    out.append("</tbody></table></div>")
    return out


def _html_link(text: str, stem: str, rest: str) -> str:
    if not _PLAIN_STEM.fullmatch(stem):  # never a link built from anything but a plain page name
        return f"<li>{_e(text)}{_inline(rest)}</li>"
    return f'<li><a href="{_e(stem)}.html">{_e(text)}</a>{_inline(rest)}</li>'


def render_html(doc: Document) -> str:
    """The document as one self-contained HTML page."""
    e = _e
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{e(doc.title.replace('`', ''))}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
           f"<h1>{_inline(doc.title)}</h1>"]
    for b in doc.blocks:
        if isinstance(b, Figure):
            data = base64.b64encode(b.png).decode("ascii")
            out.append(f'<figure><img src="data:image/png;base64,{data}" alt="{e(b.alt)}" data-file="{e(b.file)}">'
                       + (f"<figcaption>{e(b.caption)}</figcaption>" if b.caption else "") + "</figure>")
        elif isinstance(b, Table):
            out += _html_table(b)
        else:
            kind, payload = b
            if kind == "list":
                out.append("<ul>" + "".join(f"<li>{_inline(x)}</li>" for x in payload) + "</ul>")
            elif kind == "links":
                out.append("<ul>" + "".join(_html_link(*item) for item in payload) + "</ul>")
            elif kind == "note":
                out.append(f'<p class="note">{_inline(payload)}</p>')
            elif kind == "p":
                out.append(f"<p>{_inline(payload)}</p>")
            else:
                out.append(f"<{kind}>{_inline(payload)}</{kind}>")
    out += ["</body>", "</html>", ""]
    return "\n".join(out)


def _md_escape(text: str) -> str:
    """A table cell made inert: ``\\ < [ ] ` |`` backslash-escaped (no tag, link or code span can
    open, no row can split), line breaks as spaces (:func:`aadb_toolkit._markdown.escape`)."""
    return escape(text)


def _md_cell(v: Any) -> str:
    return v.replace("|", "\\|") if isinstance(v, Verbatim) else _md_escape(_cell(v))


def render_markdown(doc: Document) -> str:
    """The document as Markdown; figures refer to their PNG files by name."""
    out = [f"# {escape_text(doc.title)}", ""]
    for b in doc.blocks:
        if isinstance(b, Figure):
            out += [f"![{_md_escape(b.alt)}]({b.file})", ""]
            if b.caption:
                out += [f"*{escape_text(b.caption)}*", ""]
        elif isinstance(b, Table):
            if b.caption:
                out += [f"**{escape_text(b.caption)}**", ""]
            out.append("| " + " | ".join(_md_cell(c) for c in b.columns) + " |")
            out.append("|" + "|".join("---" if k == 0 else ":---" if c in b.text or c in b.wide else "---:"
                                      for k, c in enumerate(b.columns)) + "|")
            for k, row in enumerate(b.rows):
                cells = [_md_cell(v) for v in row]
                if k in b.flagged:
                    cells[0] = f"**{cells[0]}** ⚑"
                out.append("| " + " | ".join(cells) + " |")
            out.append("")
        else:
            kind, payload = b  # text may carry data (paths, names): escaped like the table cells
            if kind == "list":
                out += [f"- {escape_text(x)}" for x in payload] + [""]
            elif kind == "links":
                out += [f"- [{escape(text)}]({stem}.md){escape_text(rest)}" if _PLAIN_STEM.fullmatch(stem)
                        else f"- {escape(text)}{escape_text(rest)}" for text, stem, rest in payload] + [""]
            elif kind == "note":
                out += [f"> **Note.** {escape_text(payload)}", ""]
            elif kind == "p":
                out += [escape_text(payload), ""]
            else:
                out += ["#" * int(kind[1]) + " " + escape_text(payload), ""]
    return "\n".join(out).rstrip() + "\n"

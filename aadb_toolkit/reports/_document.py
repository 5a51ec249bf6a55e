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
    """A table of already formatted cells; rows whose index is in ``flagged`` are highlighted."""

    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    caption: str = ""
    flagged: set[int] = field(default_factory=set)
    css_class: str = ""


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
    return "" if v is None else str(v)


def _inline(text: str) -> str:
    """Plain text as HTML: escaped, with `backtick spans` as ``<code>``."""
    return _CODE_SPAN.sub(r"<code>\1</code>", html.escape(str(text)))


def render_html(doc: Document) -> str:
    """The document as one self-contained HTML page."""
    e = html.escape
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
            cls = f' class="{e(b.css_class)}"' if b.css_class else ""
            out.append(f"<table{cls}>" + (f"<caption>{_inline(b.caption)}</caption>" if b.caption else ""))
            out.append("<thead><tr>" + "".join(f"<th>{e(str(c))}</th>" for c in b.columns) + "</tr></thead><tbody>")
            for k, row in enumerate(b.rows):
                cls = ' class="flag"' if k in b.flagged else ""
                out.append(f"<tr{cls}>" + "".join(f"<td>{e(_cell(v))}</td>" for v in row) + "</tr>")
            out.append("</tbody></table>")
        else:
            kind, payload = b
            if kind == "list":
                out.append("<ul>" + "".join(f"<li>{_inline(x)}</li>" for x in payload) + "</ul>")
            elif kind == "links":
                out.append("<ul>" + "".join(f'<li><a href="{e(stem)}.html">{e(text)}</a>{_inline(rest)}</li>'
                                            for text, stem, rest in payload) + "</ul>")
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
    open, no row can split), line breaks as spaces."""
    return re.sub(r"([\\<\[\]`|])", r"\\\1", str(text)).replace("\n", " ")


def _md_cell(v: Any) -> str:
    return v.replace("|", "\\|") if isinstance(v, Verbatim) else _md_escape(_cell(v))


def render_markdown(doc: Document) -> str:
    """The document as Markdown; figures refer to their PNG files by name."""
    out = [f"# {doc.title}", ""]
    for b in doc.blocks:
        if isinstance(b, Figure):
            out += [f"![{_md_escape(b.alt)}]({b.file})", ""]
            if b.caption:
                out += [f"*{b.caption}*", ""]
        elif isinstance(b, Table):
            if b.caption:
                out += [f"**{b.caption}**", ""]
            out.append("| " + " | ".join(_md_cell(Verbatim(c)) for c in b.columns) + " |")
            out.append("|" + "|".join(["---"] + ["---:"] * (len(b.columns) - 1)) + "|")
            for k, row in enumerate(b.rows):
                cells = [_md_cell(v) for v in row]
                if k in b.flagged:
                    cells[0] = f"**{cells[0]}** ⚑"
                out.append("| " + " | ".join(cells) + " |")
            out.append("")
        else:
            kind, payload = b
            if kind == "list":
                out += [f"- {x}" for x in payload] + [""]
            elif kind == "links":
                out += [f"- [{text}]({stem}.md){rest}" for text, stem, rest in payload] + [""]
            elif kind == "note":
                out += [f"> **Note.** {payload}", ""]
            elif kind == "p":
                out += [payload, ""]
            else:
                out += ["#" * int(kind[1]) + " " + payload, ""]
    return "\n".join(out).rstrip() + "\n"

"""A playbook as plain data, and its two renderings (Markdown and HTML) from that one value,
so the CLI's files and the console's pages cannot drift apart.

A document is sections; a section holds paragraphs, bullets (which nest: a decision tree is a
list of questions each with its answers), an optional table and an optional SVG picture.
Every string is escaped in HTML; SVG comes from the server-side chart helpers (already safe).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape


@dataclass
class Item:
    text: str
    children: list[Item] = field(default_factory=list)
    done: bool | None = None  # a checkbox item: [x] / [ ]


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]


@dataclass
class Section:
    heading: str
    paragraphs: list[str] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)
    ordered: bool = False
    table: Table | None = None
    svg: str = ""
    notes: list[str] = field(default_factory=list)  # after the items and the table


@dataclass
class Document:
    slug: str
    title: str
    summary: str
    sections: list[Section] = field(default_factory=list)
    facts: dict[str, object] = field(default_factory=dict)  # the numbers, for tests and JSON


def _md_items(items: list[Item], ordered: bool, depth: int = 0) -> list[str]:
    lines = []
    for number, item in enumerate(items, 1):
        marker = f"{number}." if ordered and depth == 0 else "-"
        box = "" if item.done is None else ("[x] " if item.done else "[ ] ")
        lines.append(f"{'   ' * depth}{marker} {box}{item.text}")
        lines += _md_items(item.children, False, depth + 1)
    return lines


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(doc: Document) -> str:
    lines = [f"# {doc.title}", "", doc.summary, ""]
    for section in doc.sections:
        lines += [f"## {section.heading}", ""]
        for paragraph in section.paragraphs:
            lines += [paragraph, ""]
        if section.items:
            lines += _md_items(section.items, section.ordered) + [""]
        if section.table is not None:
            table = section.table
            lines.append("| " + " | ".join(map(_md_cell, table.headers)) + " |")
            lines.append("|" + "---|" * len(table.headers))
            lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in table.rows]
            lines.append("")
        for note in section.notes:
            lines += [f"_{note}_", ""]
        if section.svg:
            lines += ["_(A picture: see the HTML version, `--format html`.)_", ""]
    return "\n".join(lines).rstrip() + "\n"


def _html_items(items: list[Item], ordered: bool) -> str:
    tag = "ol" if ordered else "ul"
    parts = [f"<{tag}>"]
    for item in items:
        box = ""
        if item.done is not None:
            box = ('<span class="tick" aria-label="done">✓</span> ' if item.done
                   else '<span class="todo" aria-label="not yet">○</span> ')
        children = _html_items(item.children, False) if item.children else ""
        parts.append(f"<li>{box}{escape(item.text)}{children}</li>")
    parts.append(f"</{tag}>")
    return "".join(parts)


def to_html_fragment(doc: Document) -> str:
    """The body (no <h1>: the page around it owns the heading)."""
    parts = [f'<p class="lead">{escape(doc.summary)}</p>']
    for section in doc.sections:
        parts.append(f"<section><h2>{escape(section.heading)}</h2>")
        parts += [f"<p>{escape(p)}</p>" for p in section.paragraphs]
        if section.items:
            parts.append(_html_items(section.items, section.ordered))
        if section.table is not None:
            head = "".join(f"<th>{escape(h)}</th>" for h in section.table.headers)
            body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>"
                           for row in section.table.rows)
            parts.append(f'<div class="table-wrap" tabindex="0"><table><thead><tr>{head}</tr></thead>'
                         f"<tbody>{body}</tbody></table></div>")
        parts += [f'<p class="muted">{escape(note)}</p>' for note in section.notes]
        if section.svg:
            parts.append(f'<figure class="chart">{section.svg}</figure>')
        parts.append("</section>")
    return "\n".join(parts)


STANDALONE_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;"
    "color:#222;line-height:1.45}table{border-collapse:collapse;width:100%}"
    "th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #ddd}"
    "h2{margin-top:2rem;border-bottom:2px solid #eee}.lead{color:#555}.tick{color:#1a7f37}"
    "figure{margin:1rem 0}svg{max-width:100%;height:auto}@media print{body{margin:0}}")


def to_html(doc: Document, *, shop_name: str) -> str:
    """A whole printable page: no scripts, no external assets."""
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{escape(doc.title)} · {escape(shop_name)}</title>"
            f"<style>{STANDALONE_CSS}</style></head><body>\n"
            f"<h1>{escape(doc.title)}</h1>\n{to_html_fragment(doc)}\n</body></html>\n")

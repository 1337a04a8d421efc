"""A drop's story: Markdown written by the brand, rendered to HTML that is safe to put on the
public page (markdown-it, then sanitised by nh3: no script, no event handler, no style, no
raw HTML beyond a small list of tags, links opened with ``rel="noopener noreferrer"``). Pure:
text in, text out."""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

MAX_STORY_CHARS = 20_000
MAX_NOTE_CHARS = 500

# What a story may contain once rendered: prose, lists, quotes, links and images of our own
# media or any https address (the page's CSP still limits where images load from).
_TAGS = {"p", "br", "hr", "h2", "h3", "h4", "strong", "em", "del", "blockquote", "ul", "ol",
         "li", "a", "code", "pre", "img", "figure", "figcaption"}
_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title", "width", "height"}}
_SCHEMES = {"https", "http", "mailto"}

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": True}) \
    .enable("strikethrough")


def render_story(markdown: str) -> str:
    """Sanitised HTML of a story; headings start at ``h2`` (the page's ``h1`` is the name)."""
    html = _markdown.render(markdown[:MAX_STORY_CHARS])
    html = html.replace("<h1>", "<h2>").replace("</h1>", "</h2>")
    return nh3.clean(html, tags=_TAGS, attributes=_ATTRIBUTES, url_schemes=_SCHEMES,
                     link_rel="noopener noreferrer")

"""One playbook value, two renderings: Markdown keeps tables intact and nests lists; HTML
escapes every string it is given."""

from __future__ import annotations

from dropline.console.document import Document, Item, Section, Table, to_html, to_markdown


def _doc() -> Document:
    return Document("t", "Title <b>", "Summary & more", sections=[Section(
        "Steps", items=[Item("first", [Item("child <i>")]), Item("second", done=True)],
        ordered=True, table=Table(["a|b", "c"], [["1|2", "<script>"]]), notes=["after"])])


def test_markdown_nests_items_ticks_boxes_and_escapes_table_pipes():
    text = to_markdown(_doc())

    assert text.startswith("# Title <b>\n\nSummary & more\n")
    assert "1. first\n   - child <i>\n2. [x] second\n" in text
    assert "| a\\|b | c |\n|---|---|\n| 1\\|2 | <script> |" in text
    assert text.index("| 1\\|2") < text.index("_after_")


def test_html_escapes_everything_and_keeps_the_structure():
    html = to_html(_doc(), shop_name="Shop & Co")

    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<h1>Title &lt;b&gt;</h1>" in html and "<title>Title &lt;b&gt; · Shop &amp; Co" in html
    assert "<ol><li>first<ul><li>child &lt;i&gt;</li></ul></li>" in html
    assert 'aria-label="done"' in html

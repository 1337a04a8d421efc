"""Invoices and credit notes as PDF (ReportLab, A4), drawn from the document's own snapshot,
so a document prints the same whenever it is downloaded. Pages are written uncompressed, as
the packing slips are (``orders.documents``): their text is searchable."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime
from typing import Any

from reportlab.lib.pagesizes import A4
from reportlab.pdfgen.canvas import Canvas

from dropline.money import format_money

__all__ = ["credit_note_pdf", "invoice_pdf"]


def _rate(rate_bp: int) -> str:
    return f"{rate_bp / 100:g}%"


class _Page:
    """A cursor down one A4 page."""

    def __init__(self, title: str) -> None:
        self.buffer = io.BytesIO()
        self.canvas = Canvas(self.buffer, pagesize=A4, pageCompression=0, invariant=1)
        self.canvas.setTitle(title)
        self.width, height = A4
        self.y = height - 60

    def text(self, x: float, value: str, *, bold: bool = False, right: bool = False,
             size: int = 10) -> None:
        self.canvas.setFont("Helvetica-Bold" if bold else "Helvetica", size)
        if right:
            self.canvas.drawRightString(x, self.y, value)
        else:
            self.canvas.drawString(x, self.y, value)

    def down(self, by: float = 15) -> None:
        self.y -= by

    def done(self) -> bytes:
        self.canvas.showPage()
        self.canvas.save()
        return self.buffer.getvalue()


def _header(page: _Page, content: dict[str, Any], *, title: str, issued_at: datetime) -> None:
    seller, buyer = content["seller"], content["buyer"]
    right = page.width - 50
    page.text(50, seller.get("name", ""), bold=True, size=16)
    page.text(right, title, bold=True, size=14, right=True)
    page.down(16)
    if seller.get("vat_number"):
        page.text(50, f"VAT number {seller['vat_number']}")
    page.text(right, f"Date {issued_at:%d %B %Y}", right=True)
    page.down(14)
    page.text(right, f"Order {content['order_id']}", right=True)
    page.down(30)
    page.text(50, "Bill to", bold=True)
    for key in ("name", "line1", "line2", "city", "postcode", "country", "email"):
        if buyer.get(key):
            page.down(13)
            page.text(50, str(buyer[key]))
    if buyer.get("vat_number"):
        page.down(13)
        page.text(50, f"VAT number {buyer['vat_number']}")
    page.down(30)


def _vat_table(page: _Page, content: dict[str, Any], money: Callable[[int], str]) -> None:
    right = page.width - 50
    page.text(50, "VAT summary", bold=True)
    page.down(15)
    page.text(50, "Rate", bold=True)
    page.text(right - 150, "Net", bold=True, right=True)
    page.text(right, "VAT", bold=True, right=True)
    for row in content["vat"]:
        page.down(14)
        page.text(50, f"VAT {_rate(row['rate_bp'])}")
        page.text(right - 150, money(row["net_amount"]), right=True)
        page.text(right, money(row["tax_amount"]), right=True)
    page.down(22)
    for label, key in (("Total net", "net_amount"), ("Total VAT", "tax_amount"),
                       ("Total", "gross_amount")):
        page.text(right - 150, label, bold=key == "gross_amount", right=True)
        page.text(right, money(content[key]), bold=key == "gross_amount", right=True)
        page.down(14)
    if content.get("reverse_charge"):
        page.down(10)
        page.text(50, "Reverse charge: the customer accounts for the VAT on this supply.")


def invoice_pdf(*, reference: str, currency: str, issued_at: datetime,
                content: dict[str, Any]) -> bytes:
    """An invoice: the seller and buyer, each line with its VAT rate, net and VAT, the VAT
    summary by rate and the totals."""

    def money(amount: int) -> str:
        return format_money(amount, currency)

    page = _Page(f"Invoice {reference}")
    _header(page, content, title=f"Invoice {reference}", issued_at=issued_at)
    right = page.width - 50
    for x, label, at_right in ((50, "Item", False), (330, "Qty", True), (390, "VAT", True),
                               (right - 75, "Net", True), (right, "VAT amount", True)):
        page.text(x, label, bold=True, right=at_right)
    for line in content["lines"]:
        page.down(15)
        page.text(50, line["description"][:52])
        page.text(330, str(line["quantity"]), right=True)
        page.text(390, _rate(line["tax_rate_bp"]), right=True)
        page.text(right - 75, money(line["net_amount"]), right=True)
        page.text(right, money(line["tax_amount"]), right=True)
    page.down(30)
    _vat_table(page, content, money)
    return page.done()


def credit_note_pdf(*, reference: str, currency: str, issued_at: datetime,
                    content: dict[str, Any]) -> bytes:
    """A credit note against an invoice: the amount credited and the VAT it reverses."""

    def money(amount: int) -> str:
        return format_money(amount, currency)

    page = _Page(f"Credit note {reference}")
    _header(page, content, title=f"Credit note {reference}", issued_at=issued_at)
    page.text(50, f"Credit against invoice {content['invoice']}", bold=True)
    if content.get("reason"):
        page.down(14)
        page.text(50, f"Reason: {content['reason'][:80]}")
    page.down(30)
    _vat_table(page, content, money)
    return page.done()

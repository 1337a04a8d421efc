"""Pure invoice arithmetic: an invoice's lines with net, VAT and gross; the VAT summary by rate;
and a credit note for part of an invoice, its VAT reversed in proportion. Amounts are integer
minor units; rates basis points."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from dropline.pricing import proportional_share
from dropline.tax.rules import refund_tax

__all__ = ["InvoiceLine", "VatRow", "credit_content", "invoice_content", "reference"]

SERIES = {"invoice": "INV", "credit-note": "CN"}


def reference(series: str, number: int) -> str:
    return f"{SERIES[series]}-{number:06d}"


@dataclass(frozen=True)
class InvoiceLine:
    description: str
    quantity: int
    gross_amount: int  # what the buyer paid for the line (after its discount, VAT included)
    tax_rate_bp: int
    tax_amount: int

    @property
    def net_amount(self) -> int:
        return self.gross_amount - self.tax_amount


@dataclass(frozen=True)
class VatRow:
    rate_bp: int
    net_amount: int
    tax_amount: int


def vat_summary(lines: Sequence[InvoiceLine]) -> list[VatRow]:
    """Net and VAT per rate, highest rate first."""
    rows: dict[int, tuple[int, int]] = {}
    for line in lines:
        net, tax = rows.get(line.tax_rate_bp, (0, 0))
        rows[line.tax_rate_bp] = (net + line.net_amount, tax + line.tax_amount)
    return [VatRow(rate, net, tax) for rate, (net, tax) in sorted(rows.items(), reverse=True)]


def invoice_content(lines: Sequence[InvoiceLine], *, seller: dict[str, str],
                    buyer: dict[str, Any], order_id: int, reverse_charge: bool
                    ) -> dict[str, Any]:
    summary = vat_summary(lines)
    return {
        "order_id": order_id, "seller": seller, "buyer": buyer,
        "reverse_charge": reverse_charge,
        "lines": [{**asdict(line), "net_amount": line.net_amount} for line in lines],
        "vat": [asdict(row) for row in summary],
        "net_amount": sum(row.net_amount for row in summary),
        "tax_amount": sum(row.tax_amount for row in summary),
        "gross_amount": sum(line.gross_amount for line in lines),
    }


def credit_content(invoice: dict[str, Any], *, amount: int, reason: str,
                   invoice_reference: str) -> dict[str, Any]:
    """A credit note for ``amount`` of an invoice (a refund): its VAT is the invoice's VAT in
    proportion to the amount, shared between the invoice's rates by their VAT."""
    tax = refund_tax(amount, total_amount=invoice["gross_amount"],
                     tax_amount=invoice["tax_amount"])
    rows = invoice["vat"]
    taxes = proportional_share(tax, [row["tax_amount"] for row in rows])
    nets = proportional_share(amount - tax, [row["net_amount"] for row in rows])
    return {
        "order_id": invoice["order_id"], "seller": invoice["seller"], "buyer": invoice["buyer"],
        "reverse_charge": invoice["reverse_charge"], "invoice": invoice_reference,
        "reason": reason,
        "vat": [{"rate_bp": row["rate_bp"], "net_amount": net, "tax_amount": share}
                for row, net, share in zip(rows, nets, taxes, strict=True)],
        "net_amount": amount - tax, "tax_amount": tax, "gross_amount": amount,
    }

"""Invoices and credit notes: the PDF's text shows the number and the VAT by rate; a partial
refund gets a credit note reversing its VAT in proportion; numbers are gapless and never
change, also when many are issued at once (real concurrent transactions)."""

from __future__ import annotations

import io
import uuid

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select
from typer.testing import CliRunner

from dropline.cli import app
from dropline.invoices import service
from dropline.adapters.payments import LocalCardProvider
from dropline.invoices.models import CreditNote, Invoice
from dropline.orders import flows
from dropline.orders.models import Order, OrderStatus
from dropline.tax import service as tax
from dropline.tax.rules import TaxClass
from tests.builders import (
    CREDIT_NOTES,
    api_token,
    cart_with,
    checkout_body,
    make_location,
    make_product,
    sign_up,
)
from tests.orders.lifecycle_builders import paid_order
from tests.orders.test_races import race

runner = CliRunner()
SELLER = {"name": "Fig & Ink", "vat_number": "GB980780684", "country": "GB"}


def pdf_text(body: bytes) -> str:
    assert body.startswith(b"%PDF")
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(body)).pages)
    return " ".join(text.split())  # one space between words, whatever the layout


def _order_with_two_rates(client, db, clock) -> dict:
    make_location(db)
    _, perfume = make_product(db, clock, price=6000, stock=5, name="Fig Leaf")
    refill_product, refill = make_product(db, clock, price=2100, stock=5, name="Fig Refill")
    with db.transaction() as session:
        tax.set_tax_class(session, product_id=refill_product, tax_class=TaxClass.reduced)
    sign_up(client)
    cart = cart_with(client, perfume)
    client.put(f"/api/v1/carts/{cart}/lines/{refill}", json={"quantity": 1})
    paid = client.post("/api/v1/checkout", json=checkout_body(cart),
                       headers={"Idempotency-Key": str(uuid.uuid4())})
    assert paid.status_code == 201, paid.text
    return paid.json()


def test_the_invoice_pdf_shows_its_number_and_the_vat_by_rate(client, db, clock):
    order = _order_with_two_rates(client, db, clock)  # 60.00 at 20 %, 21.00 at 5 %, free delivery
    headers = api_token(db, clock, "invoices:manage")

    issued = client.post(f"/api/v1/admin/orders/{order['id']}/invoice", headers=headers)
    again = client.post(f"/api/v1/admin/orders/{order['id']}/invoice", headers=headers)
    pdf = client.get(f"/api/v1/admin/invoices/{issued.json()['reference']}.pdf",
                     headers=headers)

    assert issued.status_code == 200, issued.text
    assert issued.json()["reference"] == again.json()["reference"] == "INV-000001"
    assert pdf.headers["content-type"] == "application/pdf"
    text = pdf_text(pdf.content)
    assert "Invoice INV-000001" in text and f"Order {order['id']}" in text
    assert "VAT number GB980780684" not in text  # the test shop has no VAT number set
    # VAT 20 %: 60.00 gross = 50.00 net + 10.00; VAT 5 %: 21.00 gross = 20.00 net + 1.00.
    assert "VAT 20% £50.00 £10.00" in text
    assert "VAT 5% £20.00 £1.00" in text
    assert "Total VAT £11.00" in text and "Total £81.00" in text


def test_a_partial_refund_gets_a_credit_note_reversing_its_vat_in_proportion(client, db, clock):
    order = _order_with_two_rates(client, db, clock)
    headers = api_token(db, clock, "invoices:manage", "orders:refund")
    refund = client.post(f"/api/v1/admin/orders/{order['id']}/refunds",
                         json={"amount": 2700, "reason": "a damaged box"},
                         headers={**headers, "Idempotency-Key": "r1"})

    note = client.post(f"/api/v1/admin/refunds/{refund.json()['id']}/credit-note",
                       headers=headers)
    pdf = client.get(f"/api/v1/admin/credit-notes/{note.json()['reference']}.pdf",
                     headers=headers)

    assert note.status_code == 200, note.text
    # 27.00 of 81.00 is a third: a third of the 11.00 VAT (3.67), shared by rate.
    assert (note.json()["gross_amount"], note.json()["tax_amount"]) == (2700, 367)
    text = pdf_text(pdf.content)
    assert "Credit note CN-000001" in text and "Credit against invoice INV-000001" in text
    assert "Reason: a damaged box" in text
    assert "Total VAT £3.67" in text and "Total £27.00" in text


def test_an_unpaid_order_is_refused_and_takes_no_number(db, clock, settings):
    make_location(db)
    _, variant = make_product(db, clock, price=1000, stock=5)
    first = paid_order(db, clock, settings, [(variant, 1)])
    second = paid_order(db, clock, settings, [(variant, 1)])
    with db.transaction() as session:
        session.get(Order, first).status = OrderStatus.payment_failed

    with pytest.raises(Exception) as refused, db.transaction() as session:
        service.issue_invoice(session, clock=clock, order_id=first, seller=SELLER)
    with db.transaction() as session:
        issued = service.issue_invoice(session, clock=clock, order_id=second, seller=SELLER)

    assert refused.value.status == 409
    assert issued.reference == "INV-000001"


def test_invoices_issued_concurrently_are_numbered_without_gaps_or_duplicates(
        db, clock, settings):
    make_location(db)
    _, variant = make_product(db, clock, price=1000, stock=100)
    orders = [paid_order(db, clock, settings, [(variant, 1)]) for _ in range(12)]

    def issue(i: int) -> str:
        with db.transaction() as session:  # each order asked for twice, at once
            return service.issue_invoice(session, clock=clock, order_id=orders[i // 2],
                                         seller=SELLER).reference

    results = race(24, issue)

    assert all(isinstance(r, str) for r in results), results
    assert [results[i] for i in range(0, 24, 2)] == [results[i] for i in range(1, 24, 2)]
    with db.transaction() as session:
        numbers = sorted(session.scalars(select(Invoice.number)))
        assert numbers == list(range(1, 13))
        assert len(set(session.scalars(select(Invoice.order_id)))) == 12


@pytest.mark.parametrize("command", ["invoice", "credit-note"])
def test_the_invoice_commands_document_themselves(command):
    result = runner.invoke(app, ["orders", command, "--help"], terminal_width=200)
    assert result.exit_code == 0 and "Example: dropline orders" in result.output


def test_the_cli_issues_and_prints_an_invoice(monkeypatch, database_url, db, clock, settings,
                                              tmp_path):
    monkeypatch.setenv("DROPLINE_DATABASE_URL", database_url)
    make_location(db)
    _, variant = make_product(db, clock, price=1200, stock=5)
    order_id = paid_order(db, clock, settings, [(variant, 1)])
    out = tmp_path / "invoice.pdf"

    printed = runner.invoke(app, ["orders", "invoice", str(order_id), "--out", str(out)])
    again = runner.invoke(app, ["orders", "invoice", str(order_id), "--out", str(out)])
    missing = runner.invoke(app, ["orders", "invoice", "999999"])

    assert printed.exit_code == 0, printed.output
    assert "INV-000001" in printed.output and "INV-000001" in again.output
    assert "Invoice INV-000001" in pdf_text(out.read_bytes())
    assert missing.exit_code == 2 and "not found" in missing.output


def test_the_shopper_downloads_their_issued_invoice_from_the_order_page(client, db, clock):
    order = _order_with_two_rates(client, db, clock)
    before = client.get(f"/orders/{order['id']}/invoice.pdf")
    client.post(f"/api/v1/admin/orders/{order['id']}/invoice",
                headers=api_token(db, clock, "invoices:manage"))

    page = client.get(f"/orders/{order['id']}").text
    pdf = client.get(f"/orders/{order['id']}/invoice.pdf")

    assert before.status_code == 404  # nothing is issued by looking
    assert "Invoice INV-000001 (PDF)" in page
    assert pdf.status_code == 200 and "Invoice INV-000001" in pdf_text(pdf.content)
    sign_up(client)  # another shopper
    assert client.get(f"/orders/{order['id']}/invoice.pdf").status_code == 404


def _credit_notes(db) -> list[tuple[str, int, int]]:
    with db.transaction() as session:
        return [(n.reference, n.refund_id, n.gross_amount) for n in session.scalars(
            select(CreditNote).order_by(CreditNote.number))]


def test_every_refund_issues_its_credit_note_once_with_gapless_numbers(client, db, clock):
    order = _order_with_two_rates(client, db, clock)  # 81.00, paid through the API
    headers = api_token(db, clock, "invoices:manage", "orders:refund")
    path = f"/api/v1/admin/orders/{order['id']}"

    first = client.post(f"{path}/refunds", json={"amount": 2700, "reason": "a damaged box"},
                        headers={**headers, "Idempotency-Key": "r1"})
    retried = client.post(f"{path}/refunds", json={"amount": 2700, "reason": "a damaged box"},
                          headers={**headers, "Idempotency-Key": "r1"})
    asked = client.post(f"/api/v1/admin/refunds/{first.json()['id']}/credit-note",
                        headers=headers)
    cancelled = client.post(f"{path}/cancel", json={"reason": "changed my mind"},
                            headers={**headers, "Idempotency-Key": "c1"})

    assert first.status_code == 201 and retried.json()["id"] == first.json()["id"]
    assert cancelled.status_code == 200, cancelled.text
    notes = _credit_notes(db)
    # one per refund, none asked for: the partial one, then the cancellation's (the rest)
    assert [(ref, gross) for ref, _, gross in notes] == [("CN-000001", 2700),
                                                         ("CN-000002", 5400)]
    assert notes[0][1] == first.json()["id"] and asked.json()["reference"] == "CN-000001"
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Invoice)) == 1  # INV-000001


def test_concurrent_refunds_each_issue_one_credit_note_without_gaps(db, clock, settings):
    make_location(db)
    _, variant = make_product(db, clock, price=1000, stock=100)
    orders = [paid_order(db, clock, settings, [(variant, 4)]) for _ in range(3)]
    provider = LocalCardProvider(db.sessions, clock)

    def refund(i: int) -> int:  # six refunds of 10.00 at once, two per order; then retried
        return flows.refund_order(db, clock=clock, provider=provider,
                                  credit_notes=CREDIT_NOTES, order_id=orders[i % 3],
                                  amount=1000, reason="race", actor="test",
                                  idempotency_key=f"race-{i}")

    results = race(6, refund)
    retried = [refund(i) for i in range(6)]  # the same keys again: the same refunds

    refunds = {r for r in results if isinstance(r, int)}
    assert len(refunds) == 6 and set(retried) == refunds, results
    notes = _credit_notes(db)
    assert sorted(refund_id for _, refund_id, _ in notes) == sorted(refunds)
    assert [ref for ref, _, _ in notes] == [f"CN-{n:06d}" for n in range(1, 7)]

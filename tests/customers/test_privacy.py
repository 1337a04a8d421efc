"""A customer's personal data: the JSON export holds what the shop keeps about them; erasure
pseudonymises it while orders, amounts, tax figures and the audit trail stay whole (the trail
is append-only: erasure appends one row and no audit row, before or after, holds the
customer's email, name or address); it is refused while goods are on their way; it asks
first in the console and on the command line."""

from __future__ import annotations

import json

from sqlalchemy import select
from typer.testing import CliRunner

from dropline.admin.roles import Role
from dropline.audit.models import AuditLog
from dropline.cli import app as cli_app
from dropline.customers.models import Customer, CustomerSession
from dropline.notes import service as notes
from dropline.notes.models import StaffNote
from dropline.orders.models import Order
from dropline.orders.rules import OrderStage
from dropline.privacy import service as privacy
from tests.admin.console_support import sign_in_as
from tests.builders import make_location, make_product
from tests.orders.lifecycle_builders import paid_order

EMAIL = "ada@example.com"


def _delivered_order(db, clock, settings, email=EMAIL) -> tuple[int, int]:
    make_location(db)
    variant = make_product(db, clock, price=2500, stock=5)[1]
    order_id = paid_order(db, clock, settings, [(variant, 1)], email=email)
    with db.transaction() as session:
        order = session.get(Order, order_id)
        order.stage = OrderStage.delivered
        return order_id, order.customer_id


def _audit_text(db) -> str:
    with db.transaction() as session:
        return json.dumps([[r.actor, r.entity, r.changes]
                           for r in session.scalars(select(AuditLog))])


def test_the_export_holds_the_customers_account_orders_and_notes(client, db, clock, settings):
    order_id, customer_id = _delivered_order(db, clock, settings)
    with db.transaction() as session:
        notes.add_note(session, clock=clock, subject_type="customer", subject_id=customer_id,
                       author="admin:1", body="Prefers mornings")
    sign_in_as(client, db, clock, Role.manager)
    response = client.get(f"/admin/customers/{customer_id}/export.json")
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith("attachment")
    data = response.json()
    assert data["customer"]["email"] == EMAIL
    assert [o["id"] for o in data["orders"]] == [order_id]
    assert data["orders"][0]["shipping_address"]["postcode"] == "E1 6QE"
    assert data["orders"][0]["lines"][0]["unit_price_amount"] == 2500
    assert data["notes"][0]["body"] == "Prefers mornings"


def test_erasure_pseudonymises_and_keeps_orders_tax_and_the_audit_trail(
        client, db, clock, settings):
    order_id, customer_id = _delivered_order(db, clock, settings)
    with db.transaction() as session:
        notes.add_note(session, clock=clock, subject_type="order", subject_id=order_id,
                       author="admin:1", body="Ada called about the bottle")
        before = session.get(Order, order_id)
        kept = (before.total_amount, before.tax_amount, before.subtotal_amount,
                before.currency, before.shipping_address["country"])
        audit_rows = session.scalar(select(AuditLog.id).order_by(AuditLog.id.desc()).limit(1))
    assert EMAIL not in _audit_text(db) and "Lovelace" not in _audit_text(db)

    owner_id = sign_in_as(client, db, clock, Role.owner)
    asked = client.post(f"/admin/customers/{customer_id}/erase", data={})
    assert asked.status_code == 200 and EMAIL in asked.text  # the confirmation names them
    with db.transaction() as session:
        assert session.get(Customer, customer_id).erased_at is None
    done = client.post(f"/admin/customers/{customer_id}/erase", data={"confirm": "yes"},
                       follow_redirects=False)
    assert done.status_code == 303

    alias = privacy.pseudonym(customer_id)
    with db.transaction() as session:
        customer = session.get(Customer, customer_id)
        order = session.get(Order, order_id)
        assert (customer.email, customer.name, customer.erased_at) == (alias, "", clock.now())
        assert order.email == alias and order.shipping_address == {"country": "GB"}
        assert (order.total_amount, order.tax_amount, order.subtotal_amount, order.currency,
                order.shipping_address["country"]) == kept
        assert session.scalars(select(StaffNote)).all() == []
        assert session.scalars(select(CustomerSession).where(
            CustomerSession.customer_id == customer_id)).all() == []
        # the trail only grew: the earlier rows are untouched and the erasure is one of the new
        appended = session.scalars(select(AuditLog).where(AuditLog.id > audit_rows)).all()
        erasure = [r for r in appended if r.entity == "customers"]
        assert [(r.actor, r.changes["erased_at"][0]) for r in erasure] == \
            [(f"admin:{owner_id}", None)]
    text = _audit_text(db)
    assert EMAIL not in text and "Lovelace" not in text and "Fournier" not in text
    page = client.get(f"/admin/customers/{customer_id}")
    assert EMAIL not in page.text and "erased" in page.text
    # erasing again changes nothing
    assert client.post(f"/admin/customers/{customer_id}/erase", data={"confirm": "yes"},
                       follow_redirects=False).status_code == 303


def test_erasure_is_refused_while_goods_are_on_their_way(client, db, clock, settings):
    make_location(db)
    variant = make_product(db, clock, stock=5)[1]
    order_id = paid_order(db, clock, settings, [(variant, 1)], email=EMAIL)
    customer_id = _customer_id(db, order_id)
    sign_in_as(client, db, clock, Role.owner)
    refused = client.post(f"/admin/customers/{customer_id}/erase", data={"confirm": "yes"})
    assert refused.status_code == 409 and 'id="erase-error"' in refused.text
    assert str(order_id) in refused.text
    with db.transaction() as session:
        assert session.get(Customer, customer_id).email == EMAIL


def _customer_id(db, order_id: int) -> int:
    with db.transaction() as session:
        return session.get(Order, order_id).customer_id


def test_a_manager_may_export_but_not_erase(client, db, clock, settings):
    _, customer_id = _delivered_order(db, clock, settings)
    sign_in_as(client, db, clock, Role.manager)
    assert client.get(f"/admin/customers/{customer_id}/export.json").status_code == 200
    assert client.post(f"/admin/customers/{customer_id}/erase",
                       data={"confirm": "yes"}).status_code == 403
    with db.transaction() as session:
        assert session.get(Customer, customer_id).erased_at is None


def test_the_cli_exports_and_erases_after_a_confirmation(db, clock, settings, database_url,
                                                         tmp_path, monkeypatch):
    monkeypatch.setenv("DROPLINE_DATABASE_URL", database_url)
    _, customer_id = _delivered_order(db, clock, settings)
    runner = CliRunner()
    out = tmp_path / "c.json"
    exported = runner.invoke(cli_app, ["customers", "export", str(customer_id), "--out",
                                       str(out)])
    assert exported.exit_code == 0, exported.output
    assert json.loads(out.read_text())["customer"]["email"] == EMAIL
    declined = runner.invoke(cli_app, ["customers", "erase", str(customer_id)], input="n\n")
    assert declined.exit_code == 1
    with db.transaction() as session:
        assert session.get(Customer, customer_id).erased_at is None
    erased = runner.invoke(cli_app, ["customers", "erase", str(customer_id)], input="y\n")
    assert erased.exit_code == 0, erased.output
    with db.transaction() as session:
        assert session.get(Customer, customer_id).email == privacy.pseudonym(customer_id)
    missing = runner.invoke(cli_app, ["customers", "erase", "999999", "--yes"])
    assert missing.exit_code == 2 and "not found" in missing.output
    for command in ("export", "erase"):
        assert "Example: dropline customers" in runner.invoke(
            cli_app, ["customers", command, "--help"]).output

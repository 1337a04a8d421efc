"""The audit trail: one record per state change on orders, payments, refunds, prices, drops,
memberships and returns, with the actor who made it (customer, API token, console admin,
system), readable and exportable, and never editable (no API; a database trigger)."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError

from dropline.audit import AUDITED, acting_as
from dropline.catalog.models import Variant
from dropline.drops.models import Drop
from dropline.memberships.models import Membership
from dropline.orders.models import Order
from dropline.risk.audit import AuditFilter, iter_audit_csv
from dropline.risk.models import AuditLog
from tests.builders import api_token, sign_in_console
from tests.risk.support import admin_headers, ask_return, buy, key, receive, shop


def rows(db, entity: str) -> list[AuditLog]:
    with db.transaction() as session:
        return list(session.scalars(select(AuditLog).where(AuditLog.entity == entity)
                                    .order_by(AuditLog.id)))


def test_the_registry_covers_every_audited_domain():
    assert {Order, Variant, Drop, Membership} <= set(AUDITED)
    assert {m.__tablename__ for m in AUDITED} >= {"orders", "payments", "refunds", "variants",
                                                  "drops", "memberships", "return_requests"}


def test_a_checkout_is_recorded_with_the_customer_as_actor(client, db, clock):
    ids = shop(db, clock)
    order = buy(client, ids["variant_id"])
    created, paid = rows(db, "orders")
    with db.transaction() as session:
        actor = f"customer:{session.get(Order, order['id']).customer_id}"
    assert (created.action, created.actor, created.entity_id) == ("create", actor,
                                                                  str(order["id"]))
    assert created.changes["status"] == [None, "pending-payment"]
    assert created.occurred_at == clock.now()
    assert (paid.action, paid.changes["status"]) == ("update", ["pending-payment", "paid"])
    payment_moves = [r for r in rows(db, "payments") if r.action == "update"]
    assert payment_moves[0].changes["status"] == ["pending", "succeeded"]  # a core UPDATE


def test_an_admin_refund_through_the_api_is_recorded_with_its_token(client, db, clock):
    ids = shop(db, clock)
    order = buy(client, ids["variant_id"])
    headers = api_token(db, clock, "orders:refund")
    response = client.post(f"/api/v1/admin/orders/{order['id']}/refunds",
                           json={"amount": 1000, "reason": "goodwill"},
                           headers={**headers, **key()})
    assert response.status_code == 201, response.text

    refund_created = rows(db, "refunds")[0]
    assert refund_created.action == "create" and refund_created.actor.startswith("token:")
    raised = [r for r in rows(db, "orders")
              if r.action == "update" and "refunded_amount" in r.changes]
    assert raised[0].changes["refunded_amount"] == [0, 1000]
    assert raised[0].actor == refund_created.actor


def test_a_price_change_by_an_admin_token_is_recorded(client, db, clock):
    ids = shop(db, clock, price=6000)
    headers = api_token(db, clock, "catalog:write")
    response = client.put(f"/api/v1/admin/variants/{ids['variant_id']}/price",
                          json={"price_amount": 6500}, headers=headers)
    assert response.status_code == 200, response.text
    change = [r for r in rows(db, "variants") if r.action == "update"]
    assert [(c.changes, c.actor[:6]) for c in change] == [
        ({"price_amount": [6000, 6500]}, "token:")]


def test_each_return_step_is_recorded_and_a_console_decision_names_the_admin(client, db,
                                                                             clock):
    ids = shop(db, clock)
    order = buy(client, ids["variant_id"])
    headers = admin_headers(db, clock)
    client.post("/api/v1/admin/chargebacks", headers=headers,
                json={"order_id": order["id"], "amount": 100})
    ret = ask_return(client, order)
    receive(client, headers, ret["id"])
    sign_in_console(client, db, clock)
    case_id = client.get("/api/v1/admin/risk/queue", headers=headers).json()[0]["id"]
    decided = client.post(f"/admin/risk/cases/{case_id}/decision",
                          data={"decision": "approve", "note": "known customer"},
                          follow_redirects=False)
    assert decided.status_code == 303, decided.text

    moves = [(r.actor.split(":")[0], r.changes.get("status")) for r in rows(db, "return_requests")
             if "status" in r.changes]
    assert moves == [("customer", [None, "requested"]), ("token", ["requested", "received"]),
                     ("token", ["received", "in-review"]), ("admin", ["in-review", "approved"]),
                     ("admin", ["approved", "refunding"]), ("admin", ["refunding", "refunded"])]
    assert rows(db, "chargebacks")[0].actor.startswith("token:")


def test_changes_outside_a_request_are_by_system_or_the_named_actor(db, clock):
    ids = shop(db, clock, price=6000)
    with db.transaction() as session:
        session.get(Variant, ids["variant_id"]).price_amount = 5000
    with acting_as("job:reprice"), db.transaction() as session:
        session.execute(update(Variant).where(Variant.id == ids["variant_id"])
                        .values(price_amount=Variant.price_amount + 1))
    changes = [(r.actor, r.changes) for r in rows(db, "variants") if r.action == "update"]
    assert changes == [("system", {"price_amount": [6000, 5000]}),
                       ("job:reprice", {"price_amount": [5000, 5001]})]


def test_a_rolled_back_change_leaves_no_audit_record(db, clock):
    ids = shop(db, clock, price=6000)
    before = len(rows(db, "variants"))
    with pytest.raises(RuntimeError), db.transaction() as session:
        session.get(Variant, ids["variant_id"]).price_amount = 1
        session.flush()
        raise RuntimeError("boom")
    assert len(rows(db, "variants")) == before


def test_the_log_is_filterable_and_exports_as_csv(client, db, clock):
    ids = shop(db, clock)
    buy(client, ids["variant_id"])
    headers = admin_headers(db, clock)
    listed = client.get("/api/v1/admin/audit", params={"entity": "orders", "action": "update"},
                        headers=headers)
    assert listed.status_code == 200
    assert [r["changes"]["status"] for r in listed.json()] == [["pending-payment", "paid"]]
    exported = client.get("/api/v1/admin/audit.csv", params={"entity": "orders"},
                          headers=headers)
    assert exported.headers["content-type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(exported.text)))
    status = [(line["action"], line["old"], line["new"]) for line in lines
              if line["column"] == "status"]
    assert status == [("create", "", "pending-payment"), ("update", "pending-payment", "paid")]


def test_no_api_route_changes_or_deletes_the_audit_log(client, db, clock):
    headers = admin_headers(db, clock)
    paths = {path: set(ops) for path, ops in client.app.openapi()["paths"].items()
             if "audit" in path}
    assert paths == {"/api/v1/admin/audit": {"get"}, "/api/v1/admin/audit.csv": {"get"}}
    for method in ("put", "patch", "delete", "post"):
        response = getattr(client, method)("/api/v1/admin/audit", headers=headers)
        assert response.status_code == 405, (method, response.status_code)


def test_the_database_refuses_to_update_audit_rows(client, db, clock):
    ids = shop(db, clock)
    buy(client, ids["variant_id"])
    with pytest.raises(DBAPIError, match="append-only"), db.transaction() as session:
        session.execute(text("UPDATE audit_log SET actor = 'someone-else'"))
    assert {r.actor for r in rows(db, "orders")} != {"someone-else"}


def test_on_postgresql_the_database_also_refuses_to_delete_chosen_audit_rows(client, db,
                                                                            clock):
    ids = shop(db, clock)
    buy(client, ids["variant_id"])
    count = len(rows(db, "orders"))
    if db.is_sqlite:
        # SQLite refuses UPDATE only (no statement-level triggers): assert that documented
        # difference rather than skip.
        with db.engine.connect() as conn:
            triggers = conn.execute(text("SELECT sql FROM sqlite_master WHERE type='trigger' "
                                         "AND name='audit_log_append_only'")).scalar_one()
        assert "BEFORE UPDATE ON audit_log" in triggers
        return
    with pytest.raises(DBAPIError, match="append-only"), db.transaction() as session:
        session.execute(text("DELETE FROM audit_log WHERE entity = 'orders'"))
    assert len(rows(db, "orders")) == count
    # Emptying the whole log at once (a reset, like TRUNCATE) is the one delete allowed.
    with db.transaction() as session:
        session.execute(text("DELETE FROM audit_log"))
    assert rows(db, "orders") == []


@pytest.mark.parametrize("typed", ['=HYPERLINK("http://evil.example","x")', "+1+cmd|' /C calc'!A0",
                                   "-2+3", "@SUM(A1:A9)", "\tlead", "\rlead"])
def test_the_csv_export_keeps_text_that_would_start_a_formula_as_text(db, clock, typed):
    with db.transaction() as session:
        session.add(AuditLog(occurred_at=clock.now(), actor="customer:1", action="update",
                             entity="customers", entity_id="1",
                             changes={"name": ["Ann", typed], "credit": [-5, 10]}))
    with db.transaction() as session:
        text_out = "".join(iter_audit_csv(session, AuditFilter(entity="customers")))

    lines = {line["column"]: line for line in csv.DictReader(io.StringIO(text_out))}
    assert lines["name"]["old"] == "Ann"
    assert lines["name"]["new"] == "'" + typed
    assert (lines["credit"]["old"], lines["credit"]["new"]) == ("-5", "10")  # numbers stay

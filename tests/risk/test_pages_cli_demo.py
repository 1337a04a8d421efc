"""The pages (returns policy, a customer's return form, the console's review queue and audit
log), the CLI a person acts from, and the demo's review queue."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from dropline.cli import app as cli
from dropline.risk.models import CaseStatus, ReturnRequest, RiskCase
from tests.builders import sign_in_console
from tests.risk.support import admin_headers, ask_return, buy, receive, shop

runner = CliRunner()


def _case_in_review(client, db, clock) -> tuple[dict, dict]:
    ids = shop(db, clock)
    order = buy(client, ids["variant_id"])
    headers = admin_headers(db, clock)
    client.post("/api/v1/admin/chargebacks", headers=headers,
                json={"order_id": order["id"], "amount": 100, "reason": "fraudulent"})
    ret = ask_return(client, order, reason="no-longer-needed")
    receive(client, headers, ret["id"])
    return order, ret


def test_the_policy_page_is_generated_from_the_settings(client, db, clock):
    ids = shop(db, clock)
    headers = admin_headers(db, clock)
    assert client.patch("/api/v1/admin/risk/settings", headers=headers, json={"values": {
        "return_window_days": 21, "restocking_fee_bps": 750}}).status_code == 200
    client.put(f"/api/v1/admin/products/{ids['product_id']}/return-policy", headers=headers,
               json={"final_sale": True})
    page = client.get("/returns-policy")
    assert page.status_code == 200
    assert "within <strong>21 days</strong>" in page.text
    assert "<strong>7.5%</strong>" in page.text and "Arrived faulty" in page.text
    assert "Final sale, not returnable: Fig Leaf" in page.text
    for label in ("Refurbished, grade A", "Refurbished, grade C", "Used"):
        assert label in page.text


def test_a_bad_setting_is_refused_and_changes_nothing(client, db, clock):
    headers = admin_headers(db, clock)
    bad = client.patch("/api/v1/admin/risk/settings", headers=headers,
                       json={"values": {"review_score": 40, "max_return_rate": 3}})
    assert bad.status_code == 422 and "max_return_rate" in bad.json()["detail"]
    assert client.get("/api/v1/admin/risk/settings",
                      headers=headers).json()["max_return_rate"] == 0.5


def test_a_customer_asks_for_a_return_from_the_order_page(client, db, clock):
    ids = shop(db, clock)
    order = buy(client, ids["variant_id"])
    form = client.get(f"/orders/{order['id']}/return")
    assert form.status_code == 200 and 'name="order_line_id"' in form.text
    with db.transaction() as session:
        from dropline.orders.models import OrderLine

        line_id = session.scalar(select(OrderLine.id))
    sent = client.post(f"/orders/{order['id']}/return", follow_redirects=False,
                       data={"order_line_id": line_id, "reason": "wrong-size", "quantity": 1})
    assert sent.status_code == 303
    done = client.get(sent.headers["location"])
    assert "Return #1 requested" in done.text and "requested" in done.text
    again = client.post(f"/orders/{order['id']}/return", data={
        "order_line_id": line_id, "reason": "wrong-size", "quantity": 1})
    assert again.status_code == 422 and "can still be returned" in again.text


def test_the_return_page_needs_a_signed_in_owner(client, db, clock):
    from tests.web.support import second_client

    ids = shop(db, clock)
    order = buy(client, ids["variant_id"])
    stranger = second_client(client)
    response = stranger.get(f"/orders/{order['id']}/return", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/sign-in")


def test_the_console_queue_shows_reasons_and_a_decision_is_recorded_in_the_audit_log(
        client, db, clock):
    _case_in_review(client, db, clock)
    sign_in_console(client, db, clock)
    assert {"Risk", "Audit"} <= {item.label for item in client.app.state.navigation}
    page = client.get("/admin/risk")
    assert page.status_code == 200 and page.headers["cache-control"] == "private, no-store"
    assert "1 chargeback(s) on this customer" in page.text
    assert 'action="/admin/risk/cases/1/decision"' in page.text and "<svg" in page.text

    denied = client.post("/admin/risk/cases/1/decision", follow_redirects=False,
                         data={"decision": "deny", "note": "not our item"})
    assert denied.status_code == 303 and "denied" in denied.headers["location"]
    with db.transaction() as session:
        assert session.get(RiskCase, 1).status is CaseStatus.denied
    audit = client.get("/admin/audit", params={"entity": "return_requests"})
    assert "<del>in-review</del> → <ins>denied</ins>" in audit.text and "admin:1" in audit.text
    exported = client.get("/admin/audit.csv", params={"entity": "risk_cases"})
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert ("open", "denied") in {(r["old"], r["new"]) for r in rows if r["column"] == "status"}


def test_a_console_refusal_is_shown_not_a_500(client, db, clock):
    _case_in_review(client, db, clock)
    sign_in_console(client, db, clock)
    silent = client.post("/admin/risk/cases/1/decision", data={"decision": "deny"})
    assert silent.status_code == 200 and "say why the return is denied" in silent.text


def test_the_console_pages_need_a_sign_in(client):
    for path in ("/admin/risk", "/admin/audit", "/admin/audit.csv"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and "/admin/login" in response.headers["location"]


def test_the_cli_lists_the_queue_and_a_person_acts_on_it(client, db, clock, database_url,
                                                          monkeypatch, tmp_path):
    _, ret = _case_in_review(client, db, clock)
    monkeypatch.setenv("DROPLINE_DATABASE_URL", database_url)
    listed = runner.invoke(cli, ["risk", "queue"])
    assert listed.exit_code == 0, listed.output
    text = " ".join(listed.output.split())
    assert "Review queue: 1 case(s) at or above 40" in text and "dropline returns deny" in text
    as_json = json.loads(runner.invoke(cli, ["risk", "queue", "--json"]).output)
    assert [(c["return_id"], [s["name"] for s in c["signals"]]) for c in as_json] == [
        (ret["id"], ["chargebacks"])]

    refused = runner.invoke(cli, ["returns", "deny", str(ret["id"]), "--note", " "])
    assert refused.exit_code == 2 and "say why" in refused.output
    approved = runner.invoke(cli, ["returns", "approve", str(ret["id"]), "--amount", "1000"])
    assert approved.exit_code == 0, approved.output
    with db.transaction() as session:
        assert session.get(ReturnRequest, ret["id"]).refund_amount == 1000
    out = tmp_path / "audit.csv"
    exported = runner.invoke(cli, ["audit", "export", "--out", str(out), "--entity",
                                   "return_requests"])
    assert exported.exit_code == 0, exported.output
    lines = list(csv.DictReader(out.open()))
    assert {"cli"} == {r["actor"] for r in lines if r["new"] == "refunded"}


@pytest.mark.parametrize("command", [["returns", "receive"], ["returns", "approve"],
                                     ["risk", "queue"], ["audit", "export"]])
def test_every_risk_command_documents_an_example(command):
    result = runner.invoke(cli, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0 and "Example: dropline" in result.output


def test_the_demo_leaves_actionable_cases_in_the_queue(db, settings, clock, client):
    from dropline.demo import seed_demo

    seed_demo(db, settings=settings, clock=clock, seed=7, customers=120)
    headers = admin_headers(db, clock)
    cases = client.get("/api/v1/admin/risk/queue", headers=headers).json()
    fired = {s["name"] for case in cases for s in case["signals"]}
    assert len(cases) >= 3, cases
    assert {"serial_mismatch", "chargebacks"} <= fired, fired
    assert all(case["score"] >= case["threshold"] and case["signals"] for case in cases)
    decided = client.get("/api/v1/admin/returns", params={"status": "refunded", "limit": 500},
                         headers=headers).json()
    assert len(decided) >= 10
    with db.transaction() as session:
        from dropline.risk.models import SerialUnit

        assert session.scalar(select(SerialUnit.id).limit(1)) is not None


def test_graded_items_show_their_disclosure_on_the_product_and_order_pages(client, db, clock):
    from dropline.catalog.models import ConditionGrade, Product

    ids = shop(db, clock, grade=ConditionGrade.refurbished_b)
    with db.transaction() as session:
        slug = session.get(Product, ids["product_id"]).slug
    disclosure = ("<strong>Condition: Refurbished, grade B.</strong> Restored; faint scuff on "
                  'the base. <a href="/returns-policy#grades">')
    assert disclosure in client.get(f"/products/{slug}").text
    order = buy(client, ids["variant_id"])
    page = client.get(f"/orders/{order['id']}")
    assert disclosure in page.text
    assert f'href="/orders/{order["id"]}/return"' in page.text


@pytest.mark.parametrize("where", ["missing-folder/audit.csv", "."])
def test_exporting_to_a_path_that_cannot_be_written_is_one_line_and_exit_2(
        database_url, monkeypatch, tmp_path, where):
    monkeypatch.setenv("DROPLINE_DATABASE_URL", database_url)

    result = runner.invoke(cli, ["audit", "export", "--out", str(tmp_path / where)])

    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: cannot write {tmp_path / where}")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output

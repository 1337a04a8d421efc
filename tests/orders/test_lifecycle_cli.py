"""``dropline orders`` and ``dropline mail``: every command explains itself with an example,
walks an order through the same services as the API, and refuses in one readable line."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from dropline.cli import app
from dropline.orders.models import Order, OrderLine, Shipment
from tests.builders import make_location, make_product
from tests.orders.lifecycle_builders import paid_order

runner = CliRunner()


@pytest.mark.parametrize("command", [
    ["orders", "show"], ["orders", "list"], ["orders", "advance"], ["orders", "allocate"],
    ["orders", "ship"], ["orders", "deliver"], ["orders", "cancel"], ["orders", "address"],
    ["orders", "pick-list"], ["orders", "slip"], ["mail", "preview"], ["mail", "outbox"],
    ["mail", "send"]])
def test_every_command_documents_itself_with_an_example(command):
    result = runner.invoke(app, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "Example: dropline" in result.output


@pytest.fixture
def cli_env(monkeypatch, database_url, tmp_path):
    monkeypatch.setenv("DROPLINE_DATABASE_URL", database_url)
    monkeypatch.setenv("DROPLINE_EMAIL_DIR", str(tmp_path / "outbox"))


def _run(*args):
    return runner.invoke(app, list(args), terminal_width=200)


def test_an_order_is_advanced_shipped_and_delivered_from_the_cli(cli_env, db, clock,
                                                                 settings, tmp_path):
    make_location(db)
    variant = make_product(db, clock, price=2000, stock=5, name="Fig Leaf")[1]
    order_id = paid_order(db, clock, settings, [(variant, 1)])

    steps = [_run("orders", "advance", str(order_id)) for _ in range(3)]
    shipped = _run("orders", "ship", str(order_id), "--tracking", "RM123456785GB")
    delivered = _run("orders", "deliver", str(order_id))
    refused = _run("orders", "cancel", str(order_id))

    assert all(step.exit_code == 0 for step in steps), [s.output for s in steps]
    assert "packed" in steps[-1].output
    assert shipped.exit_code == 0 and "RM123456785GB" in shipped.output
    assert delivered.exit_code == 0 and "delivered" in delivered.output
    assert refused.exit_code == 2 and "delivered" in refused.output
    assert "Traceback" not in refused.output
    sent = _run("mail", "send")
    # Shipped and delivered go out; the confirmation was queued on the test clock's day,
    # months before the CLI's (system) clock, so it is given up as stale.
    assert sent.exit_code == 0 and "sent 2, failed 1" in sent.output
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 2


def test_a_pick_list_a_slip_and_a_partial_cancel_from_the_cli(cli_env, db, clock, settings,
                                                              tmp_path):
    make_location(db)
    variant = make_product(db, clock, price=2000, stock=5, name="Fig Leaf")[1]
    order_id = paid_order(db, clock, settings, [(variant, 3)])
    with db.transaction() as session:
        line_id = session.scalar(select(OrderLine.id).where(OrderLine.order_id == order_id))
    _run("orders", "allocate", str(order_id))  # the CLI's clock is the system's
    with db.transaction() as session:
        shipment_id = session.scalar(select(Shipment.id).where(Shipment.order_id == order_id))

    picks = _run("orders", "pick-list", "central", "--day", datetime.now(UTC).date().isoformat())
    slip = _run("orders", "slip", str(shipment_id), "--out", str(tmp_path / "slip.pdf"),
                "--label", str(tmp_path / "label.pdf"))
    cancelled = _run("orders", "cancel", str(order_id), "--line", f"{line_id}=1")
    bad = _run("orders", "cancel", str(order_id), "--line", "seven")

    assert picks.exit_code == 0 and "Fig Leaf" in picks.output
    assert slip.exit_code == 0 and (tmp_path / "label.pdf").read_bytes().startswith(b"%PDF")
    assert cancelled.exit_code == 0 and "refunded 2000" in cancelled.output
    assert bad.exit_code == 2 and "LINE=VALUE" in bad.output
    with db.transaction() as session:
        assert session.get(Order, order_id).refunded_amount == 2000


def test_a_preview_renders_without_a_database(cli_env, tmp_path):
    result = _run("mail", "preview", "shipped", "--html", str(tmp_path / "shipped.html"))
    assert result.exit_code == 0 and "RM123456785GB" in result.output
    assert (tmp_path / "shipped.html").read_text().startswith("<!doctype html>")
    assert _run("mail", "preview", "nonsense").exit_code == 2

"""Pop-up-to-member conversion: buyers at a pop-up who started a membership within N days of
their first purchase there, on constructed data (pure) and through the service."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dropline.adapters.payments import LocalCardProvider
from dropline.popups import rules, service
from dropline.popups.models import PopupSale
from tests.builders import sign_in_console
from tests.memberships.support import join, make_customer, make_tier
from tests.popups.support import open_popup

T0 = datetime(2026, 5, 2, 11, tzinfo=UTC)


def test_conversion_counts_each_buyer_once_within_the_window_only():
    purchases = [
        rules.PopupPurchase("spitalfields", 1, T0),
        rules.PopupPurchase("spitalfields", 1, T0 + timedelta(days=1)),  # same buyer again
        rules.PopupPurchase("spitalfields", 2, T0),
        rules.PopupPurchase("spitalfields", 3, T0),
        rules.PopupPurchase("spitalfields", 4, T0),
        rules.PopupPurchase("peckham", 5, T0),
        rules.PopupPurchase("peckham", 1, T0 + timedelta(days=40)),  # buyer 1 at a 2nd pop-up
    ]
    starts = {
        1: [T0 + timedelta(days=3)],     # joined 3 days after: converts at Spitalfields
        2: [T0 + timedelta(days=31)],    # too late for a 30-day window
        3: [T0 - timedelta(days=10)],    # a member before buying: not converted by it
        5: [T0 + timedelta(minutes=5)],  # signed up at the counter
    }

    figures = rules.conversion_by_popup(purchases, starts, within_days=30)

    assert figures["spitalfields"] == rules.Conversion("spitalfields", buyers=4, members=1)
    assert figures["peckham"] == rules.Conversion("peckham", buyers=2, members=1)
    assert figures["spitalfields"].rate == 0.25
    assert rules.conversion_by_popup(purchases, starts, within_days=31)[
        "spitalfields"].members == 2


def test_the_report_reads_sales_and_memberships_from_the_database(client, db, clock):
    shop = open_popup(db, clock)
    tier = make_tier(db, clock, slug="friends")
    buyers = [make_customer(db, clock) for _ in range(5)]
    from dropline.orders.models import Order, OrderStatus

    with db.transaction() as session:
        popup_id = service.get_popup(session, shop.code).popup.id
        for number, customer_id in enumerate(buyers):
            order = Order(customer_id=customer_id, email="x@example.com",
                          status=OrderStatus.paid, currency="GBP", subtotal_amount=4200,
                          discount_amount=0, shipping_amount=0, total_amount=4200,
                          refunded_amount=0, checkout_reference=f"ref-{number}",
                          fulfilment_path="pop-up", acquisition_source="pop-up",
                          shipping_address={}, created_at=clock.now(), paid_at=clock.now())
            session.add(order)
            session.flush()
            session.add(PopupSale(popup_id=popup_id, order_id=order.id,
                                  customer_id=customer_id, card_last4="4242",
                                  sold_at=clock.now()))
    clock.advance(days=2)
    provider = LocalCardProvider(db.sessions, clock)
    join(db, clock, provider, customer_id=buyers[0], tier_id=tier)
    clock.advance(days=40)
    join(db, clock, provider, customer_id=buyers[1], tier_id=tier)  # 42 days: outside 30

    with db.transaction() as session:
        [row] = service.conversion_report(session, within_days=30)

    assert (row.sales, row.buyers, row.members, row.revenue_amount) == (5, 5, 1, 21000)
    assert row.rate == 0.2
    assert row.interval.low < 0.2 < row.interval.high

    sign_in_console(client, db, clock)
    page = client.get("/admin/popups")
    assert page.status_code == 200 and page.headers["cache-control"] == "private, no-store"
    assert '<td data-testid="rate">20.0%' in page.text
    assert '<a href="/admin/popups"' in page.text  # in the console navigation

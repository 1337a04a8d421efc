"""Checkout with the fulfilment and membership modules: a picked hub window is re-decided,
priced, subsidised for members and booked in the order's own transaction; members pay their
tier's price; stock comes from the location that will deliver."""

from __future__ import annotations

from sqlalchemy import func, select

from dropline.adapters.payments import LocalCardProvider
from dropline.events.models import DomainEvent
from dropline.fulfilment.models import DeliveryWindow
from dropline.locations.models import StockLevel
from dropline.memberships.rules import MemberPriceKind, SubsidyKind
from dropline.orders.models import Order
from tests.builders import DECLINED_PM, GOOD_PM, checkout_body, sign_up
from tests.fulfilment.builders import DALSTON, make_item, make_network, make_windows
from tests.memberships.support import join, make_tier

ADDRESS_NEAR_HUB = {"latitude": DALSTON.latitude, "longitude": DALSTON.longitude}


def _shopper(client):
    return sign_up(client, email=f"w{len(client.cookies)}-{id(client)}@example.com")["id"]


def _cart(client, variant_id, quantity=1):
    cart = client.post("/api/v1/carts").json()["id"]
    assert client.put(f"/api/v1/carts/{cart}/lines/{variant_id}",
                      json={"quantity": quantity}).status_code == 200
    return cart


def _stock(db):
    with db.transaction() as session:
        return {(loc, var): n for loc, var, n in session.execute(
            select(StockLevel.location_id, StockLevel.variant_id, StockLevel.on_hand))}


def _window_booked(db, window_id):
    with db.transaction() as session:
        return session.scalar(select(DeliveryWindow.booked).where(DeliveryWindow.id == window_id))


def _buy(client, cart, window_id, key, card=GOOD_PM):
    body = checkout_body(cart, card)
    body["delivery"] = {"window_id": window_id, **ADDRESS_NEAR_HUB}
    return client.post("/api/v1/checkout", json=body, headers={"Idempotency-Key": key})


def test_a_picked_hub_window_is_booked_priced_and_stocked_from_the_hub(client, db, clock):
    network = make_network(db, clock)
    variant = make_item(db, clock, central=10, hub=10, price=4000)
    window = make_windows(db)[-1]
    _shopper(client)

    response = _buy(client, _cart(client, variant), window, "hub-1")

    assert response.status_code == 201, response.text
    order = response.json()
    assert order["fulfilment_path"] == "hub-window"
    assert order["shipping_amount"] == 395  # the window's price: no van goes nearby yet
    assert order["total_amount"] == 4000 + 395
    stock = _stock(db)
    assert stock[(network.hub_id, variant)] == 9 and stock[(network.central_id, variant)] == 10
    assert _window_booked(db, window) == 1
    with db.transaction() as session:
        payload = session.scalar(select(DomainEvent.payload).where(
            DomainEvent.type == "order.paid"))
    assert payload["fulfilment_path"] == "hub-window"


def test_members_pay_their_price_and_their_delivery_subsidy_applies(client, db, clock):
    make_network(db, clock)
    variant = make_item(db, clock, price=4000)
    window = make_windows(db)[-1]
    customer_id = _shopper(client)
    tier = make_tier(db, clock, member_price_kind=MemberPriceKind.percent, member_price_value=10,
                     delivery_subsidy_kind=SubsidyKind.free)
    join(db, clock, LocalCardProvider(db.sessions, clock), customer_id=customer_id, tier_id=tier)

    response = _buy(client, _cart(client, variant, 2), window, "member-1")

    assert response.status_code == 201, response.text
    order = response.json()
    assert [line["unit_price_amount"] for line in order["lines"]] == [3600]
    assert order["shipping_amount"] == 0
    assert order["total_amount"] == 7200
    with db.transaction() as session:
        created = session.scalar(select(DomainEvent.payload).where(
            DomainEvent.type == "order.created"))
    assert created["delivery_subsidised"] is True


def test_a_full_window_refuses_the_order_and_writes_nothing(client, db, clock):
    make_network(db, clock)
    variant = make_item(db, clock)
    with db.transaction() as session:
        from dropline.fulfilment import service

        window = service.create_windows(session, location_code="hub-hackney",
                                        day=clock.now().date(), window_minutes=120, capacity=1,
                                        cutoff_minutes=120)[-1].id
    _shopper(client)
    assert _buy(client, _cart(client, variant), window, "first").status_code == 201
    before = _stock(db)

    second = _buy(client, _cart(client, variant), window, "second")

    assert second.status_code == 409
    assert second.headers["content-type"] == "application/problem+json"
    assert _stock(db) == before and _window_booked(db, window) == 1
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Order)) == 1


def test_a_declined_card_gives_back_the_hub_stock_and_the_window_place(client, db, clock):
    network = make_network(db, clock)
    variant = make_item(db, clock, hub=3)
    window = make_windows(db)[-1]
    _shopper(client)

    response = _buy(client, _cart(client, variant), window, "declined",
                    card=DECLINED_PM)

    assert response.status_code == 402
    assert _stock(db)[(network.hub_id, variant)] == 3
    assert _window_booked(db, window) == 0


def test_without_a_window_the_order_ships_centrally(client, db, clock):
    network = make_network(db, clock)
    variant = make_item(db, clock, price=4000)
    _shopper(client)

    response = client.post("/api/v1/checkout", json=checkout_body(_cart(client, variant)),
                           headers={"Idempotency-Key": "central-1"})

    assert response.status_code == 201, response.text
    assert response.json()["fulfilment_path"] == "central"
    assert _stock(db)[(network.central_id, variant)] == 9


def test_central_checkout_of_hub_only_stock_says_to_pick_a_window(client, db, clock):
    make_network(db, clock)
    variant = make_item(db, clock, central=0, hub=4)
    _shopper(client)
    cart = _cart(client, variant)

    central = client.post("/api/v1/checkout", json=checkout_body(cart),
                          headers={"Idempotency-Key": "central-none"})
    windowed = _buy(client, cart, make_windows(db)[-1], "hub-instead")

    assert central.status_code == 409
    assert "pick a delivery window" in central.json()["detail"]
    assert windowed.status_code == 201, windowed.text

"""The purchase rules of a drop, one scenario table run against both engines.

``POST /api/v1/drops/{id}/purchase`` is served by one of two engines: the database path
(``drops.flows.purchase``; SQLite, or PostgreSQL without Redis) and the flash-crowd engine
(``drops.crowd``: the Redis gate and batched writes; PostgreSQL with Redis). The rules are the
same, so every rule below is one case (given / when / then) run against both. Where an engine
answers differently today, its case is marked ``xfail(strict=True)`` for that engine with the
difference named, so the table says exactly where they differ (and fails once they agree).

The engine half needs PostgreSQL (``DROPLINE_TEST_DATABASE_URL``) and Redis
(``DROPLINE_TEST_REDIS_URL``); on SQLite it is skipped. ``.ci/run`` gives it both.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from dropline.catalog.models import Variant
from dropline.catalog.service import set_stock
from dropline.customers.models import Customer
from dropline.customers.service import start_session
from dropline.discounts import service as discounts
from dropline.drops.schemas import PurchaseCreate
from dropline.fulfilment.models import DeliveryWindow, FulfilmentDecisionRow, WindowBooking
from dropline.idempotency import service as idempotency
from dropline.invoices import documents
from dropline.invoices import service as invoices
from dropline.locations.models import StockLevel
from dropline.orders.models import Order, OrderLine, OrderStatus
from dropline.tax import service as tax
from dropline.tax.rules import TaxClass
from dropline.web.app import create_app
from dropline.web.formtoken import CSRF_COOKIE, CSRF_HEADER, form_token
from tests.builders import ADDRESS, GOOD_PM
from tests.discounts.builders import make_code
from tests.drops.builders import REDIS_URL, DropWorld, LeadTimes, make_drop
from tests.drops.servers import serve_gated
from tests.fulfilment.builders import DALSTON, make_network, make_windows
from tests.invoices.test_invoices import SELLER, pdf_text
from tests.web.test_security_headers import assert_security_headers

CARD = GOOD_PM
ON_POSTGRESQL = (os.environ.get("DROPLINE_TEST_DATABASE_URL") or "").startswith("postgresql")


@dataclass(frozen=True)
class Buyer:
    customer_id: int
    token: str


class Shop:
    """One engine behind HTTP, and what a case needs to set the scene."""

    def __init__(self, engine: str, http: httpx.Client, app: Any, db: Any, clock: Any,
                 redis_client: redis.Redis | None = None, prefix: str = "") -> None:
        self.engine, self.http, self.app, self.db, self.clock = engine, http, app, db, clock
        self.redis, self.prefix = redis_client, prefix

    def drop(self, **options: Any) -> DropWorld:
        return make_drop(self.db, self.clock, **options)

    def shopper(self) -> Buyer:
        with self.db.transaction() as session:
            customer = Customer(email=f"rule-{uuid.uuid4().hex[:10]}@example.com",
                                password_hash="x", created_at=self.clock.now())
            session.add(customer)
            session.flush()
            return Buyer(customer.id, start_session(session, clock=self.clock,
                                                    customer=customer, days=1))

    def post(self, buyer: Buyer, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.post(path, headers={**self._browser(buyer),
                                             **kwargs.pop("headers", {})}, **kwargs)

    def _browser(self, buyer: Buyer) -> dict[str, str]:
        """The buyer's session cookie, and a form token as a browser showing the form has."""
        secret = self.app.state.services.settings.web.secret_key
        return {"Cookie": f"dl_session={buyer.token}; {CSRF_COOKIE}=rules",
                CSRF_HEADER: form_token(secret, "rules")}

    def get(self, buyer: Buyer, path: str) -> httpx.Response:
        return self.http.get(path, headers={"Cookie": f"dl_session={buyer.token}"})

    def delete(self, buyer: Buyer, path: str) -> httpx.Response:
        return self.http.delete(path, headers=self._browser(buyer))

    def buy(self, buyer: Buyer, world: DropWorld, *, quantity: int = 1, key: str | None = None,
            admission: str | None = None, address: dict[str, Any] = ADDRESS,
            code: str = "", delivery: dict[str, Any] | None = None) -> httpx.Response:
        body = purchase_body(world, quantity=quantity, admission=admission, address=address)
        if code:
            body["discount_code"] = code
        if delivery:
            body["delivery"] = delivery
        return self.post(buyer, f"/api/v1/drops/{world.drop_id}/purchase",
                         headers={"Idempotency-Key": key or uuid.uuid4().hex}, json=body)

    def admission(self, buyer: Buyer, world: DropWorld) -> str:
        """The shopper joins the waiting room, is admitted, and asks for a token."""
        assert self.post(buyer, f"/api/v1/drops/{world.drop_id}/queue").status_code == 200
        self.clock.advance(seconds=5)
        issued = self.post(buyer, f"/api/v1/drops/{world.drop_id}/admission")
        assert issued.status_code == 200, issued.text
        return issued.json()["token"]

    def hold_key_in_flight(self, buyer: Buyer, world: DropWorld, key: str,
                           body: dict[str, Any]) -> None:
        """As if a first request with this key were still being processed."""
        path = f"/api/v1/drops/{world.drop_id}/purchase"
        fingerprint = idempotency.fingerprint("POST", path, PurchaseCreate.model_validate(body))
        if self.engine == "database":
            idempotency.begin(self.db, clock=self.clock, principal=f"customer:{buyer.customer_id}",
                              key=key, request_fingerprint=fingerprint, lease_seconds=60)
            return
        assert self.redis is not None
        reference = idempotency.reference_for(f"customer:{buyer.customer_id}", key)
        self.redis.set(f"{self.prefix}d:{world.drop_id}:i:{reference}", f"P|{fingerprint}")

    def lose_the_gate(self, world: DropWorld) -> None:
        """As if Redis lost the drop's keys (flushed, restarted empty), idempotency records
        included: only PostgreSQL remembers. The database path keeps no such state."""
        if self.redis is not None:
            for name in self.redis.scan_iter(match=f"{self.prefix}d:{world.drop_id}:*"):
                self.redis.delete(name)

    def paid_units(self, world: DropWorld) -> int:
        with self.db.transaction() as session:
            return session.scalar(
                select(func.coalesce(func.sum(OrderLine.quantity), 0))
                .join(Order, Order.id == OrderLine.order_id)
                .where(Order.status == OrderStatus.paid,
                       OrderLine.variant_id.in_(world.variant_ids)))

    def orders_of(self, buyer: Buyer) -> int:
        with self.db.transaction() as session:
            return session.scalar(select(func.count()).select_from(Order).where(
                Order.customer_id == buyer.customer_id))


def purchase_body(world: DropWorld, *, quantity: int = 1, admission: str | None = None,
                  address: dict[str, Any] = ADDRESS) -> dict[str, Any]:
    return {"lines": [{"variant_id": world.variant_ids[0], "quantity": quantity}],
            "admission_token": admission, "payment_method": CARD,
            "shipping_address": address}


def refused(response: httpx.Response, status: int, slug: str) -> bool:
    return (response.status_code == status
            and response.headers["content-type"].startswith("application/problem+json")
            and response.json()["type"].endswith("/" + slug))


# --- the rules: given / when / then ------------------------------------------------------------


def before_the_window_a_purchase_is_refused(shop: Shop) -> None:
    world = shop.drop(cap=5, starts_in=10)  # given a drop that opens in ten minutes
    buyer = shop.shopper()
    answer = shop.buy(buyer, world)  # when a shopper buys now
    assert refused(answer, 409, "drop-not-open")  # then: not open yet, nothing sold
    assert answer.json()["opens_at"]
    assert shop.paid_units(world) == 0


def after_the_window_a_purchase_is_refused(shop: Shop) -> None:
    world = shop.drop(cap=5, starts_in=-200, lasts=120)  # given a drop that ended
    answer = shop.buy(shop.shopper(), world)
    assert refused(answer, 409, "drop-ended")
    assert shop.paid_units(world) == 0


def a_member_buys_in_early_access(shop: Shop) -> None:
    world = shop.drop(cap=5, starts_in=10, early_access_minutes=30)
    member = shop.shopper()
    shop.app.state.drops_early_access = LeadTimes({member.customer_id: 30})
    answer = shop.buy(member, world)  # ten minutes before the public start
    assert answer.status_code == 201, answer.text
    assert shop.paid_units(world) == 1


def a_non_member_waits_for_the_public_start(shop: Shop) -> None:
    world = shop.drop(cap=5, starts_in=10, early_access_minutes=30)
    member, stranger = shop.shopper(), shop.shopper()
    shop.app.state.drops_early_access = LeadTimes({member.customer_id: 30})
    assert refused(shop.buy(stranger, world), 409, "drop-not-open")
    assert shop.paid_units(world) == 0


def an_admission_token_admits_once(shop: Shop) -> None:
    world = shop.drop(cap=5, limit=4, queue=True)  # given a drop with a waiting room
    buyer = shop.shopper()
    token = shop.admission(buyer, world)
    first = shop.buy(buyer, world, admission=token)  # when the token is used twice
    second = shop.buy(buyer, world, admission=token)
    assert first.status_code == 201, first.text  # then: the first buys, the second is refused
    assert refused(second, 403, "admission-refused")
    assert shop.paid_units(world) == 1


def a_cross_origin_or_plain_text_purchase_is_refused(shop: Shop) -> None:
    world = shop.drop(cap=5)
    buyer = shop.shopper()
    path = f"/api/v1/drops/{world.drop_id}/purchase"
    body = purchase_body(world)
    hostile = shop.post(buyer, path, json=body, headers={  # from another site's page
        "Idempotency-Key": uuid.uuid4().hex, "Origin": "https://evil.example"})
    plain = shop.post(buyer, path, content=json.dumps(body), headers={  # a form could send it
        "Idempotency-Key": uuid.uuid4().hex, "Content-Type": "text/plain"})
    assert refused(hostile, 403, "cross-origin-refused")
    assert refused(plain, 415, "unsupported-media-type")
    assert shop.paid_units(world) == 0


def every_purchase_answer_carries_the_security_headers(shop: Shop) -> None:
    world = shop.drop(cap=1, limit=1)  # given a drop with one unit
    path = f"/api/v1/drops/{world.drop_id}/purchase"
    buyer = shop.shopper()
    paid = shop.buy(buyer, world)  # when it is bought, then refused in every way
    sold_out = shop.buy(shop.shopper(), world)
    invalid = shop.post(buyer, path, json={"lines": []},
                        headers={"Idempotency-Key": uuid.uuid4().hex})
    hostile = shop.post(buyer, path, json=purchase_body(world), headers={
        "Idempotency-Key": uuid.uuid4().hex, "Origin": "https://evil.example"})
    assert paid.status_code == 201, paid.text  # then: each answer has the app's headers
    assert refused(sold_out, 409, "sold-out") and refused(hostile, 403, "cross-origin-refused")
    assert invalid.status_code == 422
    for answer in (paid, sold_out, invalid, hostile):
        assert_security_headers(answer)


def a_waiting_room_drop_needs_a_token(shop: Shop) -> None:
    world = shop.drop(cap=5, queue=True)
    assert refused(shop.buy(shop.shopper(), world), 403, "admission-refused")
    assert shop.paid_units(world) == 0


def the_per_person_cap_holds_across_orders(shop: Shop) -> None:
    world = shop.drop(cap=10, limit=2)  # given a limit of 2 per person
    buyer = shop.shopper()
    answers = [shop.buy(buyer, world) for _ in range(3)]  # when one shopper buys 1, 1, then 1
    assert [a.status_code for a in answers[:2]] == [201, 201]
    assert refused(answers[2], 409, "per-person-limit")  # then the third order is refused
    assert shop.paid_units(world) == 2


def one_order_asking_for_more_than_the_cap_is_refused(shop: Shop) -> None:
    world = shop.drop(cap=10, limit=2)
    assert refused(shop.buy(shop.shopper(), world, quantity=3), 409, "per-person-limit")
    assert shop.paid_units(world) == 0


def a_replay_gets_the_same_answer(shop: Shop) -> None:
    world = shop.drop(cap=5)
    buyer = shop.shopper()
    first = shop.buy(buyer, world, key="replay-1")  # given a paid purchase
    again = shop.buy(buyer, world, key="replay-1")  # when it is sent again, same key and body
    assert first.status_code == 201 == again.status_code  # then: the same answer, marked
    assert again.json()["id"] == first.json()["id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert shop.orders_of(buyer) == 1 and shop.paid_units(world) == 1


def a_replayed_refusal_is_the_same_refusal(shop: Shop) -> None:
    world = shop.drop(cap=5, limit=1)
    buyer = shop.shopper()
    first = shop.buy(buyer, world, quantity=2, key="refused-1")
    again = shop.buy(buyer, world, quantity=2, key="refused-1")
    assert refused(first, 409, "per-person-limit")
    assert refused(again, 409, "per-person-limit")
    assert again.headers.get("Idempotent-Replayed") == "true"


def a_replayed_refusal_stays_refused_when_units_come_back(shop: Shop) -> None:
    world = shop.drop(cap=1, limit=1, hold_ttl=60)  # given a purchase refused as sold out
    holder, buyer = shop.shopper(), shop.shopper()
    assert shop.post(holder, f"/api/v1/drops/{world.drop_id}/holds", json={
        "lines": [{"variant_id": world.variant_ids[0], "quantity": 1}]}).status_code == 201
    assert refused(shop.buy(buyer, world, key="late-1"), 409, "sold-out")
    shop.clock.advance(seconds=61)  # when the held unit comes back and the request is replayed
    again = shop.buy(buyer, world, key="late-1")
    assert refused(again, 409, "sold-out")  # then it gets its first answer: a new key buys
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert shop.orders_of(buyer) == 0


def the_same_key_with_another_body_is_refused(shop: Shop) -> None:
    world = shop.drop(cap=5)
    buyer = shop.shopper()
    first = shop.buy(buyer, world, key="reused-1")
    other = shop.buy(buyer, world, key="reused-1", address={**ADDRESS, "line1": "2 Other St"})
    assert first.status_code == 201
    assert refused(other, 422, "idempotency-key-reused")
    assert shop.orders_of(buyer) == 1


def the_same_key_after_a_refusal_with_another_body_is_refused(shop: Shop) -> None:
    world = shop.drop(cap=5, limit=2)  # given a purchase refused (over the per-person limit)
    buyer = shop.shopper()
    assert refused(shop.buy(buyer, world, quantity=3, key="refused-2"), 409, "per-person-limit")
    other = shop.buy(buyer, world, quantity=2, key="refused-2")  # when its key buys less
    assert refused(other, 422, "idempotency-key-reused")  # then: the key is spent
    assert shop.orders_of(buyer) == 0 and shop.paid_units(world) == 0


def a_key_refused_at_the_door_keeps_its_answer(shop: Shop) -> None:
    world = shop.drop(cap=5, queue=True)  # given a purchase refused for want of a token
    buyer = shop.shopper()
    first = shop.buy(buyer, world, key="tokenless-1")
    again = shop.buy(buyer, world, key="tokenless-1")
    assert refused(first, 403, "admission-refused")
    assert refused(again, 403, "admission-refused")  # a replay is the same refusal, marked
    assert again.headers.get("Idempotent-Replayed") == "true"
    token = shop.admission(buyer, world)  # when the key comes back with a token
    other = shop.buy(buyer, world, key="tokenless-1", admission=token)
    assert refused(other, 422, "idempotency-key-reused")  # then: the key is spent
    assert shop.orders_of(buyer) == 0


def a_key_keeps_its_first_body_after_the_gate_forgets(shop: Shop) -> None:
    world = shop.drop(cap=5, limit=4)  # given a paid purchase, and its key tried with body B
    buyer = shop.shopper()
    moved = {**ADDRESS, "line1": "2 Other St"}
    first = shop.buy(buyer, world, key="lost-1")
    assert first.status_code == 201, first.text
    assert refused(shop.buy(buyer, world, key="lost-1", address=moved), 422,
                   "idempotency-key-reused")
    shop.lose_the_gate(world)  # when Redis loses the drop's keys, and both bodies come again
    other = shop.buy(buyer, world, key="lost-1", address=moved)
    again = shop.buy(buyer, world, key="lost-1")
    assert refused(other, 422, "idempotency-key-reused")  # then B is still refused
    assert again.status_code == 201, again.text  # and A still gets its order, marked
    assert again.json()["id"] == first.json()["id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert shop.orders_of(buyer) == 1 and shop.paid_units(world) == 1


def the_same_key_in_flight_is_told_to_retry(shop: Shop) -> None:
    world = shop.drop(cap=5)
    buyer = shop.shopper()
    shop.hold_key_in_flight(buyer, world, "busy-1", purchase_body(world))  # given a first try
    answer = shop.buy(buyer, world, key="busy-1")  # when the same request comes again
    assert refused(answer, 409, "request-in-flight")  # then: retry later, nothing bought
    assert "Retry-After" in answer.headers
    assert shop.orders_of(buyer) == 0


def a_sold_out_drop_refuses_and_points_to_the_waitlist(shop: Shop) -> None:
    world = shop.drop(cap=1, limit=1)  # given a drop whose last unit is bought
    assert shop.buy(shop.shopper(), world).status_code == 201
    late = shop.shopper()
    answer = shop.buy(late, world)  # when another shopper buys
    assert refused(answer, 409, "sold-out")  # then: sold out, nothing more sold
    assert answer.json()["drop_id"] == world.drop_id
    assert shop.paid_units(world) == 1 and shop.orders_of(late) == 0


def an_expired_hold_returns_its_units(shop: Shop) -> None:
    world = shop.drop(cap=1, limit=1, hold_ttl=60)  # given the only unit held
    holder, buyer = shop.shopper(), shop.shopper()
    held = shop.post(holder, f"/api/v1/drops/{world.drop_id}/holds",
                     json={"lines": [{"variant_id": world.variant_ids[0], "quantity": 1}]})
    assert held.status_code == 201, held.text
    assert refused(shop.buy(buyer, world), 409, "sold-out")
    shop.clock.advance(seconds=61)  # when the hold lapses unpaid
    answer = shop.buy(buyer, world)
    assert answer.status_code == 201, answer.text  # then its unit can be bought again
    assert shop.paid_units(world) == 1


def units_that_come_back_go_to_the_waitlist_first(shop: Shop) -> None:
    world = shop.drop(cap=1, limit=1, hold_ttl=60)  # given the only unit held
    holder, waiting, late = shop.shopper(), shop.shopper(), shop.shopper()
    assert shop.post(holder, f"/api/v1/drops/{world.drop_id}/holds", json={
        "lines": [{"variant_id": world.variant_ids[0], "quantity": 1}]}).status_code == 201
    assert refused(shop.buy(waiting, world), 409, "sold-out")
    joined = shop.post(waiting, f"/api/v1/drops/{world.drop_id}/waitlist",
                       json={"variant_id": world.variant_ids[0], "quantity": 1})
    assert joined.status_code == 201, joined.text  # and a shopper on the waitlist
    shop.clock.advance(seconds=61)  # when the hold lapses and a third shopper buys
    answer = shop.buy(late, world)
    assert refused(answer, 409, "sold-out")  # then the unit is offered to the waitlist
    entry = shop.get(waiting, f"/api/v1/drops/{world.drop_id}/waitlist/me").json()
    assert entry["status"] == "offered" and entry["hold_id"]
    assert shop.paid_units(world) == 0


def _waitlist_offer_in_early_access(shop: Shop, *, members: int, strangers: int
                                    ) -> tuple[DropWorld, list[Buyer], list[Buyer]]:
    """A drop whose only unit a member holds ten minutes before the public start (thirty
    minutes of early access), shoppers on its waitlist (strangers first), then the hold
    released: the unit goes to the waitlist."""
    world = shop.drop(cap=1, limit=1, starts_in=10, early_access_minutes=30)
    holder = shop.shopper()
    outsiders = [shop.shopper() for _ in range(strangers)]
    insiders = [shop.shopper() for _ in range(members)]
    shop.app.state.drops_early_access = LeadTimes(
        {b.customer_id: 30 for b in [holder, *insiders]})
    held = shop.post(holder, f"/api/v1/drops/{world.drop_id}/holds", json={
        "lines": [{"variant_id": world.variant_ids[0], "quantity": 1}]})
    assert held.status_code == 201, held.text
    for waiting in [*outsiders, *insiders]:
        joined = shop.post(waiting, f"/api/v1/drops/{world.drop_id}/waitlist",
                           json={"variant_id": world.variant_ids[0], "quantity": 1})
        assert joined.status_code == 201, joined.text
    assert shop.delete(holder, f"/api/v1/drops/holds/{held.json()['id']}").status_code == 204
    return world, outsiders, insiders


def claim(shop: Shop, buyer: Buyer, world: DropWorld) -> httpx.Response:
    return shop.post(buyer, f"/api/v1/drops/{world.drop_id}/waitlist/claim",
                     headers={"Idempotency-Key": uuid.uuid4().hex},
                     json={"payment_method": CARD, "shipping_address": ADDRESS})


def a_waitlist_offer_in_early_access_goes_to_who_may_buy_then(shop: Shop) -> None:
    # given a non-member ahead of a member on the waitlist, when a unit comes back while the
    # drop is open to members only
    world, (stranger,), (member,) = _waitlist_offer_in_early_access(shop, members=1,
                                                                    strangers=1)
    waiting = shop.get(stranger, f"/api/v1/drops/{world.drop_id}/waitlist/me").json()
    offered = shop.get(member, f"/api/v1/drops/{world.drop_id}/waitlist/me").json()
    assert waiting["status"] == "waiting"  # then the stranger keeps their place
    assert offered["status"] == "offered" and offered["hold_id"]
    assert refused(claim(shop, stranger, world), 409, "invalid-state")  # has no offer
    assert claim(shop, member, world).status_code == 201  # and the member pays for it
    assert shop.paid_units(world) == 1 and shop.orders_of(stranger) == 0


def a_waitlist_offer_is_claimed_only_once_the_drop_is_open_to_the_shopper(shop: Shop) -> None:
    world, _, (member,) = _waitlist_offer_in_early_access(shop, members=1, strangers=0)
    entry = shop.get(member, f"/api/v1/drops/{world.drop_id}/waitlist/me").json()
    assert entry["status"] == "offered"  # given an offer made to a member in early access
    shop.app.state.drops_early_access = LeadTimes()  # when their membership lapses
    answer = claim(shop, member, world)
    assert refused(answer, 409, "drop-not-open")  # then: the drop opens to them at the start
    assert shop.paid_units(world) == 0 and shop.orders_of(member) == 0


def the_storefront_form_buys_by_the_same_rules(shop: Shop) -> None:
    world = shop.drop(cap=5, limit=1, queue=True)  # given an admitted shopper, no JavaScript
    buyer = shop.shopper()
    assert shop.post(buyer, f"/api/v1/drops/{world.drop_id}/queue").status_code == 200
    shop.clock.advance(seconds=5)
    form = {"name": ADDRESS["name"], "line1": ADDRESS["line1"], "city": ADDRESS["city"],
            "postcode": ADDRESS["postcode"], "country": ADDRESS["country"],
            "payment_method": CARD,
            "variant_id": world.variant_ids[0], "quantity": 1, "key": "form-1"}
    path = f"/drops/{world.drop_id}/buy"
    bought = shop.post(buyer, path, data=form, follow_redirects=False)  # when it is sent twice
    again = shop.post(buyer, path, data=form, follow_redirects=False)
    more = shop.post(buyer, path, data={**form, "key": "form-2"}, follow_redirects=False)
    assert bought.status_code == 303, bought.text  # then: one order, and the cap holds
    assert bought.headers["location"].startswith("/orders/")
    assert again.headers["location"] == bought.headers["location"]
    assert more.status_code == 409 and "per person" in more.text
    assert shop.orders_of(buyer) == 1 and shop.paid_units(world) == 1


def a_drop_order_carries_its_vat_breakdown(shop: Shop) -> None:
    world = shop.drop(cap=5, limit=2, price=4200)  # given a reduced-rate (5 %) drop product
    with shop.db.transaction() as session:
        product_id = session.get(Variant, world.variant_ids[0]).product_id
        tax.set_tax_class(session, product_id=product_id, tax_class=TaxClass.reduced)
    answer = shop.buy(shop.shopper(), world)  # when one is bought, below free delivery
    assert answer.status_code == 201, answer.text
    # then: 42.00 at 5 % holds 2.00 VAT; delivery (3.95) at the standard 20 % holds 0.66
    assert (answer.json()["tax_amount"], answer.json()["total_amount"]) == (266, 4595)
    with shop.db.transaction() as session:
        order = session.get(Order, answer.json()["id"])
        line = session.scalars(select(OrderLine).where(OrderLine.order_id == order.id)).one()
        assert (order.tax_amount, order.shipping_tax_amount, order.shipping_tax_rate_bp,
                order.tax_country) == (266, 66, 2000, "GB")
        assert (line.tax_class, line.tax_rate_bp, line.tax_amount) == ("reduced", 500, 200)
        invoice = invoices.issue_invoice(session, clock=shop.clock, order_id=order.id,
                                         seller=SELLER)
        text = pdf_text(documents.invoice_pdf(reference=invoice.reference,
                                              currency=invoice.currency,
                                              issued_at=invoice.issued_at,
                                              content=invoice.content))
    assert "VAT 5% £40.00 £2.00" in text and "VAT 20% £3.29 £0.66" in text
    assert "Total VAT £2.66" in text and "Total £45.95" in text


def a_discount_code_applies_by_its_scope_and_its_cap(shop: Shop) -> None:
    world = shop.drop(cap=5, limit=2, price=4200)  # given a code for this drop, used once
    mine, other = f"D{world.drop_id}-{uuid.uuid4().hex[:6]}", f"X-{uuid.uuid4().hex[:6]}"
    make_code(shop.db, shop.clock, code=mine, percent=10, drop_ids=[world.drop_id],
              max_uses=1)
    make_code(shop.db, shop.clock, code=other, percent=50, drop_ids=[world.drop_id + 1000])
    first, second = shop.shopper(), shop.shopper()
    paid = shop.buy(first, world, code=mine.lower())  # when it is used, then used again
    used_up = shop.buy(second, world, code=mine)
    elsewhere = shop.buy(second, world, code=other)  # and a code for another drop is tried
    assert paid.status_code == 201, paid.text
    # then: 10 % off 42.00; delivery on the 37.80 left; VAT on what is paid (6.30 + 0.66)
    order = paid.json()
    assert (order["discount_code"], order["discount_amount"], order["shipping_amount"],
            order["total_amount"], order["tax_amount"]) == (mine.upper(), 420, 395, 4175, 696)
    assert order["lines"][0]["discount_amount"] == 420
    assert refused(used_up, 409, "discount-cap-reached")
    assert used_up.json()["field"] == "discount_code"
    assert refused(elsewhere, 422, "discount-not-applicable")
    assert shop.paid_units(world) == 1 and shop.orders_of(second) == 0
    with shop.db.transaction() as session:
        redemption = discounts.redemption_of(session, order["id"])
        assert (redemption.discount_amount, redemption.customer_id) == (420,
                                                                        first.customer_id)
        assert discounts.lookup_code(session, mine).uses == 1


def the_drop_form_takes_a_code_and_says_beside_it_why_one_is_refused(shop: Shop) -> None:
    world = shop.drop(cap=5, limit=2, price=4200)  # given a 20 % code for this drop
    code = f"F{world.drop_id}-{uuid.uuid4().hex[:6]}"
    make_code(shop.db, shop.clock, code=code, percent=20, drop_ids=[world.drop_id])
    buyer = shop.shopper()
    form = {"name": ADDRESS["name"], "line1": ADDRESS["line1"], "city": ADDRESS["city"],
            "postcode": ADDRESS["postcode"], "country": ADDRESS["country"],
            "payment_method": CARD, "variant_id": world.variant_ids[0], "quantity": 1}
    path = f"/drops/{world.drop_id}/buy"
    wrong = shop.post(buyer, path, data={**form, "key": "code-1", "discount_code": "NOPE-X"},
                      follow_redirects=False)  # when a wrong code, then the right one, is sent
    right = shop.post(buyer, path, data={**form, "key": "code-2", "discount_code": code},
                      follow_redirects=False)
    assert wrong.status_code == 422  # then: the reason beside the field, what was typed kept
    assert 'id="discount_code-error"' in wrong.text and "NOPE-X" in wrong.text
    assert 'aria-invalid="true"' in wrong.text and ADDRESS["line1"] in wrong.text
    assert right.status_code == 303, right.text
    with shop.db.transaction() as session:
        order = session.get(Order, int(right.headers["location"].split("/")[2].split("?")[0]))
        assert (order.discount_code, order.discount_amount) == (code.upper(), 840)


def a_purchase_books_its_delivery_window_and_a_full_one_takes_nothing(shop: Shop) -> None:
    network = make_network(shop.db, shop.clock)  # given a hub with 5 units, windows of one
    window = make_windows(shop.db, capacity=1)[-1]
    world = shop.drop(cap=5, limit=2, price=4200, with_location=False)
    with shop.db.transaction() as session:
        set_stock(session, clock=shop.clock, location_code="hub-hackney",
                  variant_id=world.variant_ids[0], on_hand=5, actor="test")
    near = {"window_id": window, "latitude": DALSTON.latitude, "longitude": DALSTON.longitude}
    first, second, third = shop.shopper(), shop.shopper(), shop.shopper()
    booked = shop.buy(first, world, delivery=near)  # when two pick the window, one none
    full = shop.buy(second, world, delivery=near)
    later = shop.buy(third, world)
    assert booked.status_code == 201, booked.text  # then: the first is booked and priced
    order = booked.json()
    assert (order["fulfilment_path"], order["shipping_amount"], order["total_amount"]) == (
        "hub-window", 395, 4595)
    assert refused(full, 409, "window-full") and shop.orders_of(second) == 0, full.text
    assert later.status_code == 201 and later.json()["fulfilment_path"] == "central"
    assert shop.paid_units(world) == 2
    with shop.db.transaction() as session:
        decisions = {row.order_id: row for row in session.scalars(
            select(FulfilmentDecisionRow))}
        assert order["id"] in decisions  # decided with the purchase, its place booked
        assert session.scalar(select(WindowBooking.window_id).where(
            WindowBooking.live_order_id == order["id"])) == window
        assert later.json()["id"] not in decisions  # decided after the drop, by the batch
        assert session.scalar(select(DeliveryWindow.booked).where(
            DeliveryWindow.id == window)) == 1
        assert session.scalar(select(StockLevel.on_hand).where(
            StockLevel.location_id == network.hub_id,
            StockLevel.variant_id == world.variant_ids[0])) == 4  # the full one took none


def the_drop_form_lists_windows_for_a_postcode_and_books_the_one_picked(shop: Shop) -> None:
    make_network(shop.db, shop.clock)  # given a hub near E8 with the drop's units
    window = make_windows(shop.db)[-1]
    world = shop.drop(cap=5, limit=2, price=4200, with_location=False)
    with shop.db.transaction() as session:
        set_stock(session, clock=shop.clock, location_code="hub-hackney",
                  variant_id=world.variant_ids[0], on_hand=5, actor="test")
    buyer = shop.shopper()
    page = shop.get(buyer, f"/drops/{world.drop_id}/me?postcode=E8+3PN")  # no JavaScript
    form = {"name": ADDRESS["name"], "line1": ADDRESS["line1"], "city": ADDRESS["city"],
            "postcode": "E8 3PN", "country": "GB", "payment_method": CARD,
            "variant_id": world.variant_ids[0], "quantity": 1, "key": "window-form-1",
            "window": str(window)}
    bought = shop.post(buyer, f"/drops/{world.drop_id}/buy", data=form,
                       follow_redirects=False)
    assert page.status_code == 200  # then: the windows are offered, and the picked one booked
    assert f'name="window" value="{window}"' in page.text and 'value="E8 3PN"' in page.text
    assert bought.status_code == 303, bought.text
    with shop.db.transaction() as session:
        order = session.get(Order, int(bought.headers["location"].split("/")[2].split("?")[0]))
        assert (order.fulfilment_path, order.shipping_amount) == ("hub-window", 395)
        assert session.scalar(select(WindowBooking.window_id).where(
            WindowBooking.live_order_id == order.id)) == window


@dataclass(frozen=True)
class Rule:
    check: Callable[[Shop], None]
    differs: dict[str, str] = field(default_factory=dict)  # engine -> how it answers today


RULES = [
    Rule(before_the_window_a_purchase_is_refused),
    Rule(after_the_window_a_purchase_is_refused),
    Rule(a_member_buys_in_early_access),
    Rule(a_non_member_waits_for_the_public_start),
    Rule(a_cross_origin_or_plain_text_purchase_is_refused),
    Rule(every_purchase_answer_carries_the_security_headers),
    Rule(a_waiting_room_drop_needs_a_token),
    Rule(an_admission_token_admits_once),
    Rule(the_per_person_cap_holds_across_orders),
    Rule(one_order_asking_for_more_than_the_cap_is_refused),
    Rule(a_replay_gets_the_same_answer),
    Rule(a_replayed_refusal_is_the_same_refusal),
    Rule(a_replayed_refusal_stays_refused_when_units_come_back),
    Rule(the_same_key_with_another_body_is_refused),
    Rule(the_same_key_after_a_refusal_with_another_body_is_refused),
    Rule(a_key_refused_at_the_door_keeps_its_answer),
    Rule(a_key_keeps_its_first_body_after_the_gate_forgets),
    Rule(the_same_key_in_flight_is_told_to_retry),
    Rule(a_sold_out_drop_refuses_and_points_to_the_waitlist),
    Rule(an_expired_hold_returns_its_units),
    Rule(units_that_come_back_go_to_the_waitlist_first),
    Rule(a_waitlist_offer_in_early_access_goes_to_who_may_buy_then),
    Rule(a_waitlist_offer_is_claimed_only_once_the_drop_is_open_to_the_shopper),
    Rule(the_storefront_form_buys_by_the_same_rules),
    Rule(a_drop_order_carries_its_vat_breakdown),
    Rule(a_discount_code_applies_by_its_scope_and_its_cap),
    Rule(the_drop_form_takes_a_code_and_says_beside_it_why_one_is_refused),
    Rule(a_purchase_books_its_delivery_window_and_a_full_one_takes_nothing),
    Rule(the_drop_form_lists_windows_for_a_postcode_and_books_the_one_picked),
]
ENGINES = ["database", "engine"]


def _cases() -> Iterator[Any]:
    for rule in RULES:
        for engine in ENGINES:
            marks = [pytest.mark.xfail(strict=True, reason=rule.differs[engine])] \
                if engine in rule.differs else []
            yield pytest.param(engine, rule, marks=marks, id=f"{rule.check.__name__}-{engine}")


@contextmanager
def _shop(engine: str, db: Any, clock: Any, settings: Any) -> Iterator[Shop]:
    if engine == "database":
        app = create_app(settings, clock=clock, db=db, run_worker=False)
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Shop(engine, client, app, db, clock)
        return
    if not ON_POSTGRESQL:
        pytest.skip("the flash-crowd engine runs on PostgreSQL with Redis: set "
                    "DROPLINE_TEST_DATABASE_URL (PostgreSQL) and DROPLINE_TEST_REDIS_URL")
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is not reachable at {REDIS_URL} ({exc}): start it, or set "
                    "DROPLINE_TEST_REDIS_URL")
    # A short lease: a request found in flight is answered within a second.
    with serve_gated(db, clock, settings, client, idempotency_lease_seconds=1) as server, \
            httpx.Client(base_url=server.url, timeout=30) as http:
        yield Shop(engine, http, server.app, db, clock, client, server.prefix)
    client.close()


@pytest.mark.parametrize(("engine", "rule"), list(_cases()))
def test_the_purchase_rule_holds_on_both_engines(engine: str, rule: Rule, db, clock,
                                                settings) -> None:
    with _shop(engine, db, clock, settings) as shop:
        rule.check(shop)

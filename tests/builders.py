"""Small builders, one per concept (no giant fixtures module)."""

from __future__ import annotations

import re
import uuid
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from fastapi.testclient import TestClient

from dropline.adapters.geocoding import LondonDistrictGeocoder
from dropline.adapters.payments import TEST_PAYMENT_METHODS
from dropline.admin.service import issue_token
from dropline.catalog.models import ConditionGrade
from dropline.catalog.service import VariantSpec, create_product, set_stock
from dropline.checkout_policy import build_checkout_policy
from dropline.clock import Clock
from dropline.db import Database
from dropline.invoices.service import CreditNotes
from dropline.locations.models import Location, LocationKind
from dropline.orders.policy import CheckoutPolicy
from dropline.payments.provider import CardToken

PASSWORD = "correct horse battery"
GOOD_CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
# Stripe's test payment methods, which the local provider knows too (adapters.payments).
GOOD_PM = "pm_card_visa"
DECLINED_PM = "pm_card_visa_chargeDeclined"
NO_FUNDS_PM = "pm_card_visa_chargeDeclinedInsufficientFunds"
TRANSIENT_PM = "pm_card_chargeDeclinedProcessingError"
# Every refund's credit note, as the composition root wires it (a shop with no VAT number).
CREDIT_NOTES = CreditNotes({"name": "Dropline test shop", "vat_number": "", "country": "GB"})
ADDRESS = {"name": "Ada Lovelace", "line1": "1 Fournier St", "city": "London",
           "postcode": "E1 6QE", "country": "GB"}


def make_location(db: Database, *, code: str = "central",
                  kind: LocationKind = LocationKind.central_warehouse) -> int:
    with db.transaction() as session:
        location = Location(code=code, name=code.title(), kind=kind, latitude=51.5,
                            longitude=-0.1)
        session.add(location)
        session.flush()
        return location.id


def make_product(
    db: Database, clock: Clock, *, name: str | None = None, price: int = 4200, stock: int = 10,
    family: str = "eau-de-parfum", grade: ConditionGrade = ConditionGrade.new,
    disclosure: str = "", location: str = "central",
) -> tuple[int, int]:
    """Returns (product_id, variant_id); the variant has ``stock`` units at ``location``."""
    suffix = uuid.uuid4().hex[:8]
    with db.transaction() as session:
        product = create_product(
            session, clock=clock, name=name or f"Fig Leaf {suffix}", family_slug=family,
            variants=[VariantSpec(sku=f"SKU-{suffix}", name="50 ml", price_amount=price,
                                  currency="GBP", condition_grade=grade,
                                  condition_disclosure=disclosure)],
        )
        from dropline.catalog.service import variants_of

        variant = variants_of(session, [product.id])[product.id][0]
        set_stock(session, clock=clock, location_code=location, variant_id=variant.id,
                  on_hand=stock, actor="test")
        return product.id, variant.id


SIGN_UP_LINK = re.compile(r"/sign-up/confirm\?token=([A-Za-z0-9_\-%]+)")


def sign_up_token(client: TestClient | Path, email: str) -> str:
    """The token of the newest sign-up link the app mailed to ``email`` (its mail outbox, or
    the outbox folder given)."""
    outbox = client if isinstance(client, Path) else Path(
        client.app.state.services.settings.mail.outbox_dir)  # type: ignore[attr-defined]
    for path in sorted(outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns, reverse=True):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        if message["To"] == email.strip().lower() and isinstance(message, EmailMessage):
            found = SIGN_UP_LINK.search(message.get_content())
            if found:
                return unquote(found.group(1))
    raise AssertionError(f"no sign-up link was mailed to {email}")


def sign_up(client: TestClient, *, email: str | None = None, **extra: Any) -> dict[str, Any]:
    """Registers a customer (signs up, then uses the emailed link) and returns them
    (``GET /me``); the client then carries their session cookie."""
    email = email or f"shopper-{uuid.uuid4().hex[:8]}@example.com"
    response = client.post("/api/v1/customers",
                           json={"email": email, "password": PASSWORD, **extra})
    assert response.status_code == 202, response.text
    confirmed = client.post("/api/v1/customers/confirmations",
                            json={"token": sign_up_token(client, email)})
    assert confirmed.status_code == 201, confirmed.text
    me = client.get("/api/v1/me")
    assert me.status_code == 200, me.text
    return me.json()


def cart_with(client: TestClient, variant_id: int, quantity: int = 1) -> str:
    cart = client.post("/api/v1/carts")
    assert cart.status_code == 201, cart.text
    cart_id = cart.json()["id"]
    line = client.put(f"/api/v1/carts/{cart_id}/lines/{variant_id}", json={"quantity": quantity})
    assert line.status_code == 200, line.text
    return cart_id


def card_of(reference: str = GOOD_PM) -> CardToken:
    """What the provider tells the shop of one of its test payment methods."""
    return TEST_PAYMENT_METHODS[reference].card


def tokenise(client: TestClient, card: dict[str, Any] | None = None, **changes: Any) -> str:
    """The card as the browser sends it to the local provider (POST /pay/local/tokens, what
    /static/pay/local.js does): its payment method reference. ``changes`` alter GOOD_CARD."""
    response = client.post("/pay/local/tokens", json={**(card or GOOD_CARD), **changes})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def checkout_body(cart_id: str, payment_method: str = GOOD_PM) -> dict[str, Any]:
    return {"cart_id": cart_id, "payment_method": payment_method, "shipping_address": ADDRESS}


def api_token(db: Database, clock: Clock, *scopes: str) -> dict[str, str]:
    """Authorization header for a fresh token with these scopes."""
    with db.transaction() as session:
        issued = issue_token(session, clock=clock, name="test", scopes=list(scopes))
        return {"Authorization": f"Bearer {issued.secret}"}


CONSOLE_PASSWORD = "console password 1"


def sign_in_console(client: TestClient, db: Database, clock: Clock,
                    email: str = "ops@brand.example") -> None:
    """Creates an admin user and signs the client in to the /admin console (cookie)."""
    from dropline.admin.service import create_admin_user

    with db.transaction() as session:
        create_admin_user(session, clock=clock, email=email, password=CONSOLE_PASSWORD)
    response = client.post("/admin/login", data={"email": email, "password": CONSOLE_PASSWORD},
                           follow_redirects=False)
    assert response.status_code == 303, response.text


def checkout_policy() -> CheckoutPolicy:
    """The checkout policy the composition root builds (member prices, delivery windows)."""
    return build_checkout_policy(geocoder=LondonDistrictGeocoder())

"""Edge-caching headers of the public pages, and that nothing personal reaches them."""

from __future__ import annotations

from sqlalchemy import select

from dropline.catalog.service import set_price
from dropline.events.models import DomainEvent
from dropline.webhooks.models import WebhookDelivery
from dropline.webhooks.service import create_endpoint
from tests.builders import cart_with, make_location, make_product, sign_up
from tests.drops.builders import make_drop


def test_a_product_page_revalidates_to_304_with_its_strong_etag(client, db, clock):
    make_location(db)
    product_id, _ = make_product(db, clock, name="Neroli Tide")

    first = client.get("/products/neroli-tide")
    again = client.get("/products/neroli-tide", headers={"If-None-Match": first.headers["ETag"]})
    other = client.get("/products/neroli-tide", headers={"If-None-Match": '"not-it"'})

    assert first.status_code == 200 and "Neroli Tide" in first.text
    cache_control = first.headers["Cache-Control"]
    assert cache_control.startswith("public, ") and "s-maxage=" in cache_control
    assert "stale-while-revalidate=" in cache_control
    assert first.headers["ETag"].startswith('"') and not first.headers["ETag"].startswith("W/")
    assert f"product-{product_id}" in first.headers["Surrogate-Key"].split()
    assert again.status_code == 304 and again.content == b""
    assert again.headers["ETag"] == first.headers["ETag"]
    assert other.status_code == 200 and other.content == first.content
    assert other.headers["X-Cache"] == "hit"


def test_a_signed_in_visitor_gets_the_same_bytes_as_anyone(client, db, clock):
    make_location(db)
    _, variant_id = make_product(db, clock, name="Neroli Tide")
    world = make_drop(db, clock, queue=True, starts_in=30, with_location=False)

    anonymous = {path: client.get(path) for path in ("/", "/products/neroli-tide",
                                                     f"/drops/{world.drop_id}")}
    person = sign_up(client, name="Ada Byron")
    cart_with(client, variant_id)
    signed_in = {path: client.get(path) for path in anonymous}

    for path, response in signed_in.items():
        assert response.status_code == 200, path
        assert response.content == anonymous[path].content, path
        assert response.headers["ETag"] == anonymous[path].headers["ETag"], path
        assert response.headers["Cache-Control"].startswith("public"), path
        assert person["email"] not in response.text and "Ada Byron" not in response.text
        assert "set-cookie" not in response.headers, path


def test_pages_for_one_person_are_private_and_never_stored(client, db, clock):
    make_location(db)
    _, variant_id = make_product(db, clock)
    sign_up(client, name="Ada")
    client.post("/cart/lines", data={"variant_id": variant_id, "quantity": 1})

    for path in ("/cart", "/checkout", "/account", "/api/v1/me/summary", "/sign-in"):
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[:300])
        assert response.headers["Cache-Control"] == "private, no-store", path
        assert "Surrogate-Key" not in response.headers, path
    assert client.get("/api/v1/me/summary").json()["cart_count"] == 1


def test_a_price_change_emits_one_purge_for_its_pages_and_re_renders_them(client, db, clock):
    make_location(db)
    product_id, variant_id = make_product(db, clock, name="Neroli Tide", price=7400)
    with db.transaction() as session:
        endpoint = create_endpoint(session, clock=clock, url="https://cdn.example/purge",
                                   event_types=["cache.purge"])
        endpoint_id = endpoint.id
    before = client.get("/products/neroli-tide")
    home_before = client.get("/")
    assert client.get("/products/neroli-tide").headers["X-Cache"] == "hit"

    with db.transaction() as session:
        set_price(session, clock=clock, variant_id=variant_id, price_amount=6900, actor="test")

    with db.transaction() as session:
        purges = list(session.scalars(select(DomainEvent).where(DomainEvent.type == "cache.purge")
                                      .order_by(DomainEvent.id)))
        deliveries = list(session.scalars(select(WebhookDelivery).where(
            WebhookDelivery.event_id == purges[-1].id)))
    assert f"product-{product_id}" in purges[-1].payload["surrogate_keys"]
    assert [d.endpoint_id for d in deliveries] == [endpoint_id]
    after = client.get("/products/neroli-tide")
    assert after.headers["X-Cache"] == "miss" and "£69.00" in after.text
    assert after.headers["ETag"] != before.headers["ETag"]
    stale = client.get("/products/neroli-tide", headers={"If-None-Match": before.headers["ETag"]})
    assert stale.status_code == 200
    assert client.get("/").headers["ETag"] != home_before.headers["ETag"]  # home shows it too


def _purges(db) -> int:
    with db.transaction() as session:
        return len(session.scalars(select(DomainEvent.id).where(
            DomainEvent.type == "cache.purge")).all())


def test_a_rolled_back_change_emits_no_purge(client, db, clock):
    make_location(db)
    _, variant_id = make_product(db, clock, price=7400)
    before = _purges(db)

    try:
        with db.transaction() as session:
            set_price(session, clock=clock, variant_id=variant_id, price_amount=100, actor="t")
            raise RuntimeError("abandon")
    except RuntimeError:
        pass

    assert before >= 1  # creating the product purged the listing
    assert _purges(db) == before


def test_a_change_flushed_only_by_the_commit_still_purges(client, db, clock):
    """Commit runs ``before_commit`` before its own flush: a plain attribute change with no
    explicit flush must purge all the same."""
    from dropline.catalog.models import Variant

    make_location(db)
    _, variant_id = make_product(db, clock, name="Cedar Smoke", price=5100)
    assert "£51.00" in client.get("/products/cedar-smoke").text
    assert client.get("/products/cedar-smoke").headers["X-Cache"] == "hit"

    with db.transaction() as session:
        session.get(Variant, variant_id).price_amount = 5600  # no flush before the commit

    after = client.get("/products/cedar-smoke")
    assert after.headers["X-Cache"] == "miss" and "£56.00" in after.text

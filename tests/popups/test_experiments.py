"""Experiments: assignment stable per visitor and spread evenly, the page depends only on the
variant key (so the edge cache keeps one copy per variant), observations counted once, and
results with Wilson / Newcombe intervals."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from dropline.catalog.models import Product
from dropline.drops.models import Drop
from dropline.popups import experiments, rules
from dropline.popups.models import ExperimentObservation
from dropline.web.app import create_app
from dropline.web.caching import CATALOGUE, PageCache, warm
from tests.builders import api_token, make_location, make_product
from tests.drops.builders import make_drop
from tests.web.support import assert_problem, changed_tables, snapshot

VARIANTS = [{"key": "a", "headline": "Fig Leaf"}, {"key": "b", "headline": "Green fig, cedar"}]


def test_a_visitor_always_gets_the_same_variant_and_variants_split_evenly():
    visitors = [uuid.uuid4().hex for _ in range(4000)]
    first = [rules.assign_variant("fig-headline", v, ["a", "b"]) for v in visitors]
    again = [rules.assign_variant("fig-headline", v, ["a", "b"]) for v in visitors]

    assert first == again
    split = Counter(first)
    assert 1800 < split["a"] < 2200  # 4000 fair coin flips: this holds with p > 0.9999
    other = [rules.assign_variant("another-test", v, ["a", "b"]) for v in visitors]
    assert 0.4 < sum(x == y for x, y in zip(first, other, strict=True)) / 4000 < 0.6


def test_buckets_match_the_browser_script_mapping():
    # experiments.js: keys[floor(bucket * n / 100)] with bucket = first 8 bytes of
    # sha256(slug \0 visitor) mod 100, big-endian.
    import hashlib

    digest = hashlib.sha256(b"fig-headline\x00visitor-1").digest()
    assert rules.bucket_of("fig-headline", "visitor-1") == int.from_bytes(digest[:8],
                                                                           "big") % 100
    assert [rules.variant_for_bucket(b, ["a", "b", "c"]) for b in (0, 33, 34, 66, 67, 99)] == [
        "a", "a", "b", "b", "c", "c"]


def test_the_page_depends_on_the_variant_key_only_and_the_cache_key_varies_by_it(db, clock):
    with db.transaction() as session:
        experiments.create_experiment(session, clock=clock, slug="fig-headline",
                                      name="Fig headline", page_kind="product",
                                      target="fig-leaf", variants=VARIANTS)
        pick = {(q, h): experiments.page_variant(session, page_kind="product", slug="fig-leaf",
                                                 query_variant=q, header_variant=h)
                for q, h in ((None, None), ("b", None), (None, "b"), ("b", "a"),
                             ("zzz", None))}
        assert experiments.page_variant(session, page_kind="product", slug="other",
                                        query_variant="b", header_variant=None) is None

    assert {k: v.key for k, v in pick.items()} == {
        (None, None): "a", ("b", None): "b", (None, "b"): "b", ("b", "a"): "b",
        ("zzz", None): "a"}
    cache = PageCache()
    pages = {}
    for variant in (pick[(None, None)], pick[("b", None)], pick[(None, "b")]):
        key = variant.cache_key("/products/fig-leaf")
        pages[key] = warm(cache, key, policy=CATALOGUE, render=lambda v=variant: (
            f"<h1>{v.content['headline']}</h1>", {"product-1"}, 200))
    assert sorted(cache.paths()) == ["/products/fig-leaf|v=a", "/products/fig-leaf|v=b"]
    assert pages["/products/fig-leaf|v=a"].etag != pages["/products/fig-leaf|v=b"].etag


def test_wilson_and_newcombe_intervals_match_published_values():
    # Newcombe (1998), table II, example (e): 56/70 vs 48/80: difference 0.2,
    # hybrid score interval 0.0524 to 0.3339.
    diff = rules.newcombe_difference(48, 80, 56, 70)
    assert (round(diff.low, 4), round(diff.high, 4)) == (0.0524, 0.3339)
    w = rules.wilson(81, 263)  # Wilson interval for 81/263: 0.2553 to 0.3662
    assert (round(w.low, 4), round(w.high, 4)) == (0.2553, 0.3662)
    assert rules.wilson(0, 0) == rules.Interval(0.0, 1.0)


def new_visitor(client) -> str:
    response = client.post("/api/v1/experiments/visitors")
    assert response.status_code == 201, response.text
    return response.json()["visitor"]


def _start_fig_headline(client, db, clock) -> str:
    created = client.post("/api/v1/admin/experiments", headers=api_token(db, clock, "popups:write"),
                          json={"slug": "fig-headline", "name": "Fig headline",
                                "page_kind": "product", "target": "fig-leaf",
                                "variants": VARIANTS})
    assert created.status_code == 201, created.text
    return "/api/v1/experiments/fig-headline/observations"


@pytest.mark.parametrize("visitor", [
    "visitor-000",  # invented
    "0" * 64,  # the right shape, not signed by the shop
    "0" * 32 + rules.sign_visitor("another shop's secret", "0" * 32)[32:],
])
def test_an_observation_from_a_visitor_the_shop_did_not_issue_is_refused(client, db, clock,
                                                                          visitor):
    url = _start_fig_headline(client, db, clock)
    before = snapshot(db)

    response = client.post(url, json={"visitor": visitor, "variant": rules.assign_variant(
        "fig-headline", visitor, ["a", "b"]), "kind": "exposure"})

    assert assert_problem(response, 403)["field"] == "visitor"
    assert changed_tables(before, snapshot(db)) == []


def test_an_observation_for_a_variant_the_visitor_is_not_assigned_is_refused(client, db, clock):
    url = _start_fig_headline(client, db, clock)
    visitor = new_visitor(client)
    other = "b" if rules.assign_variant("fig-headline", visitor, ["a", "b"]) == "a" else "a"
    before = snapshot(db)

    response = client.post(url, json={"visitor": visitor, "variant": other, "kind": "exposure"})

    assert assert_problem(response, 422)["field"] == "variant"
    assert changed_tables(before, snapshot(db)) == []


def test_visitor_ids_are_throttled_per_client_ip(db, clock, settings):
    limited = settings.model_copy(update={"throttle": settings.throttle.model_copy(
        update={"experiment_visitors_per_ip_per_hour": 3})})
    with TestClient(create_app(limited, clock=clock, db=db, run_worker=False)) as client:
        issued = {new_visitor(client) for _ in range(3)}
        refused = client.post("/api/v1/experiments/visitors")

    assert len(issued) == 3
    assert assert_problem(refused, 429)
    assert int(refused.headers["retry-after"]) > 0


def test_observations_count_once_per_visitor_and_the_result_has_intervals(client, db, clock):
    headers = api_token(db, clock, "popups:write", "popups:read")
    url = _start_fig_headline(client, db, clock)

    visitors = [new_visitor(client) for _ in range(20)]
    for number, visitor in enumerate(visitors):
        variant = rules.assign_variant("fig-headline", visitor, ["a", "b"])
        assert client.post(url, json={"visitor": visitor, "variant": variant,
                                      "kind": "exposure"}).json() == {"recorded": True}
        if number % 4 == 0:
            client.post(url, json={"visitor": visitor, "variant": variant,
                                   "kind": "conversion"})
    again = client.post(url, json={"visitor": visitors[0], "variant": rules.assign_variant(
        "fig-headline", visitors[0], ["a", "b"]), "kind": "exposure"})
    assert again.json() == {"recorded": False}
    never_seen = new_visitor(client)
    assert_problem(client.post(url, json={"visitor": never_seen, "variant": rules.assign_variant(
        "fig-headline", never_seen, ["a", "b"]), "kind": "conversion"}), 422)
    assert_problem(client.post(url, json={"visitor": visitors[1], "variant": "zz",
                                          "kind": "exposure"}), 422)

    report = client.get("/api/v1/admin/experiments/fig-headline", headers=headers).json()
    arms = {a["variant"]: a for a in report["arms"]}
    assert sum(a["exposures"] for a in arms.values()) == 20
    assert sum(a["conversions"] for a in arms.values()) == 5
    assert arms["a"]["lift_low"] is None and arms["b"]["lift_low"] < arms["b"]["lift_high"]
    for arm in arms.values():
        assert arm["low"] <= arm["rate"] <= arm["high"]
    with db.transaction() as session:
        stored = session.scalars(select(ExperimentObservation.visitor)).all()
        assert not set(visitors) & {v[:32] for v in stored}  # stored hashed
        assert session.scalar(select(func.count()).select_from(ExperimentObservation)) == 25


@pytest.mark.parametrize("variants", [[{"key": "a"}], [{"key": "a"}, {"key": "a"}],
                                      [{"key": "a"}, {"key": "b-c"}]])
def test_bad_experiment_definitions_are_refused(client, db, clock, variants):
    headers = api_token(db, clock, "popups:write")
    response = client.post("/api/v1/admin/experiments", headers=headers, json={
        "slug": "x", "name": "X", "page_kind": "product", "variants": variants})
    assert_problem(response, 422)


def test_the_product_page_renders_the_variant_named_by_the_url_as_its_own_cached_copy(
        client, db, clock):
    make_location(db)
    product_id, _ = make_product(db, clock, name="Fig Leaf")
    with db.transaction() as session:
        slug = session.get(Product, product_id).slug
    before = client.get(f"/products/{slug}")
    assert before.status_code == 200 and 'name="dl-experiment"' not in before.text
    headers = api_token(db, clock, "popups:write")
    assert client.post("/api/v1/admin/experiments", headers=headers, json={
        "slug": "fig-headline", "name": "Fig headline", "page_kind": "product",
        "target": slug, "variants": VARIANTS}).status_code == 201

    # Starting the experiment purged the copy cached without it.
    control = client.get(f"/products/{slug}")
    variant_b = client.get(f"/products/{slug}?v=b")
    by_header = client.get(f"/products/{slug}", headers={"X-Dropline-Variant": "b"})
    assert 'data-variant="a"' in control.text and "<h1>Fig Leaf</h1>" in control.text
    assert 'data-variant="b"' in variant_b.text and "Green fig, cedar" in variant_b.text
    assert by_header.text == variant_b.text  # an edge may name the variant in a header
    assert control.headers["etag"] != variant_b.headers["etag"]
    assert variant_b.headers["cache-control"].startswith("public")
    assert "dl_vid" not in variant_b.headers.get("set-cookie", "")  # nothing per visitor
    assert client.get(f"/products/{slug}?v=b", headers={
        "If-None-Match": variant_b.headers["etag"]}).status_code == 304
    junk = client.get(f"/products/{slug}?v=<script>")
    assert junk.status_code == 200 and 'data-variant="a"' in junk.text

    with db.transaction() as session:
        experiments.stop_experiment(session, clock=clock, slug="fig-headline")
    after = client.get(f"/products/{slug}?v=b")
    assert 'name="dl-experiment"' not in after.text and "Green fig" not in after.text


def test_the_drop_page_renders_the_variant_named_by_the_url_as_its_own_cached_copy(
        client, db, clock):
    world = make_drop(db, clock, starts_in=60)
    with db.transaction() as session:
        slug = session.get(Drop, world.drop_id).slug
    assert 'name="dl-experiment"' not in client.get(f"/drops/{slug}").text
    headers = api_token(db, clock, "popups:write")
    assert client.post("/api/v1/admin/experiments", headers=headers, json={
        "slug": "drop-copy", "name": "Drop copy", "page_kind": "drop", "target": slug,
        "variants": [{"key": "a", "headline": "Midnight Fig"},
                     {"key": "b", "headline": "Midnight Fig: 40 bottles, once"}]}
    ).status_code == 201

    control, variant_b = client.get(f"/drops/{slug}"), client.get(f"/drops/{slug}?v=b")
    assert 'data-variant="a"' in control.text and "<h1>Midnight Fig</h1>" in control.text
    assert 'data-variant="b"' in variant_b.text and "40 bottles, once" in variant_b.text
    assert control.headers["etag"] != variant_b.headers["etag"]
    # One copy per variant (and per encoding: the answer may be gzipped).
    assert {v.strip() for v in variant_b.headers["vary"].split(",")} == {"X-Dropline-Variant",
                                                                       "Accept-Encoding"}
    assert client.get(f"/drops/{slug}?v=b", headers={
        "If-None-Match": variant_b.headers["etag"]}).status_code == 304

"""The telemetry API: scoped, read-only, and the same figures as the pure functions."""

from __future__ import annotations

import pytest

from tests.builders import api_token, make_location, make_product
from tests.telemetry.support import Shop
from tests.web.support import assert_problem

AS_OF = "2026-06-01T00:00:00Z"


@pytest.fixture
def shop(db, clock) -> Shop:
    """c1 (instagram): 10000 on 5 Jan (2000 of it refunded on 25 Jan), 5000 on 20 Jan;
    c2 (google): 8000 on 31 Jan through a hub window, a subsidised 'limited-edition' drop;
    c3 (instagram): 5000 on 10 Apr."""
    make_location(db)
    _, variant_id = make_product(db, clock)
    shop = Shop(db, variant_id)
    c1 = shop.customer("c1@example.com", source="instagram")
    c2 = shop.customer("c2@example.com", source="google")
    c3 = shop.customer("c3@example.com", source="instagram")
    first = shop.order(c1, "2026-01-05", 10_000, refunded=2_000)
    shop.refund(first, "2026-01-25", 2_000)
    shop.order(c1, "2026-01-20", 5_000, family="refills")
    shop.order(c2, "2026-01-31", 8_000, family="eau-de-parfum", path="hub-window",
               tags={"drop_id": 4, "drop_type": "limited-edition", "delivery_subsidised": True})
    shop.order(c3, "2026-04-10", 5_000)
    return shop


@pytest.mark.parametrize("path", [
    "/cohorts", "/cohorts/curves", "/ltv", "/decisions/cac-ceilings",
    "/decisions/delivery-subsidy", "/decisions/cash-forecast?unit_cost=100"])
def test_every_telemetry_endpoint_needs_a_token_with_the_telemetry_scope(client, db, clock,
                                                                          path):
    url = f"/api/v1/admin/telemetry{path}"
    anonymous = client.get(url)
    wrong_scope = client.get(url, headers=api_token(db, clock, "orders:read"))

    assert_problem(anonymous, 401)
    problem = assert_problem(wrong_scope, 403)
    assert problem["scope"] == "telemetry:read"


def test_cohorts_by_source_over_the_api(client, db, clock, shop):
    response = client.get("/api/v1/admin/telemetry/cohorts",
                          params={"by": "source", "as_of": AS_OF},
                          headers=api_token(db, clock, "telemetry:read"))

    assert response.status_code == 200, response.text
    body = response.json()
    rows = [(c["period"], c["cut"]["source"], c["customers"], c["revenue_per_customer"],
             c["fully_observed"]) for c in body["cohorts"]]
    assert rows == [
        ("2026-01", "google", 1, {"30": 8_000, "60": 8_000, "90": 8_000}, True),
        ("2026-01", "instagram", 1, {"30": 13_000, "60": 13_000, "90": 13_000}, True),
        ("2026-04", "instagram", 1, {"30": 5_000, "60": None, "90": None}, False),
    ]
    assert body["cohorts"][2]["note"].startswith("not yet 90 days old")
    assert body["notes"] == ["1 of 3 cohorts are not yet 90 days old (2026-04): their later "
                             "windows are withheld, not zero"]


def test_cac_ceilings_use_drop_tags_from_order_events_and_fall_back_to_the_family(
        client, db, clock, shop):
    response = client.get("/api/v1/admin/telemetry/decisions/cac-ceilings",
                          params={"gross_margin": 0.5, "target_ratio": 2, "as_of": AS_OF},
                          headers=api_token(db, clock, "*"))

    assert response.status_code == 200, response.text
    ceilings = {c["drop_type"]: (c["basis"], c["ltv_90"], c["ceiling"], c["pending"])
                for c in response.json()["ceilings"]}
    assert ceilings == {"candles": ("product family", 13_000, 3_250, 1),
                        "limited-edition": ("drop tag", 8_000, 2_000, 0)}


def test_delivery_subsidy_reads_the_flag_from_order_events(client, db, clock, shop):
    response = client.get("/api/v1/admin/telemetry/decisions/delivery-subsidy",
                          params={"as_of": AS_OF, "cost_per_subsidy": 395},
                          headers=api_token(db, clock, "telemetry:read"))

    assert response.status_code == 200, response.text
    body = response.json()
    # c2 is the only subsidised customer and nobody else shares January + hub window
    assert (body["recommend"], body["unmatched_subsidised"], body["subsidised"]) == (False, 1, 0)


def test_ltv_and_curves_answer_with_notes_and_a_cut(client, db, clock, shop):
    headers = api_token(db, clock, "telemetry:read")

    ltv = client.get("/api/v1/admin/telemetry/ltv",
                     params={"by": "fulfilment", "as_of": AS_OF}, headers=headers)
    curves = client.get("/api/v1/admin/telemetry/cohorts/curves",
                        params={"as_of": AS_OF, "steps": 3}, headers=headers)

    assert ltv.status_code == 200, ltv.text
    body = ltv.json()
    assert body["customers"] == 3 and body["repeaters"] == 1
    assert [(c["cut"], c["customers"]) for c in body["cuts"]] == [
        ({"fulfilment": "central"}, 2), ({"fulfilment": "hub-window"}, 1)]
    assert curves.status_code == 200
    assert [r["values"] for r in curves.json()["revenue"]] == [
        [10_500.0, 10_500.0, 10_500.0], [5_000.0, None, None]]


@pytest.mark.parametrize("params", [{"by": "colour"}, {"period": "year"},
                                    {"as_of": "2026-06-01T00:00:00"}])
def test_bad_parameters_are_422_problems(client, db, clock, params):
    response = client.get("/api/v1/admin/telemetry/cohorts", params=params,
                          headers=api_token(db, clock, "telemetry:read"))

    assert_problem(response, 422)


def test_cash_forecast_takes_demand_from_the_shop(client, db, clock, shop):
    response = client.get("/api/v1/admin/telemetry/decisions/cash-forecast",
                          params={"unit_cost": 1_000, "unit_price": 4_000,
                                  "lead_time_weeks": 2, "as_of": "2026-01-22T00:00:00Z"},
                          headers=api_token(db, clock, "telemetry:read"))

    assert response.status_code == 200, response.text
    body = response.json()
    # 4-week windows before 22 Jan: 2025-10-30.., 2025-11-27.., 2025-12-25..2026-01-22: 0, 0, 2
    assert body["inputs"]["past_sell_through"] == [0, 0, 2]
    assert body["units"] == 1 and body["weeks"][0]["starts"] == "2026-01-26"


@pytest.mark.parametrize("path, params", [
    ("/decisions/delivery-subsidy", {"confidence": "0.9999999999999999"}),  # 0.5 + c/2 == 1.0
    ("/decisions/delivery-subsidy", {"confidence": "0.5"}),
    ("/ltv", {"horizon_weeks": "2"}),  # shorter than one step of the value curve
    ("/ltv", {"horizon_weeks": "0.001"}),
])
def test_parameters_beyond_what_the_model_computes_are_422_not_500(client, db, clock, shop,
                                                                    path, params):
    response = client.get(f"/api/v1/admin/telemetry{path}", params={"as_of": AS_OF, **params},
                          headers=api_token(db, clock, "telemetry:read"))

    assert_problem(response, 422)


@pytest.mark.parametrize("path, params", [
    ("/decisions/delivery-subsidy", {"confidence": "0.999999"}),
    ("/ltv", {"horizon_weeks": "4"}),
    ("/ltv", {"horizon_weeks": "4.5"}),
])
def test_the_bounds_themselves_are_computed(client, db, clock, shop, path, params):
    response = client.get(f"/api/v1/admin/telemetry{path}", params={"as_of": AS_OF, **params},
                          headers=api_token(db, clock, "telemetry:read"))

    assert response.status_code == 200, response.text

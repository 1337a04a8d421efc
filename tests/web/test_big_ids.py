"""Ids on forms and page paths are bounded as on the API (``dropline.schemas.IdForm`` /
``IdPath``): an integer of 2^63 or more is refused with 422, never a text/plain 500 from the
database driver's overflow. A browser gets a page naming the field (``web.problems``); a
script that asks for JSON gets the problem."""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute

from tests.builders import sign_in_console, sign_up
from tests.web.support import assert_problem

BIG = str(2**63)

# Every page route that takes an id, and the form it posts (signed in as customer and console).
CASES = [
    ("POST", "/cart/lines", {"variant_id": BIG, "quantity": "1"}, "variant_id"),
    ("GET", f"/orders/{BIG}", None, "order_id"),
    ("GET", f"/orders/{BIG}/return", None, "order_id"),
    ("POST", f"/orders/{BIG}/return", {"order_line_id": "1", "reason": "damaged"}, "order_id"),
    ("POST", "/orders/1/return", {"order_line_id": BIG, "reason": "damaged"}, "order_line_id"),
    ("POST", f"/membership/polls/{BIG}/vote", {"option": "0"}, "poll_id"),
    ("POST", f"/admin/risk/cases/{BIG}/decision", {"decision": "approve"}, "case_id"),
    ("POST", "/drops/1/buy", {"variant_id": BIG, "quantity": "1"}, "variant_id"),
    ("POST", "/drops/1/waitlist", {"variant_id": BIG, "key": "k"}, "variant_id"),
    ("POST", f"/admin/counter/main/sales/{BIG}/signup-link", None, "order_id"),
]


@pytest.mark.parametrize("method, path, form, field", CASES)
def test_an_id_beyond_64_bits_is_a_422_page_naming_the_field(client, db, clock, method, path,
                                                             form, field):
    sign_up(client)
    sign_in_console(client, db, clock)

    response = client.request(method, path, data=form, follow_redirects=False,
                              headers={"accept": "text/html"})

    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert f"{field}: Input should be less than or equal to" in response.text


@pytest.mark.parametrize("method, path, form, field", CASES)
def test_an_id_beyond_64_bits_is_a_422_problem_for_a_script(client, db, clock, method, path,
                                                            form, field):
    sign_up(client)
    sign_in_console(client, db, clock)

    response = client.request(method, path, data=form, follow_redirects=False,
                              headers={"accept": "application/json"})

    problem = assert_problem(response, 422)
    assert problem["type"].endswith("/validation-failed")
    assert field in [err["loc"][-1] for err in problem["errors"]]


@pytest.mark.parametrize("path, form, message", [
    ("/orders/1/return", {"reason": "damaged"}, "order_line_id: Field required"),
    ("/cart/lines", {"quantity": "1"}, "variant_id: Field required"),
    ("/membership/polls/1/vote", {}, "option: Field required"),
])
def test_a_form_missing_a_field_gets_a_page_naming_it(client, db, clock, path, form, message):
    sign_up(client)

    response = client.post(path, data=form, follow_redirects=False,
                           headers={"accept": "text/html"})

    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert message in response.text
    assert "Go back" in response.text


def _routes(routes):
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # an included router, kept unflattened
            yield from _routes(route.original_router.routes)
        elif hasattr(route, "routes"):
            yield from _routes(route.routes)


def test_every_integer_a_route_reads_from_path_query_or_form_is_bounded(client):
    unbounded = []
    for route in _routes(client.app.router.routes):
        dependant = route.dependant
        for param in (*dependant.path_params, *dependant.query_params, *dependant.body_params):
            info = param.field_info
            if info.annotation is int and not any(
                    getattr(m, "le", None) is not None or getattr(m, "lt", None) is not None
                    for m in info.metadata):
                unbounded.append((route.path, param.name))

    assert unbounded == []

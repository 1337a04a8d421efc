"""Ids on forms and page paths are bounded as on the API (``dropline.schemas.IdForm`` /
``IdPath``): an integer of 2^63 or more is a 422 problem, never a text/plain 500 from the
database driver's overflow."""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute

from tests.builders import sign_in_console, sign_up
from tests.web.support import assert_problem

BIG = str(2**63)

# Every page route that takes an id, and the form it posts (signed in as customer and console).
CASES = [
    ("POST", "/cart/lines", {"variant_id": BIG, "quantity": "1"}),
    ("GET", f"/orders/{BIG}", None),
    ("GET", f"/orders/{BIG}/return", None),
    ("POST", f"/orders/{BIG}/return", {"order_line_id": "1", "reason": "damaged"}),
    ("POST", "/orders/1/return", {"order_line_id": BIG, "reason": "damaged"}),
    ("POST", f"/membership/polls/{BIG}/vote", {"option": "0"}),
    ("POST", f"/admin/risk/cases/{BIG}/decision", {"decision": "approve"}),
    ("POST", "/drops/1/buy", {"variant_id": BIG, "quantity": "1"}),
    ("POST", "/drops/1/waitlist", {"variant_id": BIG, "key": "k"}),
    ("POST", f"/admin/counter/main/sales/{BIG}/signup-link", None),
]


@pytest.mark.parametrize("method, path, form", CASES)
def test_an_id_beyond_64_bits_is_a_422_problem(client, db, clock, method, path, form):
    sign_up(client)
    sign_in_console(client, db, clock)

    response = client.request(method, path, data=form, follow_redirects=False)

    problem = assert_problem(response, 422)
    assert problem["type"].endswith("/validation-failed")


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

"""Staff members of each role, signed in to the console (builders for the console tests)."""

from __future__ import annotations

import uuid

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from dropline.admin.roles import Role
from dropline.admin.service import create_admin_user
from dropline.clock import Clock
from dropline.db import Database
from dropline.web.admin import console_scope_of
from tests.builders import CONSOLE_PASSWORD
from tests.web.support import browser_session

# The console's sign-in pages: open to anyone (they are how one signs in).
SIGN_IN_PATHS = frozenset({"/admin/login", "/admin/login/code", "/admin/logout",
                           "/admin/forgot-password", "/admin/reset-password"})


def make_staff(db: Database, clock: Clock, role: Role | str, *, email: str | None = None
               ) -> tuple[int, str]:
    """A staff member of ``role``; returns (id, email)."""
    email = email or f"{role}-{uuid.uuid4().hex[:8]}@brand.example"
    with db.transaction() as session:
        user = create_admin_user(session, clock=clock, email=email, password=CONSOLE_PASSWORD)
        user.role = Role(role).value
        return user.id, user.email


def sign_in_as(client: TestClient, db: Database, clock: Clock, role: Role | str) -> int:
    """Creates a staff member of ``role`` and signs the client in as them; returns their id."""
    user_id, email = make_staff(db, clock, role)
    client.cookies.clear()
    browser_session(client)
    response = client.post("/admin/login", data={"email": email, "password": CONSOLE_PASSWORD},
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    return user_id


def _routes(routes, prefix: str = ""):
    """(full path, route): this FastAPI keeps included routers unflattened, each with the
    prefix it was included under."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route
        elif hasattr(route, "original_router"):
            yield from _routes(route.original_router.routes,
                               prefix + route.include_context.prefix)
        elif hasattr(route, "routes"):
            yield from _routes(route.routes, prefix)


def declared_scope(route: APIRoute) -> tuple[bool, str | None]:
    """(declared, scope) of a route: the ``staff_with`` dependency among its dependencies."""
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        declared, scope = console_scope_of(dep.call)
        if declared:
            return True, scope
        stack.extend(dep.dependencies)
    return False, None


def console_routes(app) -> list[tuple[str, str, APIRoute]]:
    """(method, path, route) of every console page and form, read from the app's router."""
    out = []
    for path, route in _routes(app.router.routes):
        if path.startswith("/admin") and path not in SIGN_IN_PATHS:
            out.extend((method, path, route) for method in sorted(route.methods))
    return sorted(out, key=lambda r: (r[1], r[0]))

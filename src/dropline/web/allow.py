"""The ``Allow`` header of a 405: every method some route serves at the path. Starlette lists
only the methods of the first route whose path matched, so a path served by two routes (``GET``
and ``POST /api/v1/admin/tokens``) would advertise one of them."""

from __future__ import annotations

from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Scope

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(app: ASGIApp, scope: Scope) -> list[str]:
    """Empty when no route serves the path (a mount, such as the static files, which matches
    every method, answers its own 405)."""
    routes = [route for route in getattr(getattr(app, "router", None), "routes", ())
              if not isinstance(route, Mount)]
    return [method for method in METHODS
            if any(route.matches({**scope, "method": method})[0] is Match.FULL
                   for route in routes)]

"""Staff roles: each a named permission set over ``admin.service.SCOPES`` (pure data).

A staff member holds one role; the console's pages and forms (``web.admin.staff_with``), the
navigation and the API tokens the member issues (capped at use by ``capped_scopes``) all read
the same set. ``owner`` holds ``*`` (every scope, present and future)."""

from __future__ import annotations

import enum
from collections.abc import Iterable

from dropline.admin.service import ALL_SCOPES, SCOPES
from dropline.errors import InvalidInput

__all__ = ["ROLE_LABELS", "ROLE_SCOPES", "Role", "capped_scopes", "parse_role", "scopes_of"]


class Role(enum.StrEnum):
    owner = "owner"
    manager = "manager"
    packer = "packer"
    counter = "counter"  # counter staff at a pop-up
    analyst = "analyst"


ROLE_LABELS = {Role.owner: "Owner", Role.manager: "Manager", Role.packer: "Packer",
               Role.counter: "Counter staff", Role.analyst: "Analyst"}

_READS = frozenset({"orders:read", "customers:read", "events:read", "drops:read",
                    "fulfilment:read", "memberships:read", "telemetry:read", "planning:read",
                    "audit:read", "mail:read", "popups:read", "guides:read", "catalog:read"})

ROLE_SCOPES: dict[Role, frozenset[str]] = {
    Role.owner: frozenset({ALL_SCOPES}),
    # Runs the shop day to day: everything but the staff list (and so roles) and erasure.
    Role.manager: frozenset(SCOPES) - {"staff:manage", "customers:erase"},
    # Picks, packs and ships; reads orders to find them.
    Role.packer: frozenset({"orders:read", "orders:fulfil", "fulfilment:read", "guides:read"}),
    # Sells at a pop-up counter and looks customers up there.
    Role.counter: frozenset({"popups:sell", "popups:read", "orders:read", "customers:read",
                             "guides:read"}),
    # Reads everything that is not personal data in bulk; changes nothing.
    Role.analyst: _READS - {"customers:read"},
}


def scopes_of(role: Role | str) -> frozenset[str]:
    return ROLE_SCOPES[Role(role)]


def parse_role(value: str) -> Role:
    try:
        return Role(value.strip().lower().replace(" ", "-").replace("counter-staff", "counter"))
    except ValueError:
        raise InvalidInput(f"unknown role {value!r}; one of {', '.join(r.value for r in Role)}",
                           field="role") from None


def capped_scopes(token_scopes: Iterable[str], *, role: Role | str) -> tuple[str, ...]:
    """What a staff member's API token may do today: its own scopes, within the member's
    current role (a role lowered after the token was issued lowers the token too)."""
    held = scopes_of(role)
    if ALL_SCOPES in held:
        return tuple(token_scopes)
    if ALL_SCOPES in token_scopes:
        return tuple(sorted(held))
    return tuple(s for s in token_scopes if s in held)

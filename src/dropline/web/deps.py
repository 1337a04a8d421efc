"""FastAPI dependencies: the app's services, the unit of work, and who is calling."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from dropline.admin.models import AdminUser
from dropline.admin.roles import capped_scopes
from dropline.admin.service import ALL_SCOPES, resolve_token
from dropline.audit import set_actor
from dropline.clock import Clock
from dropline.config import Settings
from dropline.customers.service import customer_for_session
from dropline.db import Database
from dropline.errors import NotAuthenticated, PermissionDenied
from dropline.schemas import CARD_DATA_KEYS, TOKENISE_HINT
from dropline.services import Services


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_db(services: ServicesDep) -> Database:
    return services.db


def get_clock(services: ServicesDep) -> Clock:
    return services.clock


def get_settings(services: ServicesDep) -> Settings:
    return services.settings


DatabaseDep = Annotated[Database, Depends(get_db)]
ClockDep = Annotated[Clock, Depends(get_clock)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def unit_of_work(services: ServicesDep) -> Iterator[Session]:
    """One transaction per request, committed once the endpoint returns and *before* the
    response is sent (scope="function"), so a client never sees success for an uncommitted
    change. Domain errors roll back."""
    with services.db.transaction() as session:
        yield session
    for hook in services.after_commit:
        hook()


SessionDep = Annotated[Session, Depends(unit_of_work, scope="function")]


@dataclass(frozen=True)
class Principal:
    kind: Literal["customer", "token"]
    id: int
    email: str = ""
    scopes: tuple[str, ...] = ()
    # A token issued by (or for) a staff member: its scopes are capped by their role.
    staff_id: int | None = None

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.id}"


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def optional_customer(request: Request, services: ServicesDep) -> Principal | None:
    """Resolved in its own short transaction, and handed on as a plain value, so no
    transaction stays open while a flow talks to the payment provider."""
    token = request.cookies.get(services.settings.web.session_cookie_name)
    if not token or len(token) > 200:
        return None
    with services.db.transaction() as session:
        customer = customer_for_session(session, clock=services.clock, token=token,
                                        idle_days=services.settings.web.session_idle_days)
        if customer is None:
            return None
        set_actor(f"customer:{customer.id}")  # the audit trail's actor (audit.actor)
        return Principal(kind="customer", id=customer.id, email=customer.email)


OptionalCustomer = Annotated[Principal | None, Depends(optional_customer)]


def require_customer(principal: OptionalCustomer) -> Principal:
    if principal is None:
        raise NotAuthenticated("sign in first (POST /api/v1/sessions)")
    return principal


CustomerDep = Annotated[Principal, Depends(require_customer)]
_AUTHENTICATIONS: set[Callable[..., object]] = {require_customer}


def is_authentication(call: Callable[..., object]) -> bool:
    """True for a dependency that refuses a caller without credentials (401) or without the
    right (403): the API's documentation lists those answers for the operations using it."""
    return call in _AUTHENTICATIONS


def require_scope(scope: str) -> Callable[..., Principal]:
    def dependency(request: Request, services: ServicesDep) -> Principal:
        secret = _bearer(request)
        if secret is None:
            raise NotAuthenticated("send an API token: 'Authorization: Bearer dl_...'")
        with services.db.transaction() as session:
            token = resolve_token(session, clock=services.clock, secret=secret[:200])
            if token is None:
                raise NotAuthenticated("the API token is unknown, revoked or expired")
            scopes = tuple(token.scopes)
            if token.admin_user_id is not None:
                # A staff member's token never does more than their role allows today.
                owner = session.get(AdminUser, token.admin_user_id)
                if owner is None or owner.deactivated_at is not None:
                    raise NotAuthenticated("the API token is unknown, revoked or expired")
                scopes = capped_scopes(scopes, role=owner.role)
            if not (ALL_SCOPES in scopes or scope in scopes):
                raise PermissionDenied(f"this token lacks the {scope!r} scope", scope=scope)
            token.last_used_at = services.clock.now()
            set_actor(f"token:{token.id}")  # the audit trail's actor (audit.actor)
            return Principal(kind="token", id=token.id, scopes=scopes,
                             staff_id=token.admin_user_id)

    dependency.__name__ = f"require_{scope.replace(':', '_')}"
    _AUTHENTICATIONS.add(dependency)
    return dependency


def admin(scope: str) -> object:
    """``Depends`` on a token holding ``scope``, for use as ``Annotated[Principal, admin(...)]``."""
    return Depends(require_scope(scope))


@dataclass(frozen=True)
class PaymentForm:
    """A page form's payment: the provider's reference (filled by the provider's script in the
    page), or why there is none. A page refuses the form with ``refusal`` (422) before it reads
    anything else, so nothing is changed, stored or logged."""

    reference: str
    refusal: str | None = None
    # No reference and no card: a form sent without JavaScript, which the page may send on to
    # the provider's hosted card page (``web.payment_page.hosted_card_entry``).
    missing: bool = False


async def _payment_form(request: Request) -> PaymentForm:
    form = await request.form()  # parsed once per request: FastAPI's own Form fields share it
    if any(key.lower() in CARD_DATA_KEYS for key in form):
        return PaymentForm("", TOKENISE_HINT)
    reference = form.get("payment_method")
    if not isinstance(reference, str) or not PAYMENT_REF.fullmatch(reference):
        return PaymentForm("", "the card was not tokenised: paying by card needs JavaScript in "
                               "this page (the card goes to the payment provider, never to "
                               "the shop)", missing=not reference)
    return PaymentForm(reference)


PAYMENT_REF = re.compile(r"[A-Za-z0-9_]{3,100}")
PaymentFormDep = Annotated[PaymentForm, Depends(_payment_form)]

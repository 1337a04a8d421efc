"""Throttles on the requests an attacker repeats (issue 20): password guessing on every sign-in
(the storefront's, the member portal's and the console's forms, and ``POST /api/v1/sessions``)
and on password change (the current password, counted as sign-in attempts of that customer),
console codes (TOTP or recovery, per staff account), sign-up, password-reset emails (per
account and per IP, an hour), and checkout, with a cool-down after repeated declines (card
testing).

One app-wide dependency (``throttle_sensitive_posts``) counts each attempt against the limits of
``settings.throttle``, per account (the email sent, or the signed-in customer) and per client
IP, in the app's one rate limiter (``services.limiter``: in process, or Redis). Over a limit it
answers 429 with ``Retry-After``: problem+json for the API, a page with the message for forms
(``web.csrf.Refused``).

Card testing: the checkout endpoints call ``record_decline`` when a card is declined, counted
per customer, per client IP and per card (the provider's fingerprint, so one stolen card tried
from many accounts is caught too). Once one of them has had ``declines_per_*`` declines within
``decline_window_seconds``, checkout refuses (429 with ``Retry-After``) until that window ends:
for the customer and the IP before the request is read, for the card as soon as the endpoint
knows it (``refuse_cooling_card``). Reaching a limit also opens a review alert in the console's
risk page (``risk.card_testing``). The card-collecting endpoints are counted per IP
(``card_tokens_per_ip_per_minute``): the local provider's tokenising endpoint (its answers tell a
valid card number from an invalid one) and, on Stripe, ``/pay/stripe/setup-intents`` (each call
is a SetupIntent at Stripe, which a card tester would confirm card after card).
"""

from __future__ import annotations

import hashlib
import json

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from dropline.errors import RateLimited
from dropline.ratelimit import RateLimiter
from dropline.risk import card_testing
from dropline.risk.models import DeclineAlertKind
from dropline.config import ThrottleSettings
from dropline.services import Services
from dropline.web.admin import pending_staff_id
from dropline.web.csrf import FORM_TYPES, Refused
from dropline.web.deps import optional_customer

__all__ = ["CHECKOUT_PATHS", "CODE_PATHS", "PASSWORD_CHANGE_PATHS", "RESET_PATHS",
           "SIGN_IN_PATHS", "SIGN_UP_PATHS", "STAFF_PASSWORD_PATHS", "TOKENISE_PATHS",
           "record_decline", "refuse_cooling_card", "throttle_sensitive_posts"]

SIGN_IN_PATHS = frozenset({"/sign-in", "/membership/sign-in", "/admin/login", "/api/v1/sessions"})
PASSWORD_CHANGE_PATHS = frozenset({"/account/password", "/api/v1/me/password"})
CODE_PATHS = frozenset({"/admin/login/code"})
SIGN_UP_PATHS = frozenset({"/sign-up", "/api/v1/customers"})
RESET_PATHS = frozenset({"/forgot-password", "/api/v1/password-resets",
                         "/admin/forgot-password"})
STAFF_PASSWORD_PATHS = frozenset({"/admin/security/password"})
CHECKOUT_PATHS = frozenset({"/checkout", "/api/v1/checkout"})
TOKENISE_PATHS = frozenset({"/pay/local/tokens", "/pay/stripe/setup-intents"})
_THROTTLED = (SIGN_IN_PATHS | PASSWORD_CHANGE_PATHS | CODE_PATHS | SIGN_UP_PATHS | RESET_PATHS
              | CHECKOUT_PATHS | TOKENISE_PATHS | STAFF_PASSWORD_PATHS)
MINUTE = 60
HOUR = 3600


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _account_key(email: str) -> str:
    """An account's counter, named by a digest so no address is stored in the limiter."""
    raw = email.strip().lower().encode("utf-8", "surrogatepass")  # any string a client sends
    return hashlib.sha256(raw).hexdigest()[:32]


async def _email_of(request: Request) -> str:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in FORM_TYPES:
        value = (await request.form()).get("email")
        return value if isinstance(value, str) else ""
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        return ""
    value = body.get("email") if isinstance(body, dict) else None
    return value if isinstance(value, str) else ""


def _too_many(retry_after: int, what: str) -> Refused:
    return Refused(429, f"Too many {what}. Try again in {retry_after} seconds.",
                   slug="rate-limited", title="Too many requests",
                   headers={"Retry-After": str(retry_after)})


def _count(limiter: RateLimiter, counters: list[tuple[str, int, int]], what: str) -> None:
    for key, limit, window in counters:
        retry_after = limiter.hit(key, limit=limit, window_seconds=window)
        if retry_after is not None:
            raise _too_many(retry_after, what)


async def throttle_sensitive_posts(request: Request) -> None:
    path = request.url.path
    if request.method != "POST" or path not in _THROTTLED:
        return
    services: Services = request.app.state.services
    limits, limiter, ip = services.settings.throttle, services.limiter, client_ip(request)
    if path in SIGN_IN_PATHS:
        email = await _email_of(request)
        _count(limiter, [(f"signin:ip:{ip}", limits.sign_in_per_ip_per_minute, MINUTE),
                         (f"signin:acct:{_account_key(email)}",
                          limits.sign_in_per_account_per_minute, MINUTE)], "sign-in attempts")
    elif path in SIGN_UP_PATHS:
        _count(limiter, [(f"signup:ip:{ip}", limits.sign_up_per_ip_per_minute, MINUTE)],
               "sign-ups")
    elif path in RESET_PATHS:
        email = await _email_of(request)
        _count(limiter, [(f"reset:ip:{ip}", limits.password_reset_per_ip_per_hour, HOUR),
                         (f"reset:acct:{_account_key(email)}",
                          limits.password_reset_per_account_per_hour, HOUR)],
               "password-reset requests")
    elif path in TOKENISE_PATHS:
        _count(limiter, [(f"tokenise:ip:{ip}", limits.card_tokens_per_ip_per_minute, MINUTE)],
               "cards")
    elif path in STAFF_PASSWORD_PATHS:
        # A staff member's current password, guessed from a signed-in console session: the
        # sign-in counters of the client's IP (the page answers only a full console session).
        _count(limiter, [(f"signin:ip:{ip}", limits.sign_in_per_ip_per_minute, MINUTE)],
               "password attempts")
    elif path in PASSWORD_CHANGE_PATHS:
        customer = await run_in_threadpool(optional_customer, request, services)
        if customer is None:
            return  # the endpoint asks for a sign-in
        # The current password is guessed here as on a sign-in form: the same counters.
        _count(limiter, [(f"signin:ip:{ip}", limits.sign_in_per_ip_per_minute, MINUTE),
                         (f"signin:acct:{_account_key(customer.email)}",
                          limits.sign_in_per_account_per_minute, MINUTE)], "password attempts")
    elif path in CODE_PATHS:
        staff_id = await run_in_threadpool(pending_staff_id, request, services)
        if staff_id is None:
            return  # the endpoint sends the browser back to the password form
        _count(limiter, [(f"code:staff:{staff_id}", limits.second_factor_per_account,
                          limits.second_factor_window_seconds),
                         (f"signin:ip:{ip}", limits.sign_in_per_ip_per_minute, MINUTE)],
               "code attempts")
    else:
        customer = await run_in_threadpool(optional_customer, request, services)
        if customer is None:
            return  # the endpoint asks for a sign-in
        for key, limit in (_decline_counter(limits, DeclineAlertKind.customer, str(customer.id)),
                           _decline_counter(limits, DeclineAlertKind.ip, ip)):
            retry_after = limiter.peek(key, limit=limit,
                                       window_seconds=limits.decline_window_seconds)
            if retry_after is not None:
                raise _too_many(retry_after, "declined payments")
        _count(limiter, [(f"checkout:c:{customer.id}",
                          limits.checkout_per_customer_per_minute, MINUTE),
                         (f"checkout:ip:{ip}", limits.checkout_per_ip_per_minute, MINUTE)],
               "checkout attempts")


_DECLINE_KEY = {DeclineAlertKind.customer: "c", DeclineAlertKind.ip: "ip",
                DeclineAlertKind.card: "card"}
COOLING_CARD = "Too many declined payments with this card. Try again in {} seconds."


def _decline_counter(limits: ThrottleSettings, kind: DeclineAlertKind, subject: str
                     ) -> tuple[str, int]:
    limit = {DeclineAlertKind.customer: limits.declines_per_customer,
             DeclineAlertKind.ip: limits.declines_per_ip,
             DeclineAlertKind.card: limits.declines_per_card}[kind]
    return f"declines:{_DECLINE_KEY[kind]}:{subject}", limit


def refuse_cooling_card(services: Services, fingerprint: str) -> None:
    """Raises ``RateLimited`` (429, ``Retry-After``) while the card cools down after
    ``declines_per_card`` declines; a card the provider gives no fingerprint is not counted."""
    if not fingerprint:
        return
    limits = services.settings.throttle
    key, limit = _decline_counter(limits, DeclineAlertKind.card, fingerprint)
    retry_after = services.limiter.peek(key, limit=limit,
                                        window_seconds=limits.decline_window_seconds)
    if retry_after is not None:
        raise RateLimited(COOLING_CARD.format(retry_after), retry_after=retry_after)


def record_decline(services: Services, request: Request, customer_id: int,
                   fingerprint: str = "") -> None:
    """A checkout's card was declined: counted towards the customer's, the IP's and the card's
    cool-down. The decline that reaches a limit opens (or adds to) a review alert."""
    limits, limiter = services.settings.throttle, services.limiter
    window = limits.decline_window_seconds
    subjects = [(DeclineAlertKind.customer, str(customer_id)),
                (DeclineAlertKind.ip, client_ip(request))]
    if fingerprint:
        subjects.append((DeclineAlertKind.card, fingerprint))
    reached = []
    for kind, subject in subjects:
        key, limit = _decline_counter(limits, kind, subject)
        before = limiter.peek(key, limit=limit, window_seconds=window)
        limiter.hit(key, limit=limit, window_seconds=window)
        if before is None and limiter.peek(key, limit=limit, window_seconds=window) is not None:
            reached.append((kind, subject, limit))
    if reached:
        with services.db.transaction() as session:
            for kind, subject, limit in reached:
                card_testing.raise_alert(session, clock=services.clock, kind=kind,
                                         subject=subject, customer_id=customer_id,
                                         declines=limit, window_seconds=window)

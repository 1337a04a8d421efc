"""The member portal: server-rendered pages whose every action is a plain HTML form (no
JavaScript needed). Each POST calls the same service or flow as the JSON API, then redirects
back to the portal (303) with a one-line message. Refusals re-render the portal with the
reason and the error's status code."""

from __future__ import annotations

import hashlib
import uuid
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dropline.customers.service import authenticate_customer, start_session
from dropline.errors import DomainError, InvalidInput, NotAuthenticated, NotFound
from dropline.media.models import MediaOwner
from dropline.media.views import image_views
from dropline.memberships import flows, onboarding, polls, reports, segments, service
from dropline.memberships.api import config_of, recurring
from dropline.memberships.models import MembershipPaymentMethod
from dropline.memberships.onboarding_pages import router as onboarding_router
from dropline.memberships.rules import PERK_STATUSES
from dropline.payments.provider import BankRedirect, CardToken
from dropline.schemas import IdPath
from dropline.catalog.service import slugify
from dropline.media.models import MediaOwner
from dropline.media.pages import add_image_forms, image_rows
from dropline.memberships.rules import Interval, MemberPriceKind, SubsidyKind
from dropline.web.admin import AdminPageUser, AdminViewer, staff_with
from dropline.web.admin import AdminViewer, staff_with
from dropline.web.admin import render as render_console
from dropline.web.deps import (
    OptionalCustomer,
    PaymentForm,
    PaymentFormDep,
    Principal,
    ServicesDep,
)
from dropline.web.forms import (
    FormError,
    done,
    from_domain,
    parse_amount,
    parse_choice,
    parse_int,
)
from dropline.web.navigation import NavItem
from dropline.web.payment_page import hosted_card_entry, ready_card, shop_base_url
from dropline.web.templating import templates

router = APIRouter(include_in_schema=False)
router.include_router(onboarding_router)  # the console's onboarding page
MESSAGES = {
    "joined": "Welcome in: your membership has started.",
    "changed": "Your tier has changed.",
    "paused": "Your membership is paused; nothing will be charged until you resume.",
    "resumed": "Welcome back: your membership is running again.",
    "cancelled": "Your membership will end at the end of this period.",
    "kept": "Your membership will carry on.",
    "card": "Your card is updated.",
    "waitlist": "You are on the waitlist; we will email you when a spot opens.",
    "voted": "Thank you: your vote is in.",
    "renewed": "Thank you: your bank confirmed the payment and your membership is renewed.",
}
Short = Annotated[str, Form(max_length=200)]
Key = Annotated[str, Form(max_length=64)]


def _portal(request: Request, services: ServicesDep, customer: Principal | None, *,
            message: str = "", error: str = "", status_code: int = 200,
            card: CardToken | None = None, card_for: str = "") -> HTMLResponse:
    """``card``: a card back from the provider's hosted card page, shown ready in the form
    ``card_for`` names (``join-<tier id>`` or ``card``)."""
    clock = services.clock
    with services.db.transaction() as session:
        tiers = service.list_tiers(session)
        art = image_views(session, MediaOwner.tier, [t.id for t in tiers],
                          base_url=services.settings.media.public_url)
        context: dict[str, Any] = {
            "shop_name": services.settings.shop.name, "customer": customer,
            "tier_art": {tier: images[0] for tier, images in art.items() if images},
            "tiers": tiers, "spots_left": service.spots_left, "message": message,
            "error": error, "form_key": uuid.uuid4().hex, "membership": None,
            "ready": card, "ready_for": card_for if card is not None else "",
        }
        if customer is not None:
            membership = service.live_membership(session, customer_id=customer.id)
            context["membership"] = membership
            if membership is not None:
                context.update(
                    tier=service.get_tier(session, membership.tier_id),
                    card=session.get(MembershipPaymentMethod, membership.payment_method_id or 0),
                    has_perks=membership.status in PERK_STATUSES,
                    polls=polls.open_polls_for(session, clock=clock, customer_id=customer.id),
                    steps=onboarding.progress(session, membership=membership))
    return templates.TemplateResponse(request, "membership.html", context,
                                      status_code=status_code)


def _done(what: str) -> RedirectResponse:
    return RedirectResponse(f"/membership?done={what}", status_code=303)


def _act(request: Request, services: ServicesDep, customer: Principal | None,
         action: Any, done: str) -> Response:
    """Run one portal action; a refusal re-renders the portal with its reason."""
    if customer is None:
        return RedirectResponse("/membership/sign-in", status_code=303)
    try:
        action(customer)
    except DomainError as exc:
        return _portal(request, services, customer, error=exc.detail, status_code=exc.status)
    for hook in services.after_commit:
        hook()
    return _done(done)


def _signup_reference(customer_id: int, key: str) -> str:
    return "portal-" + hashlib.sha256(f"{customer_id}:{key}".encode()).hexdigest()[:48]


def _card(services: ServicesDep, payment: PaymentForm) -> CardToken:
    """The card the page's form names by reference; a form without one (or still posting the
    card itself) is refused before anything is done."""
    if payment.refusal is not None:
        raise InvalidInput(payment.refusal, field="payment_method")
    return services.payments.describe_card(payment.reference)


@router.get("/membership", response_class=HTMLResponse)
def portal(request: Request, services: ServicesDep, customer: OptionalCustomer,
           done: Annotated[str, Query(max_length=20)] = "",
           join: Annotated[int, Query(ge=0, le=2**53)] = 0,
           card: Annotated[int, Query(ge=0, le=1)] = 0,
           payment_method: Annotated[str, Query(max_length=100)] = "") -> HTMLResponse:
    """``payment_method`` with ``join`` (a tier id) or ``card=1``: the return from the
    provider's hosted card page, the card shown ready in that form."""
    if customer is None or not payment_method:
        return _portal(request, services, customer, message=MESSAGES.get(done, ""))
    return _portal(request, services, customer, message=MESSAGES.get(done, ""),
                   card=ready_card(services, payment_method),
                   card_for=f"join-{join}" if join else "card" if card else "")


@router.get("/membership/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request, services: ServicesDep) -> HTMLResponse:
    return templates.TemplateResponse(request, "member_sign_in.html",
                                      {"shop_name": services.settings.shop.name, "error": ""})


@router.post("/membership/sign-in")
def sign_in(request: Request, services: ServicesDep, email: Short, password: Short) -> Response:
    try:
        with services.db.transaction() as session:
            customer = authenticate_customer(session, email=email, password=password)
            token = start_session(session, clock=services.clock, customer=customer,
                                  days=services.settings.web.session_days)
    except NotAuthenticated as exc:
        return templates.TemplateResponse(
            request, "member_sign_in.html",
            {"shop_name": services.settings.shop.name, "error": exc.detail}, status_code=401)
    response = RedirectResponse("/membership", status_code=303)
    response.set_cookie(services.settings.web.session_cookie_name, token,
                        max_age=services.settings.web.session_days * 86400, httponly=True,
                        samesite="lax", secure=services.settings.web.cookie_secure, path="/")
    return response


@router.post("/membership/join")
def join(request: Request, services: ServicesDep, customer: OptionalCustomer,
         tier_id: Annotated[int, Form(ge=1, le=2**53)], key: Key,
         payment: PaymentFormDep) -> Response:
    if customer is not None and payment.missing:  # sent without JavaScript: no card yet
        hosted = hosted_card_entry(request, services, path=f"/membership?join={tier_id}",
                                   form={}, customer_id=customer.id)
        if hosted is not None:
            return hosted

    def action(who: Principal) -> None:
        # The form's key makes a double-submitted form one sign-up.
        flows.subscribe(services.db, clock=services.clock, config=config_of(services),
                        provider=recurring(services),
                        request=flows.SubscribeRequest(
                            who.id, tier_id, _card(services, payment),
                            _signup_reference(who.id, key)))

    return _act(request, services, customer, action, "joined")


@router.get("/membership/change", response_class=HTMLResponse)
def change_page(request: Request, services: ServicesDep, customer: OptionalCustomer,
                tier_id: Annotated[int, Query(ge=1, le=2**53)]) -> Response:
    if customer is None:
        return RedirectResponse("/membership/sign-in", status_code=303)
    try:
        with services.db.transaction() as session:
            plan = service.plan_change(session, clock=services.clock, customer_id=customer.id,
                                       new_tier_id=tier_id)
            context = {"shop_name": services.settings.shop.name, "plan": plan,
                       "form_key": uuid.uuid4().hex}
    except DomainError as exc:
        return _portal(request, services, customer, error=exc.detail, status_code=exc.status)
    return templates.TemplateResponse(request, "member_change.html", context)


@router.post("/membership/change")
def change(request: Request, services: ServicesDep, customer: OptionalCustomer,
           tier_id: Annotated[int, Form(ge=1, le=2**53)]) -> Response:
    return _act(request, services, customer, lambda who: flows.change_tier(
        services.db, clock=services.clock, config=config_of(services),
        provider=recurring(services), customer_id=who.id, new_tier_id=tier_id), "changed")


def _in_session(services: ServicesDep, use_case: Any) -> Any:
    def action(who: Principal) -> None:
        with services.db.transaction() as session:
            use_case(session, clock=services.clock, customer_id=who.id)
    return action


@router.post("/membership/pause")
def pause(request: Request, services: ServicesDep, customer: OptionalCustomer) -> Response:
    return _act(request, services, customer, _in_session(services, service.pause), "paused")


@router.post("/membership/resume")
def resume(request: Request, services: ServicesDep, customer: OptionalCustomer) -> Response:
    return _act(request, services, customer, _in_session(services, service.resume), "resumed")


@router.post("/membership/cancel")
def cancel(request: Request, services: ServicesDep, customer: OptionalCustomer) -> Response:
    return _act(request, services, customer, _in_session(services, service.cancel), "cancelled")


@router.post("/membership/keep")
def keep(request: Request, services: ServicesDep, customer: OptionalCustomer) -> Response:
    return _act(request, services, customer, _in_session(services, service.keep), "kept")


@router.post("/membership/card")
def card(request: Request, services: ServicesDep, customer: OptionalCustomer,
         payment: PaymentFormDep) -> Response:
    if customer is not None and payment.missing:  # sent without JavaScript: no card yet
        hosted = hosted_card_entry(request, services, path="/membership?card=1", form={},
                                   customer_id=customer.id)
        if hosted is not None:
            return hosted
    return _act(request, services, customer, lambda who: flows.update_payment_method(
        services.db, clock=services.clock, config=config_of(services),
        provider=recurring(services), customer_id=who.id,
        card=_card(services, payment)), "card")


class HeldPayments(Protocol):
    def authentication_secret(self, reference: str) -> tuple[str, str]: ...


@router.get("/membership/charges/{charge_id}/authenticate", response_class=HTMLResponse)
def authenticate_page(request: Request, services: ServicesDep, customer: OptionalCustomer,
                      charge_id: IdPath) -> Response:
    """The dunning notice's link: a renewal the member's bank held off-session
    (``authentication_required``) is confirmed here with the provider's script (the bank's
    challenge shows in the page), then settled on return by what the provider says."""
    if customer is None:
        return RedirectResponse("/membership/sign-in", status_code=303)
    held: HeldPayments | None = services.payments if hasattr(  # type: ignore[assignment]
        services.payments, "authentication_secret") else None
    try:
        with services.db.transaction() as session:
            charge = flows.held_charge(session, customer_id=customer.id, charge_id=charge_id)
            reference, amount, currency = charge.provider_ref, charge.amount, charge.currency
        if held is None:
            raise NotFound("this payment is not waiting for you to confirm it")
        secret, method = held.authentication_secret(reference or "")
    except DomainError as exc:
        return _portal(request, services, customer, error=exc.detail, status_code=exc.status)
    return templates.TemplateResponse(request, "member_authenticate.html", {
        "shop_name": services.settings.shop.name, "amount": amount, "currency": currency,
        "confirm": {"client_secret": secret, "payment_method": method,
                    "return_to": f"/membership/charges/{charge_id}/return",
                    "bank_action": f"/membership/charges/{charge_id}/bank-authentication"}})


@router.post("/membership/charges/{charge_id}/bank-authentication")
def bank_authentication(request: Request, services: ServicesDep, customer: OptionalCustomer,
                        charge_id: IdPath) -> Response:
    """The authenticate page's button (no JavaScript, or the local provider): the bank's own
    page for the held charge (``BankRedirect``), which comes back to the charge's return."""
    if customer is None:
        return RedirectResponse("/membership/sign-in", status_code=303)
    back = f"/membership/charges/{charge_id}/return"
    try:
        with services.db.transaction() as session:
            reference = flows.held_charge(session, customer_id=customer.id,
                                          charge_id=charge_id).provider_ref or ""
    except DomainError as exc:
        return _portal(request, services, customer, error=exc.detail, status_code=exc.status)
    bank: BankRedirect = services.payments  # type: ignore[assignment]
    url = bank.authentication_redirect(
        reference, return_url=f"{shop_base_url(request, services)}{back}")
    return RedirectResponse(url or back, status_code=303)


@router.get("/membership/charges/{charge_id}/return")
def authenticated(request: Request, services: ServicesDep, customer: OptionalCustomer,
                  charge_id: IdPath) -> Response:
    if customer is None:
        return RedirectResponse("/membership/sign-in", status_code=303)
    try:
        outcome = flows.settle_authenticated(
            services.db, clock=services.clock, config=config_of(services),
            provider=services.payments, customer_id=customer.id, charge_id=charge_id)
    except DomainError as exc:
        return _portal(request, services, customer, error=exc.detail, status_code=exc.status)
    if outcome == "paid":
        for hook in services.after_commit:
            hook()
        return _done("renewed")
    return _portal(request, services, customer, status_code=409 if outcome == "undecided"
                   else 200, error="your bank has not confirmed the payment; open the link "
                   "in the email again to retry" if outcome == "undecided" else "",
                   message="" if outcome == "undecided" else "Nothing is waiting for you.")


@router.post("/membership/waitlist")
def waitlist(request: Request, services: ServicesDep, customer: OptionalCustomer,
             tier_id: Annotated[int, Form(ge=1, le=2**53)]) -> Response:
    def action(who: Principal) -> None:
        with services.db.transaction() as session:
            service.join_waitlist(session, clock=services.clock, tier_id=tier_id,
                                  customer_id=who.id)

    return _act(request, services, customer, action, "waitlist")


@router.post("/membership/polls/{poll_id}/vote")
def vote(request: Request, services: ServicesDep, customer: OptionalCustomer, poll_id: IdPath,
         option: Annotated[int, Form(ge=0, le=19)]) -> Response:
    def action(who: Principal) -> None:
        with services.db.transaction() as session:
            polls.vote(session, clock=services.clock, poll_id=poll_id, customer_id=who.id,
                       option_index=option)

    return _act(request, services, customer, action, "voted")


# ------------------------------------------------------------------ the brand's cohort map


TIERS_PATH = "/admin/memberships/tiers"
NAV_ITEMS = (NavItem("Members", "/admin/memberships/cohort-map", "memberships:read"),
             NavItem("Tiers", TIERS_PATH, scope="memberships:manage"))


@router.get("/admin/memberships/cohort-map", response_class=HTMLResponse)
def cohort_map_page(request: Request, services: ServicesDep,
                    viewer: Annotated[AdminViewer, staff_with("memberships:read")]
                    ) -> HTMLResponse:
    """The membership cohort map: segments by join month, a console page."""
    with services.db.transaction() as session:
        cells = reports.membership_cohort_map(session, now=services.clock.now())
        rules = segments.get_rules(session).as_dict()
    return render_console(request, "cohort_map.html", viewer, cells=cells,
                          rules=rules)


# ------------------------------------------------------------------ the console's tiers

TierManager = Annotated[AdminViewer, staff_with("memberships:manage")]
Text = Annotated[str, Form(max_length=1000)]
TIER_OPTIONS = {
    "interval_options": [(i.value, i.value) for i in Interval],
    "member_price_options": [(MemberPriceKind.none.value, "no member price"),
                             (MemberPriceKind.percent.value, "percent off"),
                             (MemberPriceKind.fixed.value, "amount off each unit")],
    "subsidy_options": [(SubsidyKind.none.value, "none"),
                        (SubsidyKind.free.value, "free local delivery"),
                        (SubsidyKind.discount.value, "amount off local delivery")],
}


@router.get(TIERS_PATH, response_class=HTMLResponse)
def tiers_page(request: Request, viewer: TierManager, services: ServicesDep,
               done_: Annotated[str, Query(alias="done", max_length=200)] = ""
               ) -> HTMLResponse:
    with services.db.transaction() as session:
        tiers = service.list_tiers(session, include_inactive=True)
    return render_console(request, "tiers.html", viewer, tiers=tiers, message=done_)


def _tier_form(request: Request, viewer: AdminViewer, services: Any, *,
               values: dict[str, str], error: FormError | None = None) -> HTMLResponse:
    return render_console(request, "tier_new.html", viewer,
                          status_code=error.status if error else 200, values=values,
                          currency=services.settings.shop.currency, **TIER_OPTIONS,
                          **(error.context() if error else {}))


@router.get(TIERS_PATH + "/new", response_class=HTMLResponse)
def new_tier_form(request: Request, viewer: TierManager, services: ServicesDep) -> HTMLResponse:
    return _tier_form(request, viewer, services, values={
        "interval": "monthly", "member_price_kind": "none", "delivery_subsidy_kind": "none",
        "trial_days": "0", "early_access_minutes": "0"})


@router.post(TIERS_PATH + "/new", response_class=HTMLResponse)
def create_tier(request: Request, viewer: TierManager, services: ServicesDep,
                name: Text = "", slug: Text = "", description: Text = "",
                interval: Text = "", price: Text = "", cap: Text = "", trial_days: Text = "0",
                member_price_kind: Text = "none", member_price_value: Text = "",
                early_access_minutes: Text = "0", delivery_subsidy_kind: Text = "none",
                delivery_subsidy_amount: Text = "") -> Response:
    values = {"name": name, "slug": slug, "description": description, "interval": interval,
              "price": price, "cap": cap, "trial_days": trial_days,
              "member_price_kind": member_price_kind, "member_price_value": member_price_value,
              "early_access_minutes": early_access_minutes,
              "delivery_subsidy_kind": delivery_subsidy_kind,
              "delivery_subsidy_amount": delivery_subsidy_amount}
    try:
        if not name.strip():
            raise FormError("a tier needs a name", field="name")
        price_kind = parse_choice(member_price_kind, MemberPriceKind, "member_price_kind")
        subsidy = parse_choice(delivery_subsidy_kind, SubsidyKind, "delivery_subsidy_kind")
        spec = service.TierSpec(
            slug=slugify(slug or name)[:64], name=name.strip()[:120],
            interval=parse_choice(interval, Interval, "interval"),
            price_amount=parse_amount(price, "price"),
            currency=services.settings.shop.currency, description=description.strip(),
            cap=parse_int(cap, "cap", low=0, high=10_000_000) if cap.strip() else None,
            trial_days=parse_int(trial_days or "0", "trial_days", low=0, high=365),
            member_price_kind=price_kind,
            member_price_value=0 if price_kind is MemberPriceKind.none else (
                parse_int(member_price_value, "member_price_value", low=1, high=100)
                if price_kind is MemberPriceKind.percent
                else parse_amount(member_price_value, "member_price_value")),
            early_access_minutes=parse_int(early_access_minutes or "0",
                                           "early_access_minutes", low=0, high=10_080),
            delivery_subsidy_kind=subsidy,
            delivery_subsidy_amount=parse_amount(delivery_subsidy_amount,
                                                 "delivery_subsidy_amount")
            if subsidy is SubsidyKind.discount else 0)
        with services.db.transaction() as session:
            try:
                tier = service.create_tier(session, clock=services.clock, spec=spec)
            except DomainError as exc:
                raise from_domain(exc, fields={"price_amount": "price"}) from None
            tier_id = tier.id
    except FormError as error:
        return _tier_form(request, viewer, services, values=values, error=error)
    return done(f"{TIERS_PATH}/{tier_id}", "Tier created. Add its picture below.")


def _tier_page(request: Request, viewer: AdminViewer, services: Any, tier_id: int, *,
               error: FormError | None = None, values: dict[str, str] | None = None,
               message: str = "") -> HTMLResponse:
    with services.db.transaction() as session:
        tier = service.get_tier(session, tier_id)
        images = image_rows(session, services, MediaOwner.tier, tier_id)
    return render_console(request, "tier.html", viewer,
                          status_code=error.status if error else 200, tier=tier,
                          images=images, values=values or {}, message=message,
                          **(error.context() if error else {}))


@router.get(TIERS_PATH + "/{tier_id}", response_class=HTMLResponse)
def tier_page(request: Request, tier_id: IdPath, viewer: TierManager, services: ServicesDep,
              done_: Annotated[str, Query(alias="done", max_length=200)] = ""
              ) -> HTMLResponse:
    return _tier_page(request, viewer, services, tier_id, message=done_)


def _tier_with_error(request: Request, viewer: AdminViewer, services: Any, owner_id: int,
                     error: FormError, values: dict[str, str]) -> Response:
    return _tier_page(request, viewer, services, owner_id, error=error, values=values)


def _tier_name(session: Any, tier_id: int) -> str:
    return service.get_tier(session, tier_id).name


add_image_forms(router, path=TIERS_PATH + "/{owner_id}", back=TIERS_PATH + "/{owner_id}",
                kind=MediaOwner.tier, page=_tier_with_error, title=_tier_name)

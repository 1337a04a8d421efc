"""Mail pages.

Storefront (no JavaScript needed):

* ``GET /unsubscribe/{token}``: what the link in a marketing mail opens; a button confirms
  (a GET changes nothing: mail scanners follow links).
* ``POST /unsubscribe/{token}``: the unsubscribe itself, and RFC 8058's one-click endpoint
  (the mail's ``List-Unsubscribe-Post`` header): a mail system posts
  ``List-Unsubscribe=One-Click`` here with no cookie. It is exempt from the form token by
  design (``web.csrf.TOKEN_AUTHENTICATED_FORM_TARGETS``): the signed, single-use token in the
  path is the authentication, and a forged request cannot know it.
* ``POST /account/marketing``: opt back in (or out) from the account page; a cookie-
  authenticated form, so it carries the CSRF form token like every other.

Console: every template rendered with made-up data (the HTML in a sandboxed frame served by
its own route with a strict Content-Security-Policy, and the text version), and the outbox
with its statuses and attempts. The composition root includes the router and registers
``NAV_ITEMS``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dropline.errors import DomainError, NotFound
from dropline.notifications import service
from dropline.notifications.models import MailStatus
from dropline.notifications.render import TEMPLATES, RenderedMail, render_mail
from dropline.notifications.rules import MARKETING, SUBJECTS
from dropline.web.admin import AdminViewer, render, staff_with
from dropline.web.caching import private_response
from dropline.web.deps import OptionalCustomer, ServicesDep, SessionDep
from dropline.web.navigation import NavItem
from dropline.web.templating import templates

__all__ = ["NAV_ITEMS", "router"]

PATH = "/admin/mail"
NAV_ITEMS = (NavItem("Mail", PATH, "mail:read"),)
MailReader = Annotated[AdminViewer, staff_with("mail:read")]
router = APIRouter(include_in_schema=False)

# The preview frame's own policy: no script, no network, no form; inline styles (mail has
# only those) and images; framed by the console only. With the frame's ``sandbox`` attribute
# the mail's HTML runs with no rights at all.
PREVIEW_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data: https:; "
               "form-action 'none'; base-uri 'none'; frame-ancestors 'self'; sandbox")


def _page(request: Request, services: ServicesDep, name: str, *, status_code: int = 200,
          **context: object) -> HTMLResponse:
    response = templates.TemplateResponse(request, name, {
        "shop_name": services.settings.shop.name, **context}, status_code=status_code)
    private_response(response)
    return response


@router.get("/unsubscribe/{token}")
def unsubscribe_page(request: Request, token: str, services: ServicesDep) -> Response:
    """The page the link opens: the button, or why the link cannot be used (nothing is
    changed by a GET)."""
    try:
        with services.db.transaction() as session:
            service.unsubscribe_mail(session, token=token[:200],
                                     secret_key=services.settings.web.secret_key)
    except DomainError as exc:
        return _page(request, services, "unsubscribe.html", token="", done=False,
                     error=exc.detail, status_code=exc.status)
    return _page(request, services, "unsubscribe.html", token=token[:200], done=False,
                 error="")


@router.post("/unsubscribe/{token}")
def unsubscribe(request: Request, token: str, services: ServicesDep) -> Response:
    try:
        with services.db.transaction() as session:
            service.unsubscribe(session, clock=services.clock, token=token[:200],
                                secret_key=services.settings.web.secret_key)
    except DomainError as exc:
        return _page(request, services, "unsubscribe.html", token=token[:200], done=False,
                     error=exc.detail, status_code=exc.status)
    return _page(request, services, "unsubscribe.html", token="", done=True, error="")


@router.post("/account/marketing")
def set_marketing(request: Request, services: ServicesDep, customer: OptionalCustomer,
                  choice: Annotated[str, Form(max_length=10)] = "") -> Response:
    if customer is None:
        return RedirectResponse("/sign-in?next=/account", status_code=303)
    if choice not in ("in", "out"):
        return _page(request, services, "refused.html", status_code=422,
                     title="Choose yes or no", message="Choose whether you want news of drops.",
                     back="/account")
    with services.db.transaction() as session:
        if choice == "in":
            service.opt_in_to_marketing(session, customer_id=customer.id)
        else:
            service.opt_out_of_marketing(session, clock=services.clock, customer_id=customer.id)
    return RedirectResponse("/account#mail-h", status_code=303)


# --------------------------------------------------------------------------------- console


def _preview(name: str, services: ServicesDep) -> RenderedMail:
    if name not in TEMPLATES:
        raise NotFound(f"no mail template {name!r}")
    return render_mail(name, service.sample_context(
        name, shop_name=services.settings.shop.name,
        public_url=services.settings.web.mail_base_url()))


@router.get(PATH)
def mail_templates(request: Request, viewer: MailReader, services: ServicesDep,
                   session: SessionDep) -> HTMLResponse:
    previews = [{"name": name, "subject": mail.subject, "text": mail.text,
                 "marketing": name in MARKETING}
                for name in SUBJECTS for mail in [_preview(name, services)]]
    return render(request, "mail_templates.html", viewer, previews=previews,
                  counts=service.outbox_counts(session))


@router.get(PATH + "/templates/{name}.html")
def mail_template_html(name: str, _: MailReader, services: ServicesDep) -> Response:
    """One template's HTML alone, for the console's preview frame."""
    response = HTMLResponse(_preview(name[:40], services).html)
    response.headers["Content-Security-Policy"] = PREVIEW_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers["Cache-Control"] = "private, no-store"
    return response


@router.get(PATH + "/outbox")
def mail_outbox(request: Request, viewer: MailReader, session: SessionDep,
                status: Annotated[MailStatus | None, Query()] = None) -> HTMLResponse:
    return render(request, "mail_outbox.html", viewer, status=status,
                  statuses=list(MailStatus), counts=service.outbox_counts(session),
                  items=service.list_outbox(session, status=status, limit=200))

"""The one Jinja2 environment of the HTTP floor, with its filters and globals, used by every
page module: the storefront's (``web.pages``, ``web.shop`` ...) and each domain's ``pages``.

Its loader reaches ``web/templates`` and each domain's ``templates`` directory, listed once
here (``DOMAIN_TEMPLATE_DIRS``); template names are unique across them (a domain's console
pages extend ``admin/base.html``, its storefront pages ``base.html``)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from dropline.catalog.models import ConditionGrade
from dropline.catalog.rules import GRADE_LABELS
from dropline.config import ThemeSettings
from dropline.money import format_money
from dropline.popups.listings import product_jsonld
from dropline.web.formtoken import csrf_field
from dropline.web.payment_page import payment_page, payment_scripts

__all__ = ["DOMAIN_TEMPLATE_DIRS", "TEMPLATE_DIR", "jsonld_script", "local_time", "money",
           "render_html", "templates", "use_theme"]

TEMPLATE_DIR = Path(__file__).parent / "templates"
_PACKAGE = Path(__file__).resolve().parents[1]
DOMAIN_TEMPLATE_DIRS = [_PACKAGE / domain / "templates" for domain in (
    "admin", "catalog", "console", "customers", "discounts", "fulfilment", "memberships",
    "orders", "planning", "popups", "risk", "telemetry")]
# The notifications domain's page templates; its mail templates beside them have their own
# environment (``notifications.render``).
DOMAIN_TEMPLATE_DIRS.append(_PACKAGE / "notifications" / "templates" / "pages")
SHOP_TIMEZONE = ZoneInfo("Europe/London")  # times on pages are the shop's local time

templates = Jinja2Templates(directory=[TEMPLATE_DIR, *DOMAIN_TEMPLATE_DIRS])


money = format_money  # the templates' filter name


def local_time(value: datetime, fmt: str = "%a %d %b %H:%M") -> str:
    """An aware time in the shop's timezone, formatted (``{{ at | local("%H:%M") }}``)."""
    return value.astimezone(SHOP_TIMEZONE).strftime(fmt)


def jsonld_script(data: Any) -> Markup:
    """A JSON-LD block safe inside HTML: ``<``, ``>`` and ``&`` escaped as JSON unicode."""
    raw = (json.dumps(data, ensure_ascii=False, separators=(",", ":"))
           .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))
    return Markup(f'<script type="application/ld+json">{raw}</script>')


templates.env.filters["money"] = money
templates.env.filters["local"] = local_time
templates.env.globals["grade_label"] = lambda g: GRADE_LABELS[ConditionGrade(g)]
templates.env.globals["jsonld_script"] = jsonld_script
templates.env.globals["csrf_field"] = csrf_field  # every post form's token (web.csrf)
templates.env.globals["payment_page"] = payment_page  # card fields: the provider's part
templates.env.globals["payment_scripts"] = payment_scripts
# The storefront's product template includes ``popups/product_jsonld.html``, which calls this.
templates.env.globals["product_jsonld"] = lambda product, base_url="", images=(): jsonld_script(
    product_jsonld(product, base_url=base_url, images=images))


def use_theme(theme: ThemeSettings) -> None:
    """The storefront's logo, colours and type for every page this process renders: one shop
    per process, so the composition (``create_app``) sets it once from ``settings.theme``."""
    templates.env.globals["theme"] = theme


use_theme(ThemeSettings())  # the defaults, for templates rendered outside an app


def render_html(name: str, **context: Any) -> str:
    """A page as a string, with no request: what public (cacheable) pages use, so nothing
    about the visitor can reach the bytes."""
    return templates.get_template(name).render(**context)

"""The ASGI application: ``create_app(settings)``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import Receive, Scope, Send

import dropline
from dropline.admin.api import router as admin_router
from dropline.admin.pages import NAV_ITEMS as staff_nav
from dropline.admin.pages import router as staff_pages_router
from dropline.bootstrap import build_services
from dropline.carts.api import router as carts_router
from dropline.catalog.api import router as catalog_router
from dropline.clock import Clock
from dropline.config import Settings
from dropline.catalog.pages import NAV_ITEMS as catalog_nav
from dropline.catalog.pages import router as catalog_pages_router
from dropline.console.drop_forms import router as drop_forms_router
from dropline.discounts.pages import NAV_ITEMS as discounts_nav
from dropline.discounts.pages import router as discounts_pages_router
from dropline.console.pages import NAV_ITEMS as console_nav
from dropline.console.pages import router as console_pages_router
from dropline.customers.api import router as customers_router
from dropline.customers.pages import NAV_ITEMS as customers_nav
from dropline.customers.pages import router as customers_pages_router
from dropline.db import Database
from dropline.discounts.api import router as discounts_router
from dropline.drops.api import router as drops_router
from dropline.drops.crowd.lane import LaneFastAPI
from dropline.drops.pages import router as drops_pages_router
from dropline.fulfilment.api import router as fulfilment_router
from dropline.invoices.api import router as invoices_router
from dropline.fulfilment.pages import router as fulfilment_pages_router
from dropline.media.api import files_router as media_files_router
from dropline.media.api import router as media_router
from dropline.memberships.api import router as memberships_router
from dropline.memberships.pages import NAV_ITEMS as memberships_nav
from dropline.memberships.pages import router as memberships_pages_router
from dropline.notifications.api import router as mail_router
from dropline.notifications.pages import NAV_ITEMS as mail_nav
from dropline.notifications.pages import router as mail_pages_router
from dropline.orders.api import router as orders_router
from dropline.orders.pages import NAV_ITEMS as orders_nav
from dropline.orders.pages import router as orders_pages_router
from dropline.payments.provider import PaymentProvider
from dropline.planning.api import router as planning_router
from dropline.planning.pages import NAV_ITEMS as planning_nav
from dropline.planning.pages import router as planning_pages_router
from dropline.popups.api import api_router as popups_api_router
from dropline.popups.api import feeds_router
from dropline.popups.pages import NAV_ITEMS as popups_nav
from dropline.popups.pages import router as popups_pages_router
from dropline.risk.api import router as risk_router
from dropline.risk.pages import NAV_ITEMS as risk_nav
from dropline.risk.pages import router as risk_pages_router
from dropline.telemetry.api import router as telemetry_router
from dropline.telemetry.pages import NAV_ITEMS as telemetry_nav
from dropline.telemetry.pages import router as telemetry_pages_router
from dropline.web.actor import ActorMiddleware
from dropline.web.admin import ADMIN_COOKIE, LoginRequired, login_redirect
from dropline.web.admin import router as admin_pages_router
from dropline.web.api_docs import install_api_docs
from dropline.web.caching import install as install_page_cache
from dropline.web.csrf import CsrfGuard, Refused, on_refused, require_form_token
from dropline.web.local_pay import router as local_pay_router
from dropline.web.metrics import install_metrics, start_metrics, stop_metrics
from dropline.web.request_ids import RequestIdMiddleware
from dropline.web.payment_confirm import router as payment_confirm_router
from dropline.web.templating import use_theme
from dropline.web.payment_page import router as stripe_pay_router
from dropline.web.navigation import OVERVIEW, Navigation
from dropline.web.pages import router as pages_router
from dropline.web.problem_docs import document_problems
from dropline.web.problems import install_problem_handlers
from dropline.web.provider_webhooks import router as provider_webhooks_router
from dropline.web.scheduler import BackgroundWorker
from dropline.web.security_headers import SecurityHeadersMiddleware, security_headers
from dropline.web.throttle import throttle_sensitive_posts
from dropline.webhooks.api import router as webhooks_router

STATIC_DIR = Path(__file__).parent / "static"

DESCRIPTION = """
Dropline's headless API. Amounts are **integer minor units** with an ISO 4217 currency; times
are UTC (ISO 8601). Errors are `application/problem+json` (RFC 9457).

* Customers sign in with `POST /api/v1/sessions` (a cookie session).
* Admin endpoints take a scoped API token: `Authorization: Bearer dl_...`
  (`dropline admin token --scope ...` issues one).
* Writes that move money take an `Idempotency-Key` header.
"""


class DroplineApp(LaneFastAPI):
    """The app with the CSRF guard (``web.csrf``) in front of everything. The drop lane's
    requests pass the guard's checks (``CsrfGuard.refusal_for``, as ``lane_guard``) and are
    answered before FastAPI's middleware stack would run; they skip only the guard's wrapper,
    whose one job past the checks is the form-token cookie of a rendered form."""

    csrf_guard: CsrfGuard | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Outermost, ahead of the lane and the guard: every answer carries its request's id
        # (the lane's and the guard's refusals too), and every line logged while it is served.
        self._entry = RequestIdMiddleware(self._dispatch)

    async def _unguarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        await FastAPI.__call__(self, scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._entry(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        if await self.serve_lane(scope, receive, send):
            return
        if self.csrf_guard is None:
            await self._unguarded(scope, receive, send)
        else:
            await self.csrf_guard(scope, receive, send)


def console_navigation() -> Navigation:
    """The console's side navigation: the overview, then each area's entries (the layout
    orders them by rank)."""
    return Navigation([OVERVIEW, *catalog_nav, *discounts_nav, *console_nav, *popups_nav,
                       *memberships_nav, *telemetry_nav, *planning_nav, *risk_nav, *mail_nav,
                       *staff_nav, *orders_nav, *customers_nav])


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    db: Database | None = None,
    payments: PaymentProvider | None = None,
    run_worker: bool | None = None,
) -> FastAPI:
    services = build_services(settings, clock=clock, db=db, payments=payments)
    settings, clock, db = services.settings, services.clock, services.db
    worker = BackgroundWorker(services)
    start_worker = settings.web.run_scheduler if run_worker is None else run_worker

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.web.threads
        if start_worker:
            services.after_commit.append(worker.kick)
            worker.start()
        start_metrics(app)
        yield
        stop_metrics(app)
        if start_worker:
            worker.stop()

    # FastAPI with the drop purchase lane in front (drops.crowd.lane): purchases skip the routing
    app = DroplineApp(
        title=f"Dropline API — {settings.shop.name}", version=dropline.__version__,
        description=DESCRIPTION, lifespan=lifespan, docs_url=None, redoc_url=None,
        # Every form post's token (web.csrf), then the sign-in / checkout throttles.
        dependencies=[Depends(require_form_token), Depends(throttle_sensitive_posts)],
    )
    # The guard's refusals and the lane's answers skip the middleware below: they carry the
    # same security headers, as raw pairs built once.
    guarded_headers = security_headers(https=settings.web.cookie_secure)
    app.csrf_guard = CsrfGuard(
        app._unguarded, session_cookies=(settings.web.session_cookie_name, ADMIN_COOKIE),
        shop_name=settings.shop.name, cookie_secure=settings.web.cookie_secure,
        cookie_days=settings.web.session_days, refusal_headers=guarded_headers)
    app.lane_guard = app.csrf_guard.refusal_for
    app.lane_headers = guarded_headers
    app.state.services = services
    app.state.worker = worker
    app.state.navigation = console_navigation()
    install_page_cache(app, services)
    use_theme(settings.theme)
    install_problem_handlers(app)
    document_problems(app)  # every operation's problem answers, in the OpenAPI document
    app.add_exception_handler(LoginRequired, login_redirect)  # type: ignore[arg-type]
    app.add_exception_handler(Refused, on_refused)  # type: ignore[arg-type]
    app.add_middleware(ActorMiddleware)  # who acts, for the audit trail (web.actor)
    # Text answers (pages, CSS, JS, JSON) compressed for browsers that ask; images and event
    # streams are left alone (Starlette's exclusions).
    app.add_middleware(GZipMiddleware, minimum_size=1000, compresslevel=6)
    install_metrics(app, services)  # /metrics, /livez, /readyz and the request timer
    app.add_middleware(SecurityHeadersMiddleware, https=settings.web.cookie_secure)
    install_api_docs(app, title=app.title)

    api = APIRouter(prefix="/api/v1")
    for router in (catalog_router, customers_router, carts_router, orders_router,
                   admin_router, webhooks_router, fulfilment_router, memberships_router,
                   drops_router, telemetry_router, risk_router, planning_router, media_router,
                   discounts_router, invoices_router,
                   mail_router):
        api.include_router(router)
    app.include_router(api)

    @app.get("/healthz", tags=["ops"], summary="Liveness and database check")
    def healthz() -> dict[str, str]:
        with db.transaction() as session:
            session.execute(text("SELECT 1"))
        return {"status": "ok", "version": dropline.__version__}

    app.include_router(pages_router)
    app.include_router(media_files_router)
    app.include_router(admin_pages_router)
    app.include_router(catalog_pages_router)
    app.include_router(drop_forms_router)  # before the console's /admin/drops/{drop_id}
    app.include_router(discounts_pages_router)
    app.include_router(staff_pages_router)
    app.include_router(orders_pages_router)
    app.include_router(customers_pages_router)
    app.include_router(drops_pages_router)
    app.include_router(fulfilment_pages_router)
    app.include_router(memberships_pages_router)
    app.include_router(telemetry_pages_router)
    app.include_router(planning_pages_router)
    app.include_router(risk_pages_router)
    app.include_router(mail_pages_router)
    app.include_router(popups_api_router)
    app.include_router(feeds_router)
    app.include_router(popups_pages_router)
    app.include_router(console_pages_router)  # last: a domain's own page wins its path
    if hasattr(services.payments, "tokenise_card"):  # the local provider's own endpoint
        app.include_router(local_pay_router)
    if hasattr(services.payments, "create_card_setup"):  # Stripe: a card set up in the page
        app.include_router(stripe_pay_router)
    if hasattr(services.payments, "authentication_redirect"):  # 3-D Secure at the bank's page
        app.include_router(payment_confirm_router)
    if hasattr(services.payments, "verify_event"):  # a provider reporting by webhooks
        app.include_router(provider_webhooks_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app

"""JSON endpoints: the public product index and local inventory feed, experiment
observations, and the admin pop-up and experiment API (scoped tokens: ``popups:read``,
``popups:write``, ``popups:sell``).

``api_router`` carries the ``/api/v1`` prefix itself and ``feeds_router`` serves
``/feeds/...``, so the app includes each with one line."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.responses import JSONResponse, PlainTextResponse

from dropline.errors import RateLimited
from dropline.idempotency.service import Claim
from dropline.payments.provider import TerminalReading
from dropline.popups import counter, discovery, experiments, listings, service
from dropline.popups.schemas import (
    ArmRead,
    CloseCreate,
    CloseRead,
    CounterSaleCreate,
    CountLineRead,
    ExperimentCreate,
    ExperimentRead,
    MovementRead,
    ObservationCreate,
    PopupCreate,
    PopupRead,
    RestockCreate,
    SaleRead,
    TransferCreate,
)
from dropline.schemas import IDEMPOTENCY_KEY_PATTERN
from dropline.web.caching import etag_matches
from dropline.web.deps import Principal, Services, ServicesDep, SessionDep, admin
from dropline.web.idempotency import run_idempotent
from dropline.web.throttle import client_ip

api_router = APIRouter(prefix="/api/v1")
feeds_router = APIRouter(tags=["local listings"])
PROBLEM = {"content": {"application/problem+json": {}}}
IdempotencyKey = Annotated[str, Header(
    alias="Idempotency-Key", max_length=255, pattern=IDEMPOTENCY_KEY_PATTERN,
    description="unique per sale, generated when the sale is rung up; resend it on retry")]
PUBLIC_CACHE = "public, max-age=300, s-maxage=300, stale-while-revalidate=3600"


# ------------------------------------------------------------------ public, cacheable


@api_router.get("/catalog/index.json", tags=["discovery"],
                summary="Compact product index for on-device search (cacheable)")
def catalog_index(request: Request, session: SessionDep) -> Response:
    """Everything the browser needs to search and find similar items locally: no query is
    ever sent here. Revalidate with ``If-None-Match``."""
    body = discovery.build_index(session)
    etag = discovery.index_etag(body)
    headers = {"ETag": etag, "Cache-Control": PUBLIC_CACHE}
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return JSONResponse(body, headers=headers)


def feed_cache(request: Request) -> listings.FeedCache:
    """One feed cache per app (created on first use), so two apps never share a feed."""
    cache = getattr(request.app.state, "popups_feed_cache", None)
    if cache is None:
        cache = request.app.state.popups_feed_cache = listings.FeedCache()
    return cache


def _feed_response(request: Request, session: SessionDep, fmt: str) -> Response:
    feed = feed_cache(request).get(
        session, media_url=request.app.state.services.settings.media.public_url)
    headers = {"ETag": feed.etag, "Cache-Control": PUBLIC_CACHE,
               "X-Stock-Version": feed.version}
    if etag_matches(request.headers.get("if-none-match"), feed.etag):
        return Response(status_code=304, headers=headers)
    if fmt == "tsv":
        return PlainTextResponse(listings.feed_tsv(feed.rows), headers=headers,
                                 media_type="text/tab-separated-values; charset=utf-8")
    return JSONResponse(listings.feed_json(feed.rows), headers=headers)


@feeds_router.get("/feeds/local-inventory.tsv", summary="Local inventory feed (TSV)",
                  response_class=PlainTextResponse, responses={200: {"content": {
                      "text/tab-separated-values": {"schema": {"type": "string"}}}}})
def local_inventory_tsv(request: Request, session: SessionDep) -> Response:
    """Google local inventory fields per store: store_code, id, availability, quantity, price.
    Rebuilt when the stock version moves; ETag is that version."""
    return _feed_response(request, session, "tsv")


@feeds_router.get("/feeds/local-inventory.json", summary="Local inventory feed (JSON)")
def local_inventory_json(request: Request, session: SessionDep) -> Response:
    return _feed_response(request, session, "json")


@api_router.post("/experiments/visitors", tags=["experiments"], status_code=201,
                 summary="A new visitor id for experiments (signed; throttled per client IP)")
def new_visitor(request: Request, services: ServicesDep) -> dict[str, str]:
    """The id a browser keeps (cookie ``dl_vid``) and sends with its observations: only ids
    issued here are counted, and each client IP gets a limited number per hour."""
    retry_after = services.limiter.hit(
        f"experiment-visitors:ip:{client_ip(request)}",
        limit=services.settings.throttle.experiment_visitors_per_ip_per_hour,
        window_seconds=3600)
    if retry_after is not None:
        raise RateLimited("too many visitor ids from this address; try again later",
                          retry_after=retry_after)
    return {"visitor": experiments.issue_visitor(secret=services.settings.web.secret_key)}


@api_router.post("/experiments/{slug}/observations", tags=["experiments"],
                 summary="Record an exposure or a conversion (counted once per visitor)")
def observe(slug: str, body: ObservationCreate, services: ServicesDep,
            session: SessionDep) -> dict[str, bool]:
    """``visitor`` is an id from ``POST /experiments/visitors`` and ``variant`` the one that
    id is assigned; anything else is refused (403, 422)."""
    recorded = experiments.record_observation(
        session, clock=services.clock, secret=services.settings.web.secret_key,
        slug=slug[:64], visitor_id=body.visitor, variant=body.variant, kind=body.kind)
    return {"recorded": recorded}


# ------------------------------------------------------------------ admin


def popup_read(row: service.PopupConversion) -> PopupRead:
    return PopupRead(code=row.code, name=row.name, status=row.status, opens_at=row.opens_at,
                     closes_at=row.closes_at, sales=row.sales, revenue_amount=row.revenue_amount,
                     buyers=row.buyers, members=row.members, conversion_rate=row.rate,
                     conversion_low=row.interval.low, conversion_high=row.interval.high)


@api_router.get("/admin/popups", response_model=list[PopupRead], tags=["admin", "popups"],
                summary="Pop-ups with sales and conversion to membership")
def popups(session: SessionDep, _: Annotated[Principal, admin("popups:read")],
           within_days: Annotated[int, Query(ge=1, le=365)] = service.CONVERSION_DAYS
           ) -> list[PopupRead]:
    return [popup_read(r) for r in service.conversion_report(session, within_days=within_days)]


@api_router.post("/admin/popups", status_code=status.HTTP_201_CREATED,
                 tags=["admin", "popups"], summary="Plan a pop-up",
                 responses={404: PROBLEM, 409: PROBLEM, 422: PROBLEM})
def create_popup(body: PopupCreate, services: ServicesDep, session: SessionDep,
                 _: Annotated[Principal, admin("popups:write")]) -> dict[str, object]:
    popup = service.create_popup(session, clock=services.clock, location_code=body.location,
                                 hub_code=body.hub, opens_at=body.opens_at,
                                 closes_at=body.closes_at)
    return {"id": popup.id, "code": body.location, "status": popup.status.value}


@api_router.post("/admin/popups/{code}/open", tags=["admin", "popups"], summary="Open",
                 responses={404: PROBLEM, 409: PROBLEM})
def open_popup(code: str, services: ServicesDep, session: SessionDep,
               _: Annotated[Principal, admin("popups:write")]) -> dict[str, str]:
    popup = service.open_popup(session, clock=services.clock, code=code[:32])
    return {"code": code, "status": popup.status.value}


def _movements(rows: list) -> list[MovementRead]:  # type: ignore[type-arg]
    return [MovementRead(id=m.id, kind=m.kind.value, variant_id=m.variant_id,
                         quantity=m.quantity, due_at=m.due_at) for m in rows]


@api_router.post("/admin/popups/{code}/transfers", response_model=list[MovementRead],
                 status_code=status.HTTP_201_CREATED, tags=["admin", "popups"],
                 summary="Transfer stock from the pop-up's hub",
                 responses={404: PROBLEM, 409: PROBLEM, 422: PROBLEM})
def transfer(code: str, body: TransferCreate, services: ServicesDep, session: SessionDep,
             _: Annotated[Principal, admin("popups:write")]) -> list[MovementRead]:
    return _movements(service.transfer_in(
        session, clock=services.clock, code=code[:32],
        quantities={li.variant_id: li.quantity for li in body.lines},
        lead_hours=body.lead_hours))


@api_router.post("/admin/popups/{code}/restocks", response_model=list[MovementRead],
                 status_code=status.HTTP_201_CREATED, tags=["admin", "popups"],
                 summary="Request a restock from a micro-factory (48 h by default)",
                 responses={404: PROBLEM, 409: PROBLEM, 422: PROBLEM})
def restock(code: str, body: RestockCreate, services: ServicesDep, session: SessionDep,
            _: Annotated[Principal, admin("popups:write")]) -> list[MovementRead]:
    return _movements(service.request_restock(
        session, clock=services.clock, code=code[:32], factory_code=body.factory,
        quantities={li.variant_id: li.quantity for li in body.lines},
        lead_hours=body.lead_hours))


def close_read(report: service.CloseReport) -> CloseRead:
    return CloseRead(popup=report.code, transferred_back=report.transferred_back,
                     variance_units=report.variance_units,
                     lines=[CountLineRead(variant_id=li.variant_id, sku=li.sku,
                                          expected=li.expected, counted=li.counted,
                                          variance=li.variance) for li in report.lines])


@api_router.post("/admin/popups/{code}/close", response_model=CloseRead,
                 tags=["admin", "popups"], summary="Close with a count and send stock back",
                 responses={404: PROBLEM, 409: PROBLEM, 422: PROBLEM})
def close(code: str, body: CloseCreate, services: ServicesDep, session: SessionDep,
          _: Annotated[Principal, admin("popups:write")]) -> CloseRead:
    return close_read(service.close_popup(
        session, clock=services.clock, code=code[:32],
        counted={c.variant_id: c.counted for c in body.counts}))


def sell_idempotent(services: Services, *, request: Request, principal: Principal, code: str,
                    key: str | None, body: CounterSaleCreate) -> JSONResponse:
    """One counter sale under the Idempotency-Key rules, shared by the token API and the
    counter page (whose outbox resends the key it generated when the sale was rung up)."""
    def operation(claim: Claim) -> tuple[int, SaleRead]:
        card = services.payments.describe_card(body.terminal.payment_method)
        order_id = counter.sell(services.db, clock=services.clock, settings=services.settings,
                                provider=services.payments,
                                request=counter.CounterSaleRequest(
                                    popup_code=code, email=body.email, name=body.name,
                                    lines=[(li.variant_id, li.quantity) for li in body.lines],
                                    reading=TerminalReading(body.terminal.terminal_id, card,
                                                            body.terminal.entry_mode),
                                    sale_reference=claim.reference, save_card=body.save_card,
                                    discount_code=body.discount_code))
        with services.db.transaction() as session:
            summary = counter.sale_summary(session, order_id=order_id)
        counter.send_after_commit(counter.receipt_email(
            summary, shop_name=services.settings.shop.name), services.mailer)
        return 201, sale_read(summary)

    return run_idempotent(services, request=request, principal=principal, key=key, body=body,
                          operation=operation)


def sale_read(summary: counter.SaleSummary) -> SaleRead:
    return SaleRead(order_id=summary.order_id, popup=summary.popup_code, email=summary.email,
                    customer_id=summary.customer_id, total_amount=summary.total_amount,
                    discount_code=summary.discount_code,
                    discount_amount=summary.discount_amount, tax_amount=summary.tax_amount,
                    tax_added_amount=summary.tax_added_amount,
                    currency=summary.currency, card_last4=summary.card_last4,
                    can_sign_up=summary.can_sign_up)


@api_router.post("/admin/popups/{code}/sales", response_model=SaleRead,
                 status_code=status.HTTP_201_CREATED, tags=["admin", "popups"],
                 summary="A counter sale, card present (idempotent)",
                 responses={402: PROBLEM, 409: PROBLEM, 422: PROBLEM, 503: PROBLEM})
def sell(code: str, body: CounterSaleCreate, request: Request, services: ServicesDep,
         principal: Annotated[Principal, admin("popups:sell")],
         idempotency_key: IdempotencyKey) -> JSONResponse:
    return sell_idempotent(services, request=request, principal=principal, code=code[:32],
                           key=idempotency_key, body=body)


@api_router.post("/admin/experiments", response_model=ExperimentRead,
                 status_code=status.HTTP_201_CREATED, tags=["admin", "experiments"],
                 summary="Start an A/B test on product or drop pages",
                 responses={409: PROBLEM, 422: PROBLEM})
def create_experiment(body: ExperimentCreate, services: ServicesDep, session: SessionDep,
                      _: Annotated[Principal, admin("popups:write")]) -> ExperimentRead:
    experiment = experiments.create_experiment(
        session, clock=services.clock, slug=body.slug, name=body.name,
        page_kind=body.page_kind, target=body.target,
        variants=[v.model_dump() for v in body.variants])
    return experiment_read(experiments.experiment_report(session, slug=experiment.slug))


@api_router.get("/admin/experiments/{slug}", response_model=ExperimentRead,
                tags=["admin", "experiments"], summary="Result with confidence intervals",
                responses={404: PROBLEM})
def experiment_result(slug: str, session: SessionDep,
                      _: Annotated[Principal, admin("popups:read")]) -> ExperimentRead:
    return experiment_read(experiments.experiment_report(session, slug=slug[:64]))


def experiment_read(report: experiments.ExperimentReport) -> ExperimentRead:
    return ExperimentRead(
        slug=report.slug, name=report.name, status=report.status, page_kind=report.page_kind,
        target=report.target,
        arms=[ArmRead(variant=a.variant, exposures=a.exposures, conversions=a.conversions,
                      rate=a.rate, low=a.interval.low, high=a.interval.high,
                      lift_low=a.lift.low if a.lift else None,
                      lift_high=a.lift.high if a.lift else None) for a in report.arms])

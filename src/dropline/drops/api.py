"""Drop endpoints: admin (scope ``drops:manage``) and shopper (a signed-in customer, rate
limited per identity and per IP)."""

from __future__ import annotations

import json
import threading
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, BackgroundTasks, Depends, Header, Query, Request, Response, status
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.config import DropsSettings
from dropline.drops import batched, flows, service, stories, waiting_room
from dropline.drops.crowd.counters import DropCounters
from dropline.drops.crowd.purchase import respond as engine_response
from dropline.drops.crowd.wiring import (
    early_access_for,
    forget_drop,
    gate_hold_closed,
    gate_hold_placed,
    hot_path,
    limiter_for,
)
from dropline.drops.crowd.wiring import prepare as prepare_gate
from dropline.drops.models import Drop
from dropline.drops.rules import drop_state
from dropline.drops.schemas import (
    AdmissionRead,
    DropCreate,
    DropRead,
    DropScheduleIn,
    DropStoryIn,
    DropStoryRead,
    DropVariantRead,
    HoldCheckout,
    HoldCreate,
    HoldRead,
    PurchaseCreate,
    QueueStatusRead,
    RestockIn,
    WaitlistJoin,
    WaitlistRead,
)
from dropline.drops.story import render_story
from dropline.errors import DomainError, InvalidState, PaymentDeclined, RateLimited
from dropline.idempotency.service import Claim
from dropline.orders.api import order_read
from dropline.orders.policy import DeliveryChoice
from dropline.planning.drop_report import drop_report
from dropline.ratelimit import RateLimiter, identity_key, ip_key
from dropline.schemas import IDEMPOTENCY_KEY_PATTERN, IdPath
from dropline.security import token_digest
from dropline.web.deps import (
    ClockDep,
    CustomerDep,
    Principal,
    Services,
    ServicesDep,
    SessionDep,
    admin,
    optional_customer,
    require_customer,
)
from dropline.web.idempotency import run_idempotent

router = APIRouter(tags=["drops"])
PROBLEM = {"content": {"application/problem+json": {}}}
IdempotencyKey = Annotated[str, Header(
    alias="Idempotency-Key", max_length=255, pattern=IDEMPOTENCY_KEY_PATTERN,
    description="unique per attempt (e.g. a UUID); resend the same key when retrying")]
Manager = Annotated[Principal, admin("drops:manage")]


# --- process-wide drop state on the app: the limiter and the early-access seam --------------


def _limiter(request: Request) -> tuple[RateLimiter, DropsSettings]:
    return limiter_for(request.app.state)


def early_access_of(request: Request) -> service.EarlyAccess:
    return early_access_for(request.app.state)


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def shopper(request: Request, customer: CustomerDep, services: ServicesDep) -> flows.Shopper:
    """The signed-in customer, their session binding, and one count against both limits."""
    limiter, limits = _limiter(request)
    for key, limit in ((identity_key(customer.id), limits.identity_per_minute),
                       (ip_key(client_ip(request)), limits.ip_per_minute)):
        retry_after = limiter.hit(key, limit=limit, window_seconds=60)
        if retry_after is not None:
            raise RateLimited("too many requests to drops; slow down", retry_after=retry_after)
    cookie = request.cookies.get(services.settings.web.session_cookie_name, "")
    return flows.Shopper(customer.id, token_digest(cookie[:200]))


ShopperDep = Annotated[flows.Shopper, Depends(shopper)]


def drop_read(session: Session, *, clock: Clock, drop: Drop) -> DropRead:
    variants = service.drop_variants(session, drop.id)
    left = sum(service.remaining_by_pool(session, drop.id).values())
    return DropRead(
        id=drop.id, slug=drop.slug, name=drop.name,
        state=drop_state(now=clock.now(), starts_at=drop.starts_at, ends_at=drop.ends_at,
                         early_access_minutes=drop.early_access_minutes, remaining=left),
        cap=service.cap_of(drop, variants), remaining=left,
        per_person_limit=drop.per_person_limit, starts_at=drop.starts_at, ends_at=drop.ends_at,
        early_access_minutes=drop.early_access_minutes,
        admission_per_minute=drop.admission_per_minute, queue_enabled=drop.queue_enabled,
        hold_ttl_seconds=drop.hold_ttl_seconds, offer_ttl_seconds=drop.offer_ttl_seconds,
        variants=[DropVariantRead.model_validate(v) for v in variants])


def _schedule(body: DropScheduleIn) -> service.DropSchedule:
    return service.DropSchedule(
        starts_at=body.starts_at, ends_at=body.ends_at,
        early_access_minutes=body.early_access_minutes,
        admission_per_minute=body.admission_per_minute, queue_enabled=body.queue_enabled,
        hold_ttl_seconds=body.hold_ttl_seconds, offer_ttl_seconds=body.offer_ttl_seconds)


# --- admin ----------------------------------------------------------------------------------


@router.post("/admin/drops", response_model=DropRead, status_code=status.HTTP_201_CREATED,
             tags=["admin"], summary="Create and schedule a drop",
             responses={404: PROBLEM, 409: PROBLEM, 422: PROBLEM})
def create_drop(body: DropCreate, session: SessionDep, clock: ClockDep,
                principal: Manager) -> DropRead:
    drop = service.create_drop(
        session, clock=clock, slug=body.slug, name=body.name,
        variants=[service.VariantCap(v.variant_id, v.cap) for v in body.variants],
        shared_cap=body.cap, per_person_limit=body.per_person_limit, schedule=_schedule(body),
        slots=body.slots, location_code=body.location_code, actor=principal.key)
    return drop_read(session, clock=clock, drop=drop)


@router.get("/admin/drops", response_model=list[DropRead], tags=["admin"], summary="All drops")
def list_drops(session: SessionDep, clock: ClockDep, _: Manager,
               limit: Annotated[int, Query(ge=1, le=500)] = 100,
               offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> list[DropRead]:
    return [drop_read(session, clock=clock, drop=d)
            for d in service.list_drops(session, limit=limit, offset=offset)]


@router.put("/admin/drops/{drop_id}/schedule", response_model=DropRead, tags=["admin"],
            summary="Reschedule a drop (times, early access, admission rate, queue)")
def reschedule(drop_id: IdPath, body: DropScheduleIn, session: SessionDep, clock: ClockDep,
               principal: Manager, request: Request, tasks: BackgroundTasks) -> DropRead:
    tasks.add_task(forget_drop, request.app.state, drop_id)  # after the commit
    drop = service.reschedule_drop(session, clock=clock, drop=service.get_drop(session, drop_id),
                                   schedule=_schedule(body), actor=principal.key)
    return drop_read(session, clock=clock, drop=drop)


@router.post("/admin/drops/{drop_id}/restock", response_model=DropRead, tags=["admin"],
             summary="Raise a cap; freed units go to the waitlist first")
def restock(drop_id: IdPath, body: RestockIn, session: SessionDep, clock: ClockDep,
            principal: Manager, request: Request, tasks: BackgroundTasks) -> DropRead:
    tasks.add_task(forget_drop, request.app.state, drop_id)  # after the commit
    drop = service.get_drop(session, drop_id)
    service.restock_drop(session, clock=clock, drop=drop, units=body.units,
                         variant_id=body.variant_id, actor=principal.key)
    return drop_read(session, clock=clock, drop=drop)


@router.get("/admin/drops/{drop_id}/report", tags=["admin"],
            summary="Post-drop report: sell-through, sell-out time, conversion, bot flags")
def report(drop_id: IdPath, session: SessionDep, clock: ClockDep, _: Manager) -> dict:
    return drop_report(session, clock=clock, drop=service.get_drop(session, drop_id)).as_dict()


# --- shoppers -------------------------------------------------------------------------------


# The shopper endpoints open their transaction inside the endpoint rather than through the
# generator dependency ``SessionDep``: under a flash crowd a generator dependency's exit
# (its commit) needs a second threadpool slot while it still holds its connection, and with
# every slot taken by requests waiting for a connection the process stalls until the pool
# times out. One thread, one connection, start to finish.


@router.get("/drops/{drop_id}", response_model=DropRead, summary="A drop, its state and units")
def get_drop(drop_id: IdPath, services: ServicesDep) -> DropRead:
    with services.db.transaction() as session:
        return drop_read(session, clock=services.clock,
                         drop=service.get_drop(session, drop_id))


def _queue_read(session: Session, *, request: Request, clock: Clock, drop: Drop,
                customer_id: int) -> QueueStatusRead:
    queue = waiting_room.queue_status(session, clock=clock, drop=drop, customer_id=customer_id,
                                 early_access=early_access_of(request))
    eta = max(0, int((queue.admitted_at - clock.now()).total_seconds() + 0.999))
    return QueueStatusRead(
        drop_id=drop.id, position=queue.position, opens_at=queue.opens_at,
        admitted_at=queue.admitted_at, admitted=queue.admitted, eta_seconds=eta,
        state=queue.state, poll_after_seconds=min(30, max(2, eta // 4)))


@router.post("/drops/{drop_id}/queue", response_model=QueueStatusRead,
             summary="Join the waiting room (idempotent: you keep your first place)")
def join_queue(drop_id: IdPath, request: Request, response: Response, services: ServicesDep,
               who: ShopperDep) -> QueueStatusRead:
    response.headers["Cache-Control"] = "no-store"
    with services.db.transaction() as session:
        drop = service.get_drop(session, drop_id)
        waiting_room.join_queue(session, clock=services.clock, drop=drop,
                           customer_id=who.customer_id, ip=client_ip(request))
        return _queue_read(session, request=request, clock=services.clock, drop=drop,
                           customer_id=who.customer_id)


@router.get("/drops/{drop_id}/queue/me", response_model=QueueStatusRead,
            summary="My position and ETA (poll this; it is small)")
def my_position(drop_id: IdPath, request: Request, response: Response, services: ServicesDep,
                who: ShopperDep) -> QueueStatusRead:
    response.headers["Cache-Control"] = "no-store"
    with services.db.transaction() as session:
        return _queue_read(session, request=request, clock=services.clock,
                           drop=service.get_drop(session, drop_id),
                           customer_id=who.customer_id)


@router.post("/drops/{drop_id}/admission", response_model=AdmissionRead,
             summary="An admission token, once the waiting room admits you",
             responses={409: PROBLEM, 429: PROBLEM})
def admission(drop_id: IdPath, request: Request, response: Response, services: ServicesDep,
              who: ShopperDep) -> AdmissionRead:
    response.headers["Cache-Control"] = "no-store"
    with services.db.transaction() as session:
        issued = waiting_room.issue_admission(
            session, clock=services.clock, secret=services.settings.web.secret_key,
            drop=service.get_drop(session, drop_id), customer_id=who.customer_id,
            session_digest=who.session_digest, early_access=early_access_of(request))
    prepare_gate(request.app.state, drop_id)  # the purchase follows: its gate keys now
    return AdmissionRead(token=issued.token, expires_at=issued.expires_at)


def _lines(body: HoldCreate) -> list[service.HoldLine]:
    return [service.HoldLine(line.variant_id, line.quantity) for line in body.lines]


@router.post("/drops/{drop_id}/holds", response_model=HoldRead,
             status_code=status.HTTP_201_CREATED, summary="Hold units (needs an admission "
             "token when the drop has a waiting room)", responses={403: PROBLEM, 409: PROBLEM})
def create_hold(drop_id: IdPath, body: HoldCreate, request: Request, services: ServicesDep,
                who: ShopperDep) -> HoldRead:
    hold = flows.place_hold(services.db, clock=services.clock, settings=services.settings,
                            drop_id=drop_id, shopper=who, lines=_lines(body),
                            admission_token=body.admission_token,
                            early_access=early_access_of(request))
    gate_hold_placed(request.app.state, hold)
    return HoldRead.model_validate(hold)


@router.get("/drops/holds/{hold_id}", response_model=HoldRead, summary="One of my holds")
def get_hold(hold_id: IdPath, services: ServicesDep, customer: CustomerDep) -> HoldRead:
    with services.db.transaction() as session:
        return HoldRead.model_validate(service.get_hold(session, hold_id,
                                                        customer_id=customer.id))


@router.delete("/drops/holds/{hold_id}", status_code=status.HTTP_204_NO_CONTENT,
               summary="Give a hold's units back")
def release_hold(hold_id: IdPath, request: Request, services: ServicesDep,
                 who: ShopperDep) -> None:
    flows.release_hold(services.db, clock=services.clock, customer_id=who.customer_id,
                       hold_id=hold_id, early_access=early_access_of(request))
    _close_in_gate(request, services, hold_id, units_back=True)


def _close_in_gate(request: Request, services: Services, hold_id: int, *,
                   units_back: bool) -> None:
    with services.db.transaction() as session:
        hold = service.get_hold(session, hold_id)
    gate_hold_closed(request.app.state, hold, units_back=units_back)


@router.post("/drops/holds/{hold_id}/checkout", status_code=status.HTTP_201_CREATED,
             summary="Pay for a hold (idempotent)",
             responses={402: PROBLEM, 409: PROBLEM, 422: PROBLEM, 503: PROBLEM})
def checkout_hold(hold_id: IdPath, body: HoldCheckout, request: Request, services: ServicesDep,
                  who: ShopperDep, idempotency_key: IdempotencyKey) -> JSONResponse:
    customer = Principal(kind="customer", id=who.customer_id)

    def operation(claim: Claim) -> tuple[int, object]:
        try:
            order_id = flows.checkout_hold(
                services.db, clock=services.clock, settings=services.settings,
                provider=services.payments, customer_id=who.customer_id, hold_id=hold_id,
                card=services.payments.describe_card(body.payment_method),
                shipping_address=body.shipping_address.model_dump(),
                checkout_reference=claim.reference, early_access=early_access_of(request),
                discount_code=body.discount_code, delivery=_delivery(body),
                policy=services.checkout)
        except PaymentDeclined:
            _close_in_gate(request, services, hold_id, units_back=True)
            raise
        _close_in_gate(request, services, hold_id, units_back=False)
        with services.db.transaction() as session:
            return 201, order_read(session, order_id)

    return run_idempotent(services, request=request, principal=customer, key=idempotency_key,
                          body=body, operation=operation)


@router.post("/drops/{drop_id}/purchase", status_code=status.HTTP_201_CREATED,
             summary="Express: admission, hold and payment in one idempotent request",
             responses={401: PROBLEM, 402: PROBLEM, 403: PROBLEM, 409: PROBLEM, 422: PROBLEM,
                        503: PROBLEM})
async def purchase(drop_id: IdPath, body: PurchaseCreate, request: Request,
                   idempotency_key: IdempotencyKey) -> Response:
    """With ``DROPLINE_REDIS_URL`` on PostgreSQL: the Redis gate and batched order writes
    (``drops.crowd.purchase``), on the event loop. Otherwise the database path, in a worker
    thread."""
    return await purchase_response(request, drop_id=drop_id, body=body,
                                   idempotency_key=idempotency_key)


async def purchase_response(request: Request, *, drop_id: int, body: PurchaseCreate,
                            idempotency_key: str | None,
                            admission_token: str | None = None) -> Response:
    """The one entry point of a drop purchase, for the API and the storefront's form alike.
    With ``DROPLINE_REDIS_URL`` on PostgreSQL: the engine (``drops.crowd.purchase``: the Redis
    gate and batched order writes), on the event loop. Otherwise the database path, in a
    worker thread: the shopper counted against the rate limits, then ``flows.purchase`` under
    the Idempotency-Key rules. ``admission_token``: one the caller issued in this same request
    (the form), used instead of the body's and not part of the request's fingerprint."""
    services: Services = request.app.state.services
    hot = hot_path(request.app.state)
    # A purchase with a delivery window is booked by the database path even with the engine
    # on (its batch writer books no windows); the slot rows stay the truth, and the gate
    # learns of the units from PostgreSQL, as it does of held units.
    if hot is not None and body.delivery is None:  # the API's take the fast lane, normally
        return await engine_response(
            hot, drop_id=drop_id, body=body, path=request.url.path,
            session_token=request.cookies.get(services.settings.web.session_cookie_name),
            idempotency_key=idempotency_key, ip=client_ip(request),
            early_access=early_access_of(request), admission_token=admission_token)
    counters: DropCounters | None = getattr(request.app.state, "drop_counters", None)
    try:
        response = await anyio.to_thread.run_sync(
            _purchase_in_database, drop_id, body, request, services, idempotency_key,
            admission_token)
    except DomainError as exc:  # answered as problem+json by the app's handler
        if counters is not None:
            counters.refused(exc.slug)
        raise
    # Counted here, on the event loop's thread, as the lane counts: no lock needed.
    if counters is not None:
        if response.headers.get("idempotent-replayed") == "true":
            counters.replayed += 1
        elif response.status_code == 201:
            counters.paid += 1
        elif response.status_code >= 400:  # a refusal, answered (and stored) as a problem
            counters.refused(_problem_slug(response.body))
    return response


def _problem_slug(body: bytes | memoryview) -> str:
    """The slug of a problem+json body's type (``.../problems/sold-out``: ``sold-out``)."""
    try:
        return str(json.loads(bytes(body))["type"]).rsplit("/", 1)[-1]
    except (ValueError, KeyError, TypeError):
        return "unknown"


_batcher_lock = threading.Lock()


def _delivery(body: PurchaseCreate | HoldCheckout) -> DeliveryChoice | None:
    return DeliveryChoice(**body.delivery.model_dump()) if body.delivery else None


def _batcher(state: Any, services: Services) -> batched.PurchaseBatcher | None:
    """The process's batcher of database-path purchases (``drops.batched``), on PostgreSQL;
    None on SQLite, whose purchases take ``flows.purchase`` one by one."""
    if services.db.is_sqlite:
        return None
    found = getattr(state, "drops_batcher", None)
    if found is None:
        with _batcher_lock:
            found = getattr(state, "drops_batcher", None)
            if found is None:
                found = state.drops_batcher = batched.batcher_for(
                    services.db, clock=services.clock, settings=services.settings,
                    provider=services.payments)
    return found


def _purchase_in_database(drop_id: int, body: PurchaseCreate, request: Request,
                          services: Services, idempotency_key: str | None,
                          admission_token: str | None) -> JSONResponse:
    who = shopper(request, require_customer(optional_customer(request, services)), services)
    customer = Principal(kind="customer", id=who.customer_id)

    batcher = _batcher(request.app.state, services)

    def operation(claim: Claim) -> tuple[int, object]:
        card = services.payments.describe_card(body.payment_method)
        lines = _lines(body)
        if batcher is not None:
            paid = batched.purchase(
                services.db, clock=services.clock, settings=services.settings, batcher=batcher,
                drop_id=drop_id, shopper=who, lines=lines,
                admission_token=admission_token or body.admission_token, card=card,
                shipping_address=body.shipping_address.model_dump(),
                checkout_reference=claim.reference, early_access=early_access_of(request),
                discount_code=body.discount_code, delivery=_delivery(body))
            if paid is not None:
                return 201, paid
        order_id = flows.purchase(
            services.db, clock=services.clock, settings=services.settings,
            provider=services.payments, drop_id=drop_id, shopper=who, lines=lines,
            admission_token=admission_token or body.admission_token, card=card,
            shipping_address=body.shipping_address.model_dump(),
            checkout_reference=claim.reference, early_access=early_access_of(request),
            discount_code=body.discount_code, delivery=_delivery(body),
            policy=services.checkout)
        with services.db.transaction() as session:
            return 201, order_read(session, order_id)

    return run_idempotent(services, request=request, principal=customer, key=idempotency_key,
                          body=body, operation=operation)


@router.post("/drops/{drop_id}/waitlist", response_model=WaitlistRead,
             status_code=status.HTTP_201_CREATED,
             summary="Join a sold-out drop's waitlist (offers go out in joining order)")
def join_waitlist(drop_id: IdPath, body: WaitlistJoin, services: ServicesDep,
                  who: ShopperDep) -> WaitlistRead:
    with services.db.transaction() as session:
        entry = service.join_waitlist(session, clock=services.clock,
                                      drop=service.get_drop(session, drop_id),
                                      customer_id=who.customer_id, variant_id=body.variant_id,
                                      quantity=body.quantity)
        return WaitlistRead.model_validate(entry)


@router.get("/drops/{drop_id}/waitlist/me", response_model=WaitlistRead,
            summary="My waitlist entry; when offered, hold_id is the offer to pay for")
def my_waitlist(drop_id: IdPath, services: ServicesDep, customer: CustomerDep) -> WaitlistRead:
    with services.db.transaction() as session:
        return WaitlistRead.model_validate(
            service.waitlist_entry(session, drop_id=drop_id, customer_id=customer.id))


@router.post("/drops/{drop_id}/waitlist/claim", status_code=status.HTTP_201_CREATED,
             summary="Claim my waitlist offer: pay for its hold (idempotent)",
             responses={402: PROBLEM, 404: PROBLEM, 409: PROBLEM})
def claim_offer(drop_id: IdPath, body: HoldCheckout, request: Request, services: ServicesDep,
                who: ShopperDep, idempotency_key: IdempotencyKey) -> JSONResponse:
    with services.db.transaction() as session:
        entry = service.waitlist_entry(session, drop_id=drop_id, customer_id=who.customer_id)
        hold_id = entry.hold_id
    if hold_id is None:
        raise InvalidState("you have no offer yet; you keep your place on the waitlist")
    return checkout_hold(hold_id, body, request, services, who, idempotency_key)


@router.put("/admin/drops/{drop_id}/story", response_model=DropStoryRead, tags=["admin"],
            summary="Set a drop's story (Markdown) and the notes beside its variants")
def set_story(drop_id: IdPath, body: DropStoryIn, session: SessionDep, clock: ClockDep,
              _: Manager) -> DropStoryRead:
    drop = stories.set_story(session, clock=clock, drop_id=drop_id, story=body.story,
                             notes=body.notes)
    return DropStoryRead(id=drop.id, story=drop.story, story_html=render_story(drop.story),
                         notes={v.variant_id: v.note for v in service.drop_variants(
                             session, drop.id) if v.note})

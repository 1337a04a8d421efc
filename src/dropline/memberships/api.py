"""Memberships over JSON: tiers, a member's own membership (join, change, pause, resume,
cancel, card), waitlists and polls; and the brand's view (tiers, members, metrics, cohort
map, segment rules, onboarding, polls) behind ``memberships:read`` / ``memberships:manage``."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from dropline.drops.service import started_drop_days
from dropline.errors import ServiceUnavailable
from dropline.idempotency.service import Claim
from dropline.memberships import flows, mixes, onboarding, polls, reports, segments, service
from dropline.memberships.config import MembershipConfig, membership_config
from dropline.memberships.models import Membership, MembershipPaymentMethod, MembershipTier
from dropline.memberships.rules import MembershipStatus
from dropline.memberships.onboarding_rules import flows_as_config
from dropline.memberships.schemas import (
    ChangePreview,
    CohortCellRead,
    MembershipCreate,
    MembershipRead,
    MetricsRead,
    MixPreferencesUpdate,
    OnboardingFlowsUpdate,
    PauseCreate,
    PaymentMethodUpdate,
    PollCreate,
    PollRead,
    SegmentRulesUpdate,
    TierChange,
    TierCreate,
    TierMixUpdate,
    TierRead,
    VoteCreate,
)
from dropline.payments.provider import RecurringPaymentProvider
from dropline.schemas import IDEMPOTENCY_KEY_PATTERN, IdPath, Instant
from dropline.web.deps import (
    ClockDep,
    CustomerDep,
    Principal,
    Services,
    ServicesDep,
    SessionDep,
    admin,
)
from dropline.web.idempotency import run_idempotent

router = APIRouter(tags=["memberships"])
IdempotencyKey = Annotated[str, Header(
    alias="Idempotency-Key", max_length=255, pattern=IDEMPOTENCY_KEY_PATTERN,
    description="unique per attempt (e.g. a UUID); resend the same key when retrying")]
PROBLEM = {"content": {"application/problem+json": {}}}
ReadScope = Annotated[Principal, admin("memberships:read")]
ManageScope = Annotated[Principal, admin("memberships:manage")]


def recurring(services: Services) -> RecurringPaymentProvider:
    provider = services.payments
    if not hasattr(provider, "charge_saved") or not hasattr(provider, "save_card"):
        raise ServiceUnavailable("the configured payment provider cannot keep cards for "
                                 "renewals")
    return provider  # type: ignore[return-value]


def config_of(services: Services) -> MembershipConfig:
    return membership_config(services.settings)


def tier_read(tier: MembershipTier) -> TierRead:
    return TierRead.model_validate({**{k: getattr(tier, k) for k in TierRead.model_fields
                                       if k != "spots_left"},
                                    "spots_left": service.spots_left(tier)})


def membership_read(session: Session, membership: Membership) -> MembershipRead:
    tier = service.get_tier(session, membership.tier_id)
    method = session.get(MembershipPaymentMethod, membership.payment_method_id or 0)
    fields = {k: getattr(membership, k) for k in MembershipRead.model_fields
              if hasattr(membership, k) and k not in ("tier_slug", "tier_name", "currency")}
    return MembershipRead(**fields, tier_slug=tier.slug, tier_name=tier.name,
                          currency=tier.currency, card_last4=method.last4 if method else None)


def _mine(session: Session, customer_id: int) -> MembershipRead:
    return membership_read(session, service.require_live(session, customer_id=customer_id))


# --------------------------------------------------------------------------- members


@router.get("/membership-tiers", response_model=list[TierRead], summary="Tiers open to join")
def list_tiers(session: SessionDep) -> list[TierRead]:
    return [tier_read(t) for t in service.list_tiers(session)]


@router.post("/memberships", response_model=MembershipRead, status_code=status.HTTP_201_CREATED,
             summary="Join a tier (idempotent)",
             responses={402: PROBLEM, 409: PROBLEM, 422: PROBLEM, 503: PROBLEM},
             description="Saves the card and charges the first period (or starts the tier's "
                         "trial). Send an `Idempotency-Key`. A full tier answers 409 "
                         "`out-of-stock`: join its waitlist.")
def join(body: MembershipCreate, request: Request, services: ServicesDep,
         customer: CustomerDep, idempotency_key: IdempotencyKey) -> JSONResponse:
    def operation(claim: Claim) -> tuple[int, MembershipRead]:
        membership_id = flows.subscribe(
            services.db, clock=services.clock, config=config_of(services),
            provider=recurring(services),
            request=flows.SubscribeRequest(
                customer_id=customer.id, tier_id=body.tier_id,
                card=services.payments.describe_card(body.payment_method),
                signup_reference=claim.reference,
                shipping_address=body.shipping_address.model_dump()
                if body.shipping_address else None))
        with services.db.transaction() as session:
            return 201, membership_read(session, service.get_membership(session, membership_id))

    return run_idempotent(services, request=request, principal=customer, key=idempotency_key,
                          body=body, operation=operation)


@router.get("/memberships/current", response_model=MembershipRead, summary="My membership",
            responses={404: PROBLEM})
def my_membership(customer: CustomerDep, session: SessionDep) -> MembershipRead:
    return _mine(session, customer.id)


@router.get("/memberships/current/change-preview", response_model=ChangePreview,
            summary="What changing tier would cost now (prorated)")
def change_preview(customer: CustomerDep, session: SessionDep, clock: ClockDep,
                   tier_id: Annotated[int, Query(ge=1, le=2**53)]) -> ChangePreview:
    plan = service.plan_change(session, clock=clock, customer_id=customer.id,
                               new_tier_id=tier_id)
    p = plan.proration
    return ChangePreview(from_tier=plan.old_tier.slug, to_tier=plan.new_tier.slug,
                         credit_amount=p.credit_amount, charge_amount=p.charge_amount,
                         net_amount=p.net_amount, currency=plan.new_tier.currency,
                         restarts_period=plan.restarts_period)


@router.post("/memberships/current/tier", response_model=MembershipRead,
             summary="Upgrade or downgrade now, prorated (idempotent)",
             responses={402: PROBLEM, 409: PROBLEM, 422: PROBLEM})
def change_tier(body: TierChange, request: Request, services: ServicesDep,
                customer: CustomerDep, idempotency_key: IdempotencyKey) -> JSONResponse:
    def operation(_: Claim) -> tuple[int, MembershipRead]:
        flows.change_tier(services.db, clock=services.clock, config=config_of(services),
                          provider=recurring(services), customer_id=customer.id,
                          new_tier_id=body.tier_id)
        with services.db.transaction() as session:
            return 200, _mine(session, customer.id)

    return run_idempotent(services, request=request, principal=customer, key=idempotency_key,
                          body=body, operation=operation)


@router.post("/memberships/current/pause", response_model=MembershipRead,
             summary="Pause (the rest of the period is kept for later)")
def pause(body: PauseCreate, customer: CustomerDep, session: SessionDep,
          clock: ClockDep) -> MembershipRead:
    return membership_read(session, service.pause(session, clock=clock, customer_id=customer.id,
                                                  resume_at=body.resume_at))


@router.post("/memberships/current/resume", response_model=MembershipRead, summary="Resume")
def resume(customer: CustomerDep, session: SessionDep, clock: ClockDep) -> MembershipRead:
    return membership_read(session, service.resume(session, clock=clock,
                                                   customer_id=customer.id))


@router.post("/memberships/current/cancel", response_model=MembershipRead,
             summary="Cancel at the end of the period")
def cancel(customer: CustomerDep, session: SessionDep, clock: ClockDep) -> MembershipRead:
    return membership_read(session, service.cancel(session, clock=clock,
                                                   customer_id=customer.id))


@router.post("/memberships/current/keep", response_model=MembershipRead,
             summary="Undo a cancellation before the period ends")
def keep(customer: CustomerDep, session: SessionDep, clock: ClockDep) -> MembershipRead:
    return membership_read(session, service.keep(session, clock=clock, customer_id=customer.id))


@router.put("/memberships/current/payment-method", response_model=MembershipRead,
            summary="Use another card (a renewal in dunning is retried on it now)",
            responses={402: PROBLEM})
def update_card(body: PaymentMethodUpdate, customer: CustomerDep,
                services: ServicesDep) -> MembershipRead:
    flows.update_payment_method(services.db, clock=services.clock, config=config_of(services),
                                provider=recurring(services), customer_id=customer.id,
                                card=services.payments.describe_card(body.payment_method))
    with services.db.transaction() as session:
        return _mine(session, customer.id)


@router.put("/memberships/current/mix-preferences",
            summary="My say in my tier's rotating mix: SKUs to get first, or to avoid")
def put_mix_preferences(body: MixPreferencesUpdate, customer: CustomerDep,
                        session: SessionDep) -> dict[str, list[str]]:
    return mixes.set_mix_preferences(session, customer_id=customer.id, prefer=body.prefer,
                                     avoid=body.avoid)


@router.post("/membership-tiers/{tier_id}/waitlist", status_code=status.HTTP_201_CREATED,
             summary="Wait for a spot on a full tier")
def join_waitlist(tier_id: IdPath, customer: CustomerDep, session: SessionDep,
                  clock: ClockDep) -> dict[str, Any]:
    service.join_waitlist(session, clock=clock, tier_id=tier_id, customer_id=customer.id)
    return {"tier_id": tier_id, "position": service.waitlist_position(
        session, tier_id=tier_id, customer_id=customer.id)}


@router.get("/memberships/current/polls", response_model=list[PollRead],
            summary="Open polls I can vote in")
def my_polls(customer: CustomerDep, session: SessionDep, clock: ClockDep) -> list[PollRead]:
    return [PollRead.model_validate(p) for p, _ in
            polls.open_polls_for(session, clock=clock, customer_id=customer.id)]


@router.post("/polls/{poll_id}/votes", status_code=status.HTTP_201_CREATED,
             summary="Vote (once)", responses={403: PROBLEM, 409: PROBLEM})
def vote(poll_id: IdPath, body: VoteCreate, customer: CustomerDep, session: SessionDep,
         clock: ClockDep) -> dict[str, int]:
    row = polls.vote(session, clock=clock, poll_id=poll_id, customer_id=customer.id,
                     option_index=body.option)
    return {"poll_id": row.poll_id, "option": row.option_index}


# ----------------------------------------------------------------------------- brand


@router.post("/admin/membership-tiers", response_model=TierRead,
             status_code=status.HTTP_201_CREATED, tags=["admin"], summary="Create a tier")
def create_tier(body: TierCreate, session: SessionDep, clock: ClockDep,
                _: ManageScope) -> TierRead:
    return tier_read(service.create_tier(session, clock=clock,
                                         spec=service.TierSpec(**body.model_dump())))


@router.get("/admin/membership-tiers", response_model=list[TierRead], tags=["admin"],
            summary="Every tier, with spots left")
def all_tiers(session: SessionDep, _: ReadScope) -> list[TierRead]:
    return [tier_read(t) for t in service.list_tiers(session, include_inactive=True)]


@router.put("/admin/membership-tiers/{tier_id}/mix", tags=["admin"],
            summary="Make a consumable tier ship a rotating mix (pool, size, no-repeat window)")
def put_tier_mix(tier_id: IdPath, body: TierMixUpdate, session: SessionDep,
                 _: ManageScope) -> dict[str, Any]:
    tier = mixes.set_tier_mix(session, tier=service.get_tier(session, tier_id), skus=body.pool,
                              size=body.size, no_repeat=body.no_repeat)
    return mixes.mix_of(session, tier)


@router.get("/admin/memberships", response_model=list[MembershipRead], tags=["admin"],
            summary="Memberships")
def list_memberships(
    session: SessionDep, _: ReadScope,
    status_: Annotated[MembershipStatus | None, Query(alias="status")] = None,
    segment: Annotated[str | None, Query(max_length=16)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[MembershipRead]:
    query = select(Membership).order_by(Membership.id)
    if status_ is not None:
        query = query.where(Membership.status == status_)
    if segment is not None:
        query = query.where(Membership.segment == segment)
    return [membership_read(session, m)
            for m in session.scalars(query.limit(limit).offset(offset))]


@router.get("/admin/memberships/metrics", response_model=MetricsRead, tags=["admin"],
            summary="MRR, members per tier, churn (voluntary / failed payment), trials")
def get_metrics(session: SessionDep, clock: ClockDep, _: ReadScope,
                since: Annotated[Instant | None, Query()] = None,
                until: Annotated[Instant | None, Query()] = None) -> MetricsRead:
    until = until or clock.now()
    since = since or until - timedelta(days=30)
    m = reports.metrics(session, since=since, until=until)
    return MetricsRead.model_validate({**m.__dict__, "churn_rate": m.churn_rate,
                                       "trial_conversion": m.trial_conversion,
                                       "tiers": [t.__dict__ for t in m.tiers]})


@router.get("/admin/memberships/cohort-map", response_model=list[CohortCellRead],
            tags=["admin"], summary="Members, revenue and retention by segment and join month")
def cohort_map(session: SessionDep, clock: ClockDep, _: ReadScope) -> list[CohortCellRead]:
    return [CohortCellRead.model_validate(c.__dict__)
            for c in reports.membership_cohort_map(session, now=clock.now())]


@router.get("/admin/memberships/segment-rules", tags=["admin"],
            summary="The segment thresholds in force")
def get_segment_rules(session: SessionDep, _: ReadScope) -> dict[str, Any]:
    return {"rules": segments.get_rules(session).as_dict(),
            "explanation": segments.SegmentRules.__doc__,
            "last_computed_at": segments.last_run(session)}


@router.put("/admin/memberships/segment-rules", tags=["admin"],
            summary="Change segment thresholds (applied at the next recompute)")
def put_segment_rules(body: SegmentRulesUpdate, session: SessionDep, clock: ClockDep,
                      _: ManageScope) -> dict[str, Any]:
    changes = body.model_dump(exclude_none=True)
    return {"rules": segments.set_rules(session, clock=clock, changes=changes).as_dict()}


@router.post("/admin/memberships/segments/recompute", tags=["admin"],
             summary="Reclassify every member now")
def recompute(session: SessionDep, clock: ClockDep, _: ManageScope) -> dict[str, int]:
    segments.claim_segment_run(session, clock=clock, every=timedelta(0), force=True)
    return {"classified": segments.classify_all(session, clock=clock,
                                                drop_days=started_drop_days)}


@router.get("/admin/memberships/onboarding", tags=["admin"],
            summary="Onboarding flows, their measured effect against the holdout, and "
                    "retention of members who completed them or not")
def onboarding_report(session: SessionDep, clock: ClockDep, _: ReadScope) -> dict[str, Any]:
    return {"steps": [s.__dict__ for s in onboarding.get_steps(session)],
            "flows": flows_as_config(onboarding.get_flows(session)),
            "effect": [e.as_dict() for e in onboarding.onboarding_effect(session, clock=clock)],
            "retention": onboarding.retention_by_completion(session, clock=clock)}


@router.put("/admin/memberships/onboarding/flows", tags=["admin"],
            summary="Replace the onboarding flows (steps, days or events, channel, content, "
                    "tier/segment, holdout share)")
def put_onboarding_flows(body: OnboardingFlowsUpdate, session: SessionDep, clock: ClockDep,
                         _: ManageScope) -> dict[str, Any]:
    flows = onboarding.set_flows(session, clock=clock,
                                 flows=[f.model_dump() for f in body.flows])
    return {"flows": flows_as_config(flows)}


@router.post("/admin/polls", response_model=PollRead, status_code=status.HTTP_201_CREATED,
             tags=["admin"], summary="Ask founding members (or a tier) a question")
def create_poll(body: PollCreate, session: SessionDep, clock: ClockDep,
                _: ManageScope) -> PollRead:
    poll = polls.create_poll(session, clock=clock, question=body.question, options=body.options,
                             closes_at=body.closes_at, opens_at=body.opens_at,
                             segment=body.segment.value if body.segment else None,
                             tier_id=body.tier_id)
    return PollRead.model_validate(poll)


@router.get("/admin/polls/{poll_id}", response_model=PollRead, tags=["admin"],
            summary="A poll with its results")
def poll_results(poll_id: IdPath, session: SessionDep, _: ReadScope) -> PollRead:
    result = polls.results(session, poll_id=poll_id)
    return PollRead.model_validate({**{k: getattr(result.poll, k) for k in
                                       ("id", "question", "options", "segment", "tier_id",
                                        "opens_at", "closes_at")},
                                    "counts": result.counts, "votes": result.votes})



"""The 90-day checklist: what a brand should have done in its first quarter on Dropline,
ticked off from its own data (never from a form someone fills in), each with the evidence
that ticks it and a link to where it shows.

An item is done when the rows that prove it exist, and only then: "a routing rule tested" means
rules are configured *and* orders have been decided by one of them *and* a window was routed;
"a capped drop with delivery windows" means drop orders were delivered in a hub's window;
"cohorts mapped" means the segment rule ran recently and at least two segments hold enough
members; "returns and risk reviewed" means decisions were made and nothing waits a week.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.console import figures
from dropline.customers.models import Customer
from dropline.drops.models import Drop, DropHold
from dropline.fulfilment.models import (
    FulfilmentDecisionRow,
    FulfilmentRuleRow,
    RoutePlanRow,
    WindowBooking,
)
from dropline.memberships.models import Membership
from dropline.money import format_money
from dropline.orders.models import Order


@dataclass(frozen=True)
class CheckItem:
    key: str
    title: str
    done: bool
    evidence: str
    link: str


COHORT_MIN_MEMBERS = 5  # a segment with fewer members is a name, not a cohort
COHORT_RUN_DAYS = 35  # segments recomputed within this long (the job runs daily)
COHORT_CLASSIFIED_SHARE = 0.8


def _cohorts(session: Session, *, clock: Clock) -> CheckItem:
    """Ticks on the evidence it names: the segment rule ran recently, at least two segments
    hold enough members to be cohorts, and most live members are classified."""
    if not figures.module_built("memberships"):
        return CheckItem("cohorts", "Cohorts mapped", False,
                         "the memberships module is not installed", "/admin")
    from dropline.memberships import segments
    from dropline.memberships.rules import LIVE_STATUSES

    counts = Counter(dict(session.execute(
        select(Membership.segment, func.count()).where(Membership.segment.is_not(None),
                                                       Membership.status.in_(LIVE_STATUSES))
        .group_by(Membership.segment)).all()))
    live = session.scalar(select(func.count()).select_from(Membership)
                          .where(Membership.status.in_(LIVE_STATUSES))) or 0
    ran = segments.last_run(session)
    recent = ran is not None and ran >= clock.now() - timedelta(days=COHORT_RUN_DAYS)
    cohorts = [s for s, n in counts.items() if n >= COHORT_MIN_MEMBERS]
    classified = sum(counts.values())
    share = classified / live if live else 0.0
    if not counts:
        evidence = "no member has a segment yet: run `dropline members segments`"
    else:
        evidence = (", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                    + f" live members ({share:.0%} of {live} classified); "
                    + (f"segments computed {ran:%d %b %Y}" if ran else "segments never computed")
                    + f"; {len(cohorts)} segments of at least {COHORT_MIN_MEMBERS} members")
    return CheckItem("cohorts", "Cohorts mapped (members in segments)",
                     recent and len(cohorts) >= 2 and share >= COHORT_CLASSIFIED_SHARE,
                     evidence, "/admin/playbooks/cohort-map")


def _capped_drop(session: Session, *, clock: Clock) -> CheckItem:
    """Ticks when a capped drop has sold and drop orders have been delivered in a hub's
    delivery window: the thing itself, not window bookings of any order."""
    from dropline.orders.rules import OrderStage

    now = clock.now()
    ran = session.scalars(select(Drop).where(Drop.starts_at <= now)
                          .order_by(Drop.starts_at.desc())).all()
    sold = [(d, figures.drop_row(session, clock=clock, drop=d)) for d in ran[:24]]
    sold = [(d, row) for d, row in sold if row.sold > 0 and row.cap > 0]
    in_windows = (select(func.count(func.distinct(Order.id)))
                  .join(DropHold, DropHold.order_id == Order.id)
                  .join(WindowBooking, WindowBooking.order_id == Order.id)
                  .where(WindowBooking.live_order_id.is_not(None)))
    booked = session.scalar(in_windows) or 0
    delivered = session.scalar(in_windows.where(Order.stage == OrderStage.delivered)) or 0
    if not sold:
        return CheckItem("drop", "A capped drop with delivery windows run", False,
                         "no drop has sold yet: `dropline drops create`", "/admin/drops")
    drop, row = sold[0]
    evidence = (f"{len(sold)} capped drops sold; latest {drop.name}: {row.sold} of {row.cap} "
                f"({row.sell_through:.0%}); {delivered} drop orders delivered in hub windows "
                f"({booked} booked into one)")
    return CheckItem("drop", "A capped drop with delivery windows run", delivered > 0,
                     evidence, f"/admin/drops/{drop.id}")


def _routing(session: Session) -> CheckItem:
    rules = session.scalar(select(func.count()).select_from(FulfilmentRuleRow)
                           .where(FulfilmentRuleRow.enabled)) or 0
    names = set(session.scalars(select(FulfilmentRuleRow.name)))
    decided = Counter(dict(session.execute(select(FulfilmentDecisionRow.rule, func.count())
                                           .group_by(FulfilmentDecisionRow.rule)).all()))
    by_rules = sum(n for rule, n in decided.items() if rule in names)
    plans = session.scalar(select(func.count()).select_from(RoutePlanRow)) or 0
    evidence = (f"{rules} rules configured; {sum(decided.values())} orders decided, {by_rules} "
                f"of them by a configured rule; {plans} windows routed")
    return CheckItem("routing", "A routing rule tested", rules > 0 and by_rules > 0 and plans > 0,
                     evidence, "/admin/playbooks/decision-tree")


def _telemetry(session: Session, *, clock: Clock, currency: str) -> CheckItem:
    """Acquisition linked to 90-day revenue: customers whose first order is at least 90 days
    old (their 90-day cell is observed) with a known acquisition source."""
    now = clock.now()
    orders: dict[int, list[tuple[datetime, int]]] = {}
    for customer_id, at, amount in session.execute(
            select(Order.customer_id, Order.created_at,
                   Order.total_amount - Order.refunded_amount)
            .where(Order.status.in_(figures.PAID), Order.created_at <= now)):
        orders.setdefault(customer_id, []).append((at, int(amount)))
    firsts = {c: min(at for at, _ in rows) for c, rows in orders.items()}
    cell = {c for c, first in firsts.items() if first <= now - timedelta(days=90)}
    revenue = sum(amount for c in cell for at, amount in orders[c]
                  if at < firsts[c] + timedelta(days=90))
    by_source = Counter(dict(session.execute(
        select(Customer.acquisition_source, func.count()).where(Customer.id.in_(cell))
        .group_by(Customer.acquisition_source)).all())) if cell else Counter()
    observed = sum(by_source.values())
    sources = sorted(s for s in by_source if s)
    evidence = (f"{observed} customers with an observed 90-day cell across {len(sources)} "
                f"acquisition sources ({', '.join(sources[:6])}); their first-90-day revenue "
                f"{format_money(int(revenue), currency)}")
    return CheckItem("telemetry", "Telemetry links acquisition to 90-day revenue",
                     observed > 0 and len(sources) >= 2, evidence, "/admin/telemetry")


def _membership(session: Session, *, clock: Clock, currency: str) -> CheckItem:
    view = figures.overview(session, clock=clock, currency=currency)
    if view.members is None:
        return CheckItem("membership", "A membership programme live", False,
                         "no membership tiers yet: `dropline members tiers create`", "/admin")
    return CheckItem("membership", "A membership programme live", view.members > 0,
                     f"{view.members} live members, MRR {format_money(view.mrr or 0, currency)}",
                     "/admin/memberships/cohort-map")


def _next_drop(session: Session, *, clock: Clock) -> CheckItem:
    upcoming = figures.next_drop(session, clock=clock)
    if upcoming is None:
        return CheckItem("next-drop", "The next drop scheduled, with its runbook", False,
                         "nothing scheduled", "/admin/drops")
    row = figures.drop_row(session, clock=clock, drop=upcoming)
    return CheckItem("next-drop", "The next drop scheduled, with its runbook", True,
                     f"{upcoming.name}, {upcoming.starts_at.astimezone(figures.LONDON):%d %b %H:%M}"
                     f", cap {row.cap}", "/admin/playbooks/drop-runbook")


RISK_REVIEW_DAYS = 7  # an open case older than this means the queue is not being reviewed


def _risk(session: Session, *, clock: Clock) -> CheckItem:
    """Ticks when the queue is reviewed: something was decided in the last 30 days and no
    case or card-testing alert has waited more than a week."""
    if not figures.module_built("risk"):
        return CheckItem("risk", "Returns and risk reviewed", False,
                         "the risk module is not built yet", "/admin/risk")
    from dropline.risk.models import CaseStatus, DeclineAlert, RiskCase

    now = clock.now()
    stale = now - timedelta(days=RISK_REVIEW_DAYS)
    decided = session.scalar(select(func.count()).select_from(RiskCase).where(
        RiskCase.decided_at >= now - timedelta(days=30))) or 0
    reviewed = session.scalar(select(func.count()).select_from(DeclineAlert).where(
        DeclineAlert.reviewed_at >= now - timedelta(days=30))) or 0
    waiting = (session.scalar(select(func.count()).select_from(RiskCase).where(
        RiskCase.status == CaseStatus.open, RiskCase.created_at < stale)) or 0) + (
        session.scalar(select(func.count()).select_from(DeclineAlert).where(
            DeclineAlert.reviewed_at.is_(None), DeclineAlert.created_at < stale)) or 0)
    evidence = (f"{decided} risk cases decided and {reviewed} card-testing alerts reviewed in "
                f"30 days; {waiting} waiting more than {RISK_REVIEW_DAYS} days")
    return CheckItem("risk", "Returns and risk reviewed", (decided + reviewed) > 0 and not waiting,
                     evidence, "/admin/risk")


def checklist(session: Session, *, clock: Clock, currency: str) -> list[CheckItem]:
    return [_cohorts(session, clock=clock), _membership(session, clock=clock, currency=currency),
            _capped_drop(session, clock=clock), _routing(session),
            _telemetry(session, clock=clock, currency=currency),
            _next_drop(session, clock=clock), _risk(session, clock=clock)]

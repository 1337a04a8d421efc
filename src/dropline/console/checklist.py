"""The 90-day checklist: what a brand should have done in its first quarter on Dropline,
ticked off from its own data (never from a form someone fills in), each with the evidence
that ticks it and a link to where it shows.

An item is done when the rows that prove it exist: e.g. "a routing rule tested" means rules are
configured *and* orders have been decided by one of them *and* a window was routed.
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


def _cohorts(session: Session) -> CheckItem:
    if not figures.module_built("memberships"):
        return CheckItem("cohorts", "Cohorts mapped", False,
                         "the memberships module is not installed", "/admin")
    counts = Counter(dict(session.execute(
        select(Membership.segment, func.count()).where(Membership.segment.is_not(None))
        .group_by(Membership.segment)).all()))
    evidence = (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + " members"
                if counts else "no member has a segment yet: run `dropline members segments`")
    return CheckItem("cohorts", "Cohorts mapped (members in segments)", len(counts) >= 2,
                     evidence, "/admin/playbooks/cohort-map")


def _capped_drop(session: Session, *, clock: Clock) -> CheckItem:
    now = clock.now()
    ran = session.scalars(select(Drop).where(Drop.starts_at <= now)
                          .order_by(Drop.starts_at.desc())).all()
    sold = [(d, figures.drop_row(session, clock=clock, drop=d)) for d in ran[:24]]
    sold = [(d, row) for d, row in sold if row.sold > 0 and row.cap > 0]
    windows = session.scalar(select(func.count()).select_from(WindowBooking)) or 0
    by_window = session.scalar(
        select(func.count(func.distinct(Order.id))).join(DropHold, DropHold.order_id == Order.id)
        .where(Order.fulfilment_path == "hub-window")) or 0
    if not sold:
        return CheckItem("drop", "A capped drop with delivery windows run", False,
                         "no drop has sold yet: `dropline drops create`", "/admin/drops")
    drop, row = sold[0]
    evidence = (f"{len(sold)} capped drops sold; latest {drop.name}: {row.sold} of {row.cap} "
                f"({row.sell_through:.0%}); {by_window} drop orders delivered in hub windows, "
                f"{windows} window bookings in all")
    return CheckItem("drop", "A capped drop with delivery windows run",
                     bool(by_window or windows), evidence, f"/admin/drops/{drop.id}")


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


def _risk(session: Session) -> CheckItem:
    if not figures.module_built("risk"):
        return CheckItem("risk", "Returns and risk reviewed", False,
                         "the risk module is not built yet", "/admin/risk")
    return CheckItem("risk", "Returns and risk queue in place", True,
                     "the risk module is installed: review its queue weekly", "/admin/risk")


def checklist(session: Session, *, clock: Clock, currency: str) -> list[CheckItem]:
    return [_cohorts(session), _membership(session, clock=clock, currency=currency),
            _capped_drop(session, clock=clock), _routing(session),
            _telemetry(session, clock=clock, currency=currency),
            _next_drop(session, clock=clock), _risk(session)]

"""The review queue (what a person acts on) and per-customer scores: one read, shared by the
API, the CLI and the console page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.customers.models import Customer
from dropline.errors import NotFound
from dropline.orders.models import Order, OrderLine
from dropline.risk import facts
from dropline.risk.config import load_config
from dropline.risk.models import CaseStatus, ReturnRequest, RiskCase, RiskDecision
from dropline.risk.rules import Score, score_customer


@dataclass(frozen=True)
class QueueItem:
    case: RiskCase
    ret: ReturnRequest
    email: str
    product: str
    sku: str
    value: int
    currency: str
    decisions: list[RiskDecision]

    @property
    def waiting_since(self) -> datetime:
        return self.case.created_at


def _items(session: Session, cases: list[RiskCase]) -> list[QueueItem]:
    if not cases:
        return []
    rets = {r.id: r for r in session.scalars(select(ReturnRequest).where(
        ReturnRequest.id.in_([c.return_id for c in cases])))}
    lines = {line.id: line for line in session.scalars(select(OrderLine).where(
        OrderLine.id.in_([r.order_line_id for r in rets.values()])))}
    emails = dict(session.execute(select(Customer.id, Customer.email).where(
        Customer.id.in_([c.customer_id for c in cases]))).all())
    decisions: dict[int, list[RiskDecision]] = {}
    for d in session.scalars(select(RiskDecision).where(
            RiskDecision.case_id.in_([c.id for c in cases])).order_by(RiskDecision.id)):
        decisions.setdefault(d.case_id, []).append(d)
    currencies = dict(session.execute(select(Order.id, Order.currency).where(
        Order.id.in_([r.order_id for r in rets.values()]))).all())
    items = []
    for case in cases:
        ret = rets[case.return_id]
        line = lines[ret.order_line_id]
        items.append(QueueItem(case, ret, emails.get(case.customer_id, ""),
                               f"{line.product_name} · {line.variant_name}", line.sku,
                               line.unit_price_amount * ret.quantity,
                               currencies.get(ret.order_id, ""), decisions.get(case.id, [])))
    return items


def review_queue(session: Session, *, limit: int = 200) -> list[QueueItem]:
    """Open cases, highest score first, then oldest first."""
    cases = list(session.scalars(select(RiskCase).where(RiskCase.status == CaseStatus.open)
                                 .order_by(RiskCase.score.desc(), RiskCase.id).limit(limit)))
    return _items(session, cases)


def recent_decisions(session: Session, *, limit: int = 20) -> list[QueueItem]:
    cases = list(session.scalars(select(RiskCase).where(RiskCase.status != CaseStatus.open)
                                 .order_by(RiskCase.decided_at.desc(), RiskCase.id.desc())
                                 .limit(limit)))
    return _items(session, cases)


def case_item(session: Session, case_id: int) -> QueueItem:
    case = session.get(RiskCase, case_id)
    if case is None:
        raise NotFound(f"risk case {case_id} not found")
    return _items(session, [case])[0]


def customer_score(session: Session, *, clock: Clock, customer_id: int) -> Score:
    if session.get(Customer, customer_id) is None:
        raise NotFound(f"customer {customer_id} not found")
    t = load_config(session).thresholds
    return score_customer(
        facts.customer_history(session, customer_id=customer_id, now=clock.now(), t=t),
        facts.brand_norm(session), facts.linked_accounts(session, customer_id=customer_id), t)

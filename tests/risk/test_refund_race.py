"""A return's refund is paid once, whoever asks and however often at the same time: real
threads, one connection each (on PostgreSQL they interleave for real; on SQLite the engine
serialises writers and the same invariant holds)."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select

from dropline.adapters.payments import LocalCardProvider
from dropline.catalog.models import ConditionGrade
from dropline.orders.models import Order, OrderLine
from dropline.payments.models import LocalProviderCharge, Refund
from dropline.risk import flows, returns
from dropline.risk.models import ReturnRequest, ReturnStatus
from tests.builders import CREDIT_NOTES
from tests.orders.test_races import _checkout, _shopper_with_cart, race
from tests.risk.support import shop


def _approved_return(db, clock, settings) -> tuple[int, int]:
    ids = shop(db, clock, price=6000)
    customer_id, cart_id = _shopper_with_cart(db, clock, settings, ids["variant_id"], 0)
    provider = LocalCardProvider(db.sessions, clock)
    order_id = _checkout(db, clock, settings, provider, customer_id, cart_id, "paid-1")
    with db.transaction() as session:
        line_id = session.scalar(select(OrderLine.id).where(OrderLine.order_id == order_id))
        ret = returns.request_return(session, clock=clock, customer_id=customer_id,
                                     order_id=order_id, order_line_id=line_id, quantity=1,
                                     reason="defective")
        clock.advance(days=10)
        returns.receive_return(session, clock=clock, return_id=ret.id,
                               grade=ConditionGrade.new, location_code="central")
        assert ret.status is ReturnStatus.approved
        return ret.id, order_id


def test_concurrent_refunds_of_one_return_pay_it_exactly_once(db, clock, settings):
    return_id, order_id = _approved_return(db, clock, settings)
    provider = LocalCardProvider(db.sessions, clock)

    results = race(8, lambda i: flows.refund_return(db, clock=clock, provider=provider,
                                                    credit_notes=CREDIT_NOTES,
                                                    return_id=return_id, actor=f"admin:{i}"))

    assert Counter(type(r).__name__ for r in results) == {"ReturnRequest": 8}, results
    assert {r.status for r in results} == {ReturnStatus.refunded}
    with db.transaction() as session:
        assert session.get(Order, order_id).refunded_amount == 6000
        assert session.scalar(select(func.count()).select_from(Refund)) == 1
        assert session.scalar(select(func.count()).select_from(LocalProviderCharge)
                              .where(LocalProviderCharge.kind == "refund")) == 1
        ret = session.get(ReturnRequest, return_id)
        assert ret.refund_id == session.scalar(select(Refund.id))


def test_a_repeated_refund_after_success_replays_and_pays_nothing_more(db, clock, settings):
    return_id, order_id = _approved_return(db, clock, settings)
    provider = LocalCardProvider(db.sessions, clock)
    first = flows.refund_return(db, clock=clock, provider=provider, credit_notes=CREDIT_NOTES,
                                return_id=return_id,
                                actor="admin:1")
    again = flows.refund_return(db, clock=clock, provider=provider, credit_notes=CREDIT_NOTES,
                                return_id=return_id,
                                actor="admin:2")
    assert first.refund_id is not None and again.refund_id == first.refund_id
    with db.transaction() as session:
        assert session.get(Order, order_id).refunded_amount == 6000
        assert session.scalar(select(func.count()).select_from(LocalProviderCharge)
                              .where(LocalProviderCharge.kind == "refund")) == 1

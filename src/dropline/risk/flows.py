"""Paying an approved return's refund: a side effect (the card provider) between
transactions, like ``orders.flows.refund_order`` which it calls.

Never paid twice, under retries and concurrent requests:

1. one conditional UPDATE moves the return ``approved -> refunding``; a concurrent caller
   that loses finds ``refunding`` (resumes) or ``refunded`` (replays the result);
2. the refund's idempotency key is derived from the return (``return-<id>``), so every
   caller opens or resumes the *same* ``refunds`` row (unique key) and the provider is asked
   with the same key (it pays once); a caller that raced another to open it gets the unique
   violation, and retries once to resume the row the winner committed;
3. one conditional UPDATE moves ``refunding -> refunded``, and only its winner records the
   event."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from dropline.clock import Clock
from dropline.db import Database
from dropline.errors import DomainError, InvalidState
from dropline.orders import flows as order_flows
from dropline.payments.models import Refund
from dropline.orders.policy import CreditNoteIssuer
from dropline.payments.provider import PaymentProvider
from dropline.risk.models import ReturnOutcome, ReturnRequest, ReturnStatus
from dropline.risk.returns import _event, get_return, mark_refunding


def refund_return(db: Database, *, clock: Clock, provider: PaymentProvider,
                  credit_notes: CreditNoteIssuer, return_id: int, actor: str) -> ReturnRequest:
    with db.transaction() as session:
        ret = get_return(session, return_id)
        if ret.status is ReturnStatus.refunded:
            return ret
        if ret.status is ReturnStatus.approved:
            mark_refunding(session, return_id=return_id)
            session.refresh(ret)
        if ret.status is not ReturnStatus.refunding or ret.outcome is not ReturnOutcome.refund:
            raise InvalidState(f"return {return_id} is {ret.status.value}; only an approved "
                               "refund can be paid")
        amount, order_id = ret.refund_amount or 0, ret.order_id
    if amount == 0:
        refund_id = None  # nothing to pay (e.g. the restocking fee took it all)
    else:
        refund_id = _pay(db, clock=clock, provider=provider, credit_notes=credit_notes,
                         return_id=return_id,
                         order_id=order_id, amount=amount, actor=actor)
    with db.transaction() as session:
        moved = session.execute(
            update(ReturnRequest).where(ReturnRequest.id == return_id,
                                        ReturnRequest.status == ReturnStatus.refunding)
            .values(status=ReturnStatus.refunded, refund_id=refund_id)).rowcount
        ret = get_return(session, return_id)
        if moved == 1:
            _event(session, clock, ret, "return.refunded", refund_id=refund_id,
                   refund_amount=amount, actor=actor)
        return ret


def _pay(db: Database, *, clock: Clock, provider: PaymentProvider,
         credit_notes: CreditNoteIssuer, return_id: int, order_id: int, amount: int,
         actor: str) -> int:
    key = f"return-{return_id}"

    def pay() -> int:
        return order_flows.refund_order(
            db, clock=clock, provider=provider, credit_notes=credit_notes,
            order_id=order_id, amount=amount,
            reason=f"return {return_id}", actor=actor, idempotency_key=key)

    try:
        return pay()
    except (IntegrityError, DomainError):
        # A concurrent caller opened this return's refund row first (we hit its unique key,
        # or, having waited on its order row lock, found nothing left to refund): resume
        # that row by its key. With no such row the error was real.
        with db.transaction() as session:
            opened = session.scalar(select(Refund.id).where(Refund.idempotency_key == key))
        if opened is None:
            raise
        return pay()

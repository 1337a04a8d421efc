"""Payment recovery as the worker and the CLI run it: ``orders.jobs.settle_stranded_payments``
with the hook that gives a failed order's units back to where they came from (a drop's slots
and buyer count, or a cart's stock rows and delivery window), then, with the Redis gate on,
each affected drop's gate keys rebuilt from PostgreSQL (a declined drop order's units are
back in the rows, and the gate should offer them again). Orders, carts and drops do not know
one another's hooks; this composite is where they meet, as ``checkout_policy`` is for prices
and windows."""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection

import redis
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.db import Database
from dropline.drops import service as drops
from dropline.drops.crowd.gate import DEFAULT_PREFIX, SyncGate, reconcile
from dropline.orders.flows import PaymentFailedHook, release_cart_order
from dropline.orders.jobs import RECOVERY_GRACE_SECONDS, Recovered, settle_stranded_payments
from dropline.orders.models import Order
from dropline.orders.policy import CheckoutPolicy
from dropline.payments.provider import PaymentProvider

__all__ = ["recover_payments", "units_back_hook"]


def units_back_hook(*, clock: Clock, policy: CheckoutPolicy) -> PaymentFailedHook:
    """A failed order's units go back: a drop order's to its drop, any other (a cart checkout,
    a counter sale) to its stock rows and delivery window."""
    def give_back(session: Session, order: Order) -> None:
        if drops.drop_of_order(session, order.id) is not None:
            drops.return_units_of_order(session, clock=clock, order=order)
        else:
            release_cart_order(session, order, clock=clock, policy=policy)

    return give_back


def recover_payments(
    db: Database, *, clock: Clock, provider: PaymentProvider, policy: CheckoutPolicy,
    redis_url: str | None, redis_prefix: str = DEFAULT_PREFIX,
    grace_seconds: int = RECOVERY_GRACE_SECONDS, order_ids: Collection[int] | None = None,
    progress: Callable[[int, int], None] | None = None, failpoint: str | None = None,
) -> Recovered:
    """One recovery pass (``orders.jobs``); the gate of every drop with an order settled
    failed here is rebuilt (Redis on PostgreSQL only)."""
    recovered = settle_stranded_payments(
        db, clock=clock, provider=provider, grace_seconds=grace_seconds, order_ids=order_ids,
        on_payment_failed=units_back_hook(clock=clock, policy=policy), progress=progress,
        failpoint=failpoint)
    if recovered.failed_orders and redis_url and not db.is_sqlite:
        with db.transaction() as session:
            drop_ids = {d for d in map(functools.partial(drops.drop_of_order, session),
                                       recovered.failed_orders) if d is not None}
        if drop_ids:
            gate = SyncGate(redis.Redis.from_url(redis_url, socket_timeout=5),
                            prefix=redis_prefix)
            try:
                for drop_id in sorted(drop_ids):
                    reconcile(db, gate, clock=clock, drop_id=drop_id)
            finally:
                gate.client.close()
    return recovered

"""Holds, caps, expiry and checkout from a hold, one shopper at a time (the races are in
test_races.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from dropline.adapters.payments import LocalCardProvider
from dropline.drops import flows, service
from dropline.drops.errors import (
    DropEnded,
    HoldAlreadyActive,
    HoldExpired,
    LimitReached,
    NotOpenYet,
    SoldOut,
)
from dropline.drops.models import DropBuyer, DropHold, DropSlot, HoldStatus
from dropline.errors import PaymentDeclined
from dropline.orders.models import Order, OrderStatus
from tests.builders import ADDRESS
from tests.drops.builders import CARD, DECLINED_CARD, LeadTimes, make_drop, make_shopper

Line = service.HoldLine


def remaining(db, drop_id: int) -> int:
    with db.transaction() as session:
        return session.scalar(select(func.sum(DropSlot.remaining))
                              .where(DropSlot.drop_id == drop_id))


def counted(db, drop_id: int, customer_id: int) -> tuple[int, bool] | None:
    with db.transaction() as session:
        buyer = session.get(DropBuyer, (drop_id, customer_id))
        return None if buyer is None else (buyer.units, buyer.holding)


def hold(db, clock, settings, world, shopper, quantity=1, variant=0, **kw):
    return flows.place_hold(db, clock=clock, settings=settings, drop_id=world.drop_id,
                            shopper=shopper, lines=[Line(world.variant_ids[variant], quantity)],
                            admission_token=None, **kw)


def pay(db, clock, settings, shopper, hold_id, reference, card=CARD):
    return flows.checkout_hold(db, clock=clock, settings=settings,
                               provider=LocalCardProvider(db.sessions, clock),
                               customer_id=shopper.customer_id, hold_id=hold_id, card=card,
                               shipping_address=ADDRESS, checkout_reference=reference)


def test_a_hold_takes_units_and_counts_them_against_the_person(db, clock, settings):
    world = make_drop(db, clock, cap=10, limit=2)
    shopper = make_shopper(db, clock)

    held = hold(db, clock, settings, world, shopper, quantity=2)

    assert held.status is HoldStatus.active and held.quantity == 2
    assert held.expires_at == clock.now() + timedelta(seconds=600)
    assert remaining(db, world.drop_id) == 8
    assert counted(db, world.drop_id, shopper.customer_id) == (2, True)


def test_paying_for_a_hold_writes_one_paid_order_whose_totals_reconcile(db, clock, settings):
    world = make_drop(db, clock, cap=10, limit=2, price=2250)
    shopper = make_shopper(db, clock)
    held = hold(db, clock, settings, world, shopper, quantity=2)

    order_id = pay(db, clock, settings, shopper, held.id, "ref-1")
    again = pay(db, clock, settings, shopper, held.id, "ref-1")  # a retry resumes

    assert again == order_id
    with db.transaction() as session:
        order = session.get(Order, order_id)
        assert order.status is OrderStatus.paid
        assert (order.subtotal_amount, order.shipping_amount, order.total_amount) == (4500, 395,
                                                                                    4895)
        assert session.get(DropHold, held.id).status is HoldStatus.converted
        assert session.get(DropHold, held.id).order_id == order_id
        assert session.scalar(select(func.count()).select_from(Order)) == 1
    assert remaining(db, world.drop_id) == 8
    assert counted(db, world.drop_id, shopper.customer_id) == (2, False)


def test_one_active_hold_per_person(db, clock, settings):
    world = make_drop(db, clock, cap=10, limit=5)
    shopper = make_shopper(db, clock)
    hold(db, clock, settings, world, shopper, quantity=1)

    with pytest.raises(HoldAlreadyActive):
        hold(db, clock, settings, world, shopper, quantity=1)
    assert remaining(db, world.drop_id) == 9


def test_the_per_person_limit_counts_paid_orders_and_holds(db, clock, settings):
    world = make_drop(db, clock, cap=10, limit=3)
    shopper = make_shopper(db, clock)
    first = hold(db, clock, settings, world, shopper, quantity=2)
    pay(db, clock, settings, shopper, first.id, "ref-1")

    with pytest.raises(LimitReached):
        hold(db, clock, settings, world, shopper, quantity=2)
    second = hold(db, clock, settings, world, shopper, quantity=1)

    assert second.quantity == 1
    assert counted(db, world.drop_id, shopper.customer_id) == (3, True)
    assert remaining(db, world.drop_id) == 7


def test_an_expired_hold_cannot_be_paid_and_its_units_return_without_a_sweeper(db, clock,
                                                                               settings):
    world = make_drop(db, clock, cap=2, limit=2, hold_ttl=60)
    first, second = make_shopper(db, clock), make_shopper(db, clock)
    lapsed = hold(db, clock, settings, world, first, quantity=2)
    assert remaining(db, world.drop_id) == 0

    clock.advance(seconds=61)
    with pytest.raises(HoldExpired):
        pay(db, clock, settings, first, lapsed.id, "too-late")
    # Nobody swept: the next shopper's missed take reclaims the lapsed hold and succeeds.
    taken = hold(db, clock, settings, world, second, quantity=2)

    assert taken.quantity == 2
    with db.transaction() as session:
        assert session.get(DropHold, lapsed.id).status is HoldStatus.expired
        assert session.scalar(select(func.count()).select_from(Order)) == 0
    assert counted(db, world.drop_id, first.customer_id) == (0, False)
    assert remaining(db, world.drop_id) == 0


def test_a_shoppers_own_lapsed_hold_does_not_block_their_next_one(db, clock, settings):
    world = make_drop(db, clock, cap=5, limit=2, hold_ttl=60)
    shopper = make_shopper(db, clock)
    hold(db, clock, settings, world, shopper, quantity=2)
    clock.advance(seconds=60)

    again = hold(db, clock, settings, world, shopper, quantity=2)

    assert again.status is HoldStatus.active
    assert remaining(db, world.drop_id) == 3
    assert counted(db, world.drop_id, shopper.customer_id) == (2, True)


def test_a_declined_card_returns_the_units_and_the_persons_allowance(db, clock, settings):
    world = make_drop(db, clock, cap=3, limit=2)
    shopper = make_shopper(db, clock)
    held = hold(db, clock, settings, world, shopper, quantity=2)

    with pytest.raises(PaymentDeclined):
        pay(db, clock, settings, shopper, held.id, "declined", card=DECLINED_CARD)

    assert remaining(db, world.drop_id) == 3
    assert counted(db, world.drop_id, shopper.customer_id) == (0, False)
    with db.transaction() as session:
        assert session.get(DropHold, held.id).status is HoldStatus.payment_failed
        assert session.scalar(select(Order.status)) is OrderStatus.payment_failed
    assert hold(db, clock, settings, world, shopper, quantity=2).quantity == 2


def test_releasing_a_hold_gives_the_units_back(db, clock, settings):
    world = make_drop(db, clock, cap=3, limit=2)
    shopper = make_shopper(db, clock)
    held = hold(db, clock, settings, world, shopper, quantity=2)

    flows.release_hold(db, clock=clock, customer_id=shopper.customer_id, hold_id=held.id)

    assert remaining(db, world.drop_id) == 3
    assert counted(db, world.drop_id, shopper.customer_id) == (0, False)


def test_sold_out_when_nothing_is_left_and_nothing_changes(db, clock, settings):
    world = make_drop(db, clock, cap=1, limit=2)
    hold(db, clock, settings, world, make_shopper(db, clock), quantity=1)
    late = make_shopper(db, clock)

    with pytest.raises(SoldOut):
        hold(db, clock, settings, world, late, quantity=1)
    assert counted(db, world.drop_id, late.customer_id) is None


def test_a_take_splits_over_slots_when_no_single_slot_has_enough(db, clock, settings):
    world = make_drop(db, clock, cap=4, limit=4, slots=4)  # one unit per slot

    held = hold(db, clock, settings, world, make_shopper(db, clock), quantity=3)

    assert sorted(qty for _, _, qty in held.takes) == [1, 1, 1]
    assert remaining(db, world.drop_id) == 1


def test_per_variant_caps_are_separate_pools(db, clock, settings):
    world = make_drop(db, clock, variants=2, variant_caps=[1, 5], limit=2)
    hold(db, clock, settings, world, make_shopper(db, clock), variant=0)

    with pytest.raises(SoldOut):
        hold(db, clock, settings, world, make_shopper(db, clock), variant=0)
    assert hold(db, clock, settings, world, make_shopper(db, clock), variant=1).quantity == 1


def test_early_access_refuses_non_members_before_the_public_start(db, clock, settings):
    world = make_drop(db, clock, starts_in=30, early_access_minutes=60)
    member, public = make_shopper(db, clock), make_shopper(db, clock)
    leads = LeadTimes({member.customer_id: 45})

    with pytest.raises(NotOpenYet):
        hold(db, clock, settings, world, public, early_access=leads)
    held = hold(db, clock, settings, world, member, early_access=leads)

    assert held.quantity == 1
    clock.advance(minutes=30)
    assert hold(db, clock, settings, world, public, early_access=leads).quantity == 1


def test_a_members_lead_is_capped_by_the_drops_early_access_window(db, clock, settings):
    world = make_drop(db, clock, starts_in=30, early_access_minutes=10)
    member = make_shopper(db, clock)

    with pytest.raises(NotOpenYet) as refused:
        hold(db, clock, settings, world, member, early_access=LeadTimes({member.customer_id: 45}))
    assert refused.value.extensions["retry_after"] == 20 * 60


def test_nothing_can_be_held_after_the_drop_ends(db, clock, settings):
    world = make_drop(db, clock, lasts=60)
    clock.advance(minutes=60)

    with pytest.raises(DropEnded):
        hold(db, clock, settings, world, make_shopper(db, clock))

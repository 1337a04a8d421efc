"""Rotating mixes for consumable tiers (issue 27): a mix chosen per period from a pool, never
repeating within the configured window, stock-aware, with the member's preferences and the
stock-out policy applied per item."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from dropline.catalog.models import Variant
from dropline.errors import InvalidInput
from dropline.memberships import jobs, mixes, service
from dropline.memberships.mix_rules import choose_mix, validate_pool
from dropline.memberships.models import Membership, MembershipCharge
from dropline.memberships.rules import OutOfStockPolicy
from dropline.orders.models import OrderLine
from tests.builders import make_location, make_product
from tests.memberships.support import CONFIG, ScriptedProvider, join, make_customer, make_tier


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 3), no_repeat=st.integers(0, 3), extra=st.integers(0, 4),
       seed=st.integers(0, 10**6))
def test_a_mix_never_repeats_an_item_within_the_window_whatever_the_stock(size, no_repeat,
                                                                          extra, seed):
    pool = list(range(100, 100 + size * (no_repeat + 1) + extra))
    rng = random.Random(seed)
    shipped: list[set[int]] = []
    for _ in range(24):
        stock = {v: rng.choice([0, 0, 1, 5]) for v in pool}
        choice = choose_mix(pool, size=size, no_repeat=no_repeat, recent=shipped[::-1],
                            available=stock, rng=rng)
        chosen = [*choice.in_stock, *choice.out_of_stock]
        assert len(chosen) == len(set(chosen)) == size
        assert not set(chosen) & {v for period in shipped[-no_repeat:] if no_repeat
                                  for v in period}
        assert all(stock[v] >= 1 for v in choice.in_stock)
        assert all(stock[v] == 0 for v in choice.out_of_stock)
        # Out of stock only when too few eligible items are in stock.
        eligible_in_stock = [v for v in pool if stock[v] >= 1 and not any(
            v in period for period in (shipped[-no_repeat:] if no_repeat else []))]
        assert len(choice.in_stock) == min(size, len(eligible_in_stock))
        shipped.append(set(choice.in_stock))


def test_preferences_come_first_and_an_avoided_item_only_when_nothing_else_is_left():
    pool, stock = [1, 2, 3, 4], {1: 5, 2: 5, 3: 5, 4: 5}
    preferred = choose_mix(pool, size=2, no_repeat=0, recent=[], available=stock,
                           prefer=[4, 3], rng=random.Random(1))
    avoiding = choose_mix(pool, size=2, no_repeat=1, recent=[{1, 2}], available=stock,
                          avoid=[3], rng=random.Random(1))

    assert sorted(preferred.in_stock) == [3, 4]
    assert sorted(avoiding.in_stock) == [3, 4]  # 1 and 2 just shipped: 3 is all that is left


def test_a_pool_too_small_for_the_window_is_refused_saying_what_it_needs():
    with pytest.raises(InvalidInput, match="needs a pool of at least 6 variants; this one "
                                           "has 5"):
        validate_pool([1, 2, 3, 4, 5], size=2, no_repeat=2)


def test_a_mix_tier_ships_a_fresh_mix_each_period_and_credits_the_missing_item(db, clock):
    make_location(db)
    variants = [make_product(db, clock, price=1000 + 100 * i, stock=stock, family="refills")[1]
                for i, stock in enumerate([5, 5, 5, 0])]  # the fourth is out of stock
    tier = make_tier(db, clock, price=2000, out_of_stock_policy=OutOfStockPolicy.credit)
    with db.transaction() as session:
        skus = [session.get(Variant, v).sku for v in variants]
        mixes.set_tier_mix(session, tier=service.get_tier(session, tier), skus=skus, size=2,
                           no_repeat=1)
    provider = ScriptedProvider()
    member = join(db, clock, provider, customer_id=make_customer(db, clock), tier_id=tier)
    for _ in range(4):
        with db.transaction() as session:
            clock.current = session.get(Membership, member).current_period_end
        jobs.renew_due(db, clock=clock, config=CONFIG, provider=provider)

    with db.transaction() as session:
        periods, applied = [], 0
        for charge in session.scalars(select(MembershipCharge).where(
                MembershipCharge.membership_id == member).order_by(MembershipCharge.id)):
            applied += charge.credit_applied
            periods.append(set(session.scalars(select(OrderLine.variant_id).where(
                OrderLine.order_id == charge.order_id))) if charge.order_id else set())
        credit = applied + session.get(Membership, member).credit_amount  # given, used or not
    assert len(periods) == 5
    for before, after in zip(periods, periods[1:], strict=False):
        assert not before & after  # never the same item two periods running
    assert all(variants[3] not in period for period in periods)  # never shipped: none in stock
    shipped = sum(len(p) for p in periods)
    missing = 2 * len(periods) - shipped
    assert missing >= 1 and credit == missing * 1300  # the fourth item's price, per miss


def test_a_member_says_what_to_prefer_and_refusals_name_the_problem(db, clock):
    make_location(db)
    variants = [make_product(db, clock, stock=5, family="refills")[1] for _ in range(4)]
    tier = make_tier(db, clock)
    customer = make_customer(db, clock)
    join(db, clock, ScriptedProvider(), customer_id=customer, tier_id=tier)
    with db.transaction() as session:
        skus = [session.get(Variant, v).sku for v in variants]
        with pytest.raises(InvalidInput, match="does not ship a mix"):
            mixes.set_mix_preferences(session, customer_id=customer, prefer=skus[:1], avoid=[])
        mixes.set_tier_mix(session, tier=service.get_tier(session, tier), skus=skus[:3],
                           size=1, no_repeat=1)
        saved = mixes.set_mix_preferences(session, customer_id=customer, prefer=skus[:1],
                                          avoid=skus[1:2])
        with pytest.raises(InvalidInput, match="not in your tier's mix"):
            mixes.set_mix_preferences(session, customer_id=customer, prefer=skus[3:], avoid=[])
        stored = service.require_live(session, customer_id=customer).mix_preferences
    assert saved == {"prefer": skus[:1], "avoid": skus[1:2]}
    assert stored == {"prefer": variants[:1], "avoid": variants[1:2]}

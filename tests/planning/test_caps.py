"""Cap sizing: the recommendation follows demand, and the trade-off is honest."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import numpy as np
import pytest

from dropline.planning.caps import (
    DemandSignals,
    DropOutcome,
    cap_options,
    choose_cap,
    demand_draws,
    fit_demand,
    size_cap,
)

MEMBERS = {"founding": 20, "utility": 40, "seasonal": 100}
RATES = {"founding": 0.5, "utility": 0.3, "seasonal": 0.1}


def _history(n: int = 10, seed: int = 0) -> list[DropOutcome]:
    """Drops whose true demand is 10 + 12 + 10 = 32 buyers (x1.5 units) plus 8 non-members."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        wanted = {s: int(rng.binomial(MEMBERS[s], RATES[s])) for s in MEMBERS}
        non = int(rng.poisson(8))
        buyers = sum(wanted.values()) + non
        units = round(buyers * 1.5)
        cap = int(units * rng.uniform(0.7, 1.3))
        out.append(DropOutcome(k, f"d{k}", date(2026, 1, 1) + timedelta(days=30 * k), cap,
                               min(units, cap), max(units - cap, 0), MEMBERS, wanted, non,
                               attention=100.0, waitlist_offered=10, waitlist_claimed=4,
                               units_by_variant={1: units // 3, 2: units - units // 3}))
    return out


def test_demand_is_fitted_from_wanted_not_from_capped_sales():
    model = fit_demand(_history(40))

    for segment, rate in RATES.items():
        assert model.rates[segment] == pytest.approx(rate, abs=0.05)
    assert model.units_per_buyer == pytest.approx(1.5, abs=0.05)
    assert model.waitlist_conversion == pytest.approx(0.4)
    mean = float(np.mean(demand_draws(model, DemandSignals(MEMBERS))))
    assert mean == pytest.approx((10 + 12 + 10 + 8) * 1.5, rel=0.1)


def test_more_members_or_a_longer_waitlist_raise_the_recommended_cap():
    model = fit_demand(_history())
    base = size_cap(model, DemandSignals(MEMBERS)).recommended.cap
    more_members = size_cap(model, DemandSignals(
        {s: n * 2 for s, n in MEMBERS.items()})).recommended.cap
    longer_waitlist = size_cap(model, DemandSignals(MEMBERS, waitlist=40)).recommended.cap
    fewer_members = size_cap(model, DemandSignals(
        {s: n // 2 for s, n in MEMBERS.items()})).recommended.cap

    assert fewer_members < base < more_members
    assert longer_waitlist > base
    # 40 waiting x 0.4 conversion x 1.5 units = 24 more units wanted on average.
    assert longer_waitlist - base == pytest.approx(24, abs=6)


def test_the_trade_off_is_monotone_and_the_choice_meets_the_target():
    draws = np.random.default_rng(1).poisson(50, 20_000)
    options = cap_options(draws)
    p = [o.p_sell_out for o in options]
    left = [o.expected_left_over for o in options]
    assert all(a >= b for a, b in itertools.pairwise(p))
    assert all(a <= b for a, b in itertools.pairwise(left))

    chosen = choose_cap(options, 0.8)
    assert chosen.p_sell_out >= 0.8
    assert options[chosen.cap].p_sell_out < 0.8  # the next cap up would miss the target
    assert chosen.cap == pytest.approx(44, abs=1)  # ~20th percentile of Poisson(50)


def test_a_stricter_target_gives_a_smaller_cap_with_less_left_over():
    model = fit_demand(_history())
    usual = size_cap(model, DemandSignals(MEMBERS), target=0.8)
    strict = size_cap(model, DemandSignals(MEMBERS), target=0.95)

    assert strict.recommended.cap < usual.recommended.cap
    assert strict.recommended.expected_left_over < usual.recommended.expected_left_over
    assert strict.recommended.expected_made_to_order > usual.recommended.expected_made_to_order


def test_variant_caps_follow_past_sales_and_made_to_order_ships_after_the_lead_time():
    history = _history()
    plan = size_cap(fit_demand(history), DemandSignals(MEMBERS), variant_ids=[1, 2],
                    history=history, drop_day=date(2026, 6, 1), lead_days=3)

    assert plan.by_variant[2].cap > plan.by_variant[1].cap  # variant 2 sold twice as much
    assert plan.made_to_order_ships == date(2026, 6, 4)
    assert "made-to-order, shipping 2026-06-04" in plan.reason

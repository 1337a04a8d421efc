"""The positioning plan: demand map -> targets per hub and variant -> transfer and
production-run proposals with lead times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dropline.fulfilment import positioning as P

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


def test_the_demand_map_adds_past_orders_members_and_the_drop_within_its_cap():
    shares = P.hub_shares({"hub-a": 30, "hub-b": 10}, {"hub-b": 20}, out_of_reach=40)
    assert shares == {"hub-a": 0.3, "hub-b": 0.3}  # 30 / 100 each; 40 % stays central
    daily = P.demand_map({("hub-a", 1): 14, ("hub-b", 1): 7}, past_days=7, shares=shares,
                         drop=P.DropDemand(estimate={2: 500}, cap={2: 200}))
    assert daily[("hub-a", 1)] == pytest.approx(2.0)
    assert daily[("hub-b", 1)] == pytest.approx(1.0)
    # The planner's 500 is capped at 200; each hub holds its 30 % share.
    assert daily[("hub-a", 2)] == pytest.approx(60.0)
    assert daily[("hub-b", 2)] == pytest.approx(60.0)


def test_targets_cover_the_days_with_safety_and_skip_the_slow_movers():
    targets = {(t.hub, t.variant_id): t for t in P.positioning_plan(
        {("hub-a", 1): 10.0, ("hub-a", 2): 0.3}, on_hand={("hub-a", 1): 5},
        in_transit={("hub-a", 1): 3}, cover_days=2, safety=1.3, min_units=2)}
    assert targets[("hub-a", 1)].target == 26  # ceil(10 * 2 * 1.3)
    assert targets[("hub-a", 1)].shortfall == 18  # 26 - 5 on hand - 3 on the way
    assert targets[("hub-a", 2)].target == 0  # 0.78 units is below the 2-unit minimum


def test_proposals_transfer_what_central_can_spare_and_make_the_rest_in_48_hours():
    targets = P.positioning_plan({("hub-a", 1): 10.0, ("hub-b", 1): 5.0}, on_hand={},
                                 cover_days=1, safety=1.0)
    drop_starts = NOW + timedelta(hours=24)
    moves = P.proposals(targets, central_code="central", central_on_hand={1: 14},
                        central_reserve={1: 2}, factory_code="factory", now=NOW,
                        needed_by=drop_starts)
    summary = [(m.kind, m.source, m.destination, m.quantity, m.lead_hours, m.late)
               for m in moves]
    assert summary == [
        ("transfer", "central", "hub-a", 10, 12.0, False),
        ("transfer", "central", "hub-b", 2, 12.0, False),
        ("production", "factory", "hub-b", 3, 48.0, True),  # after the drop starts
    ]
    assert moves[2].arrives_at == NOW + timedelta(hours=48)


def test_bad_plan_settings_are_refused():
    with pytest.raises(ValueError):
        P.positioning_plan({}, on_hand={}, cover_days=0)
    with pytest.raises(ValueError):
        P.demand_map({}, past_days=0)

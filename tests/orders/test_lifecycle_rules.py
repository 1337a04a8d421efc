"""The lifecycle's state machine, without a database."""

from __future__ import annotations

import pytest

from dropline.errors import InvalidInput
from dropline.orders.rules import (
    LineCancel,
    OrderStage,
    StageConflict,
    check_before_packing,
    next_stage,
    partial_cancel_amount,
)

S = OrderStage

LEGAL = [
    (S.paid, "allocated", S.allocated), (S.allocated, "picking", S.picking),
    (S.picking, "packed", S.packed), (S.packed, "shipped", S.shipped),
    (S.shipped, "delivered", S.delivered), (S.shipped, "delivery_failed", S.delivery_failed),
    (S.delivery_failed, "shipped", S.shipped), (S.delivery_failed, "returned", S.returned),
    (S.shipped, "returned", S.returned), (S.paid, "cancelled", S.cancelled),
    (S.allocated, "cancelled", S.cancelled), (S.picking, "cancelled", S.cancelled),
]


@pytest.mark.parametrize(("current", "action", "target"), LEGAL)
def test_a_legal_move_leads_to_its_stage(current, action, target):
    assert next_stage(current, action) is target


ILLEGAL = [(stage, action) for stage in S for action in
           ("allocated", "picking", "packed", "shipped", "delivered", "delivery_failed",
            "returned", "cancelled")
           if (stage, action) not in {(c, a) for c, a, _ in LEGAL}]


@pytest.mark.parametrize(("current", "action"), ILLEGAL)
def test_every_other_move_is_refused_with_the_current_stage(current, action):
    with pytest.raises(StageConflict) as refused:
        next_stage(current, action)
    assert refused.value.status == 409
    assert refused.value.extensions["current_stage"] == current.value


def test_nothing_leaves_a_final_stage():
    for final in (S.delivered, S.cancelled, S.returned):
        assert all((final, action) in ILLEGAL for action in ("shipped", "cancelled"))


def test_an_unknown_action_is_bad_input():
    with pytest.raises(InvalidInput):
        next_stage(S.paid, "teleported")


@pytest.mark.parametrize("stage", [S.packed, S.shipped, S.delivered, S.cancelled])
def test_address_changes_and_partial_cancels_stop_at_packing(stage):
    with pytest.raises(StageConflict):
        check_before_packing(stage, "changing the address")


def test_a_partial_cancel_refunds_the_units_at_the_price_paid():
    lines = [LineCancel(1, 4200, 3, 1, 2), LineCancel(2, 1000, 1, 0, 1)]
    assert partial_cancel_amount(lines, refundable=20_000) == 2 * 4200 + 1000


def test_a_partial_cancel_never_refunds_more_than_is_left():
    assert partial_cancel_amount([LineCancel(1, 4200, 2, 0, 2)], refundable=5000) == 5000


def test_cancelling_more_units_than_a_line_has_left_is_refused():
    with pytest.raises(InvalidInput, match="1 unit"):
        partial_cancel_amount([LineCancel(1, 4200, 3, 2, 2)], refundable=20_000)

"""Pure drop rules: states, the admission schedule, the fair pre-queue, slots, tokens."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from dropline.drops import rules
from dropline.drops.rules import DropState

START = datetime(2026, 4, 1, 18, 0, tzinfo=UTC)
END = START + timedelta(hours=2)


@pytest.mark.parametrize(("minutes", "remaining", "state"), [
    (-31, 10, DropState.scheduled),
    (-30, 10, DropState.early_access),
    (-1, 10, DropState.early_access),
    (0, 10, DropState.live),
    (0, 0, DropState.sold_out),
    (-5, 0, DropState.sold_out),
    (120, 10, DropState.ended),
    (120, 0, DropState.ended),
])
def test_the_state_follows_the_clock_and_the_units_left(minutes, remaining, state):
    assert rules.drop_state(now=START + timedelta(minutes=minutes), starts_at=START, ends_at=END,
                            early_access_minutes=30, remaining=remaining) is state


def test_without_early_access_a_drop_goes_from_scheduled_to_live():
    assert rules.drop_state(now=START - timedelta(seconds=1), starts_at=START, ends_at=END,
                            early_access_minutes=0, remaining=5) is DropState.scheduled


def test_a_members_opening_is_their_lead_capped_by_the_drop():
    assert rules.opening_time(starts_at=START, lead_minutes=45,
                              drop_early_access_minutes=30) == START - timedelta(minutes=30)
    assert rules.opening_time(starts_at=START, lead_minutes=10,
                              drop_early_access_minutes=30) == START - timedelta(minutes=10)
    assert rules.opening_time(starts_at=START, lead_minutes=0,
                              drop_early_access_minutes=30) == START


def test_admission_is_spaced_by_the_rate():
    opens = START
    assert rules.admission_time(opens_at=opens, position=1, per_minute=120) == START
    assert rules.admission_time(opens_at=opens, position=3, per_minute=120) == \
        START + timedelta(seconds=1)
    assert rules.admission_time(opens_at=opens, position=601, per_minute=600) == \
        START + timedelta(minutes=1)


def test_the_pre_queue_is_random_and_later_arrivals_follow_in_arrival_order():
    rng = random.Random(7)
    early = [rules.queue_sort_key(joined_at=START - timedelta(minutes=m), starts_at=START,
                                  rng=rng) for m in range(1, 200)]
    late = [rules.queue_sort_key(joined_at=START + timedelta(seconds=s), starts_at=START)
            for s in (0, 5, 60)]

    assert all(0 <= key < 1 for key in early)
    assert late == [1.0, 6.0, 61.0]
    # Arrival order does not decide the pre-queue: about half the pairs are swapped.
    swapped = sum(a > b for a, b in zip(early, early[1:], strict=False))
    assert 60 < swapped < 140


def test_a_first_joiner_is_not_favoured_by_the_shuffle():
    rng = random.Random(1)
    firsts = 0
    for _ in range(2000):
        keys = [rules.queue_sort_key(joined_at=START - timedelta(minutes=10 - i),
                                     starts_at=START, rng=rng) for i in range(4)]
        firsts += keys.index(min(keys)) == 0
    assert 400 < firsts < 600  # 1 in 4


def test_units_spread_evenly_and_splits_cover_the_quantity_in_slot_order():
    assert rules.spread_units(10, 4) == [3, 3, 2, 2]
    assert rules.slots_for(5, 32) == 5 and rules.slots_for(5000, 32) == 32
    assert rules.split_over_slots(3, [(4, 1), (0, 1), (2, 2)]) == [(0, 1), (2, 2)]
    assert rules.split_over_slots(5, [(0, 1), (1, 2)]) == []


def _claims(**changes):
    values = {"drop_id": 1, "customer_id": 2, "session": rules.session_binding("abc"), "n": 1,
              "expires": int((START + timedelta(minutes=10)).timestamp())}
    return rules.AdmissionClaims(**{**values, **changes})


def test_an_admission_token_verifies_only_for_its_drop_customer_session_and_time():
    token = rules.sign_admission(_claims(), secret="s")
    ok = dict(secret="s", drop_id=1, customer_id=2, session=rules.session_binding("abc"),
              now=START)

    assert rules.verify_admission(token, **ok).n == 1
    for change, message in [({"drop_id": 9}, "another drop"),
                            ({"customer_id": 9}, "cannot be shared"),
                            ({"session": rules.session_binding("xyz")}, "cannot be shared"),
                            ({"now": START + timedelta(minutes=10)}, "expired"),
                            ({"secret": "other"}, "signature")]:
        with pytest.raises(rules.BadToken, match=message):
            rules.verify_admission(token, **{**ok, **change})
    with pytest.raises(rules.BadToken, match="malformed"):
        rules.verify_admission("garbage", **ok)

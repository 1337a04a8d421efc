"""The one provider retry loop: a transient failure is retried with the same request, a
provider that never answers gives None (nothing decided), a decline is not retried."""

from __future__ import annotations

import pytest

from dropline.payments import charging
from dropline.payments.charging import PROVIDER_ATTEMPTS, charge_with_retries
from dropline.payments.provider import ChargeResult, ProviderUnavailable


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setattr(charging.time, "sleep", lambda seconds: None)


class FlakyCharge:
    def __init__(self, failures: int, result: ChargeResult) -> None:
        self.failures, self.result, self.calls = failures, result, 0

    def __call__(self) -> ChargeResult:
        self.calls += 1
        if self.calls <= self.failures:
            raise ProviderUnavailable("timeout")
        return self.result


def test_a_transient_failure_is_retried_until_the_provider_answers():
    charge = FlakyCharge(PROVIDER_ATTEMPTS - 1, ChargeResult("succeeded", "ch_1"))

    assert charge_with_retries(charge) == ChargeResult("succeeded", "ch_1")
    assert charge.calls == PROVIDER_ATTEMPTS


def test_a_provider_that_never_answers_gives_none_after_the_last_attempt():
    charge = FlakyCharge(PROVIDER_ATTEMPTS, ChargeResult("succeeded", "ch_1"))

    assert charge_with_retries(charge) is None
    assert charge.calls == PROVIDER_ATTEMPTS


def test_a_decline_is_an_answer_and_is_not_retried():
    charge = FlakyCharge(0, ChargeResult("declined", "ch_2", "card_declined"))

    assert charge_with_retries(charge) == ChargeResult("declined", "ch_2", "card_declined")
    assert charge.calls == 1

"""VAT number checkers: the offline built-in, and the VIES adapter against a fake VIES (an
httpx transport in the test: the machine has no internet, so VIES itself is never called)."""

from __future__ import annotations

import httpx
import pytest

from dropline.adapters.vies import ViesVatChecker
from dropline.bootstrap import build_vat_checker
from dropline.config import Settings
from dropline.errors import InvalidInput, ServiceUnavailable
from dropline.tax.service import OfflineVatChecker

GOOD_DE = "DE136695976"  # valid format and check digits


def vies(answers: dict[str, tuple[int, dict]], *, fail_open: bool = True,
         asked: list[str] | None = None) -> ViesVatChecker:
    def handle(request: httpx.Request) -> httpx.Response:
        if asked is not None:
            asked.append(request.url.path)
        status, body = answers.get(request.url.path, (500, {}))
        return httpx.Response(status, json=body)

    return ViesVatChecker(offline=OfflineVatChecker(), fail_open=fail_open,
                          client=httpx.Client(transport=httpx.MockTransport(handle)),
                          base_url="https://vies.test/rest-api")


PATH = "/rest-api/ms/DE/vat/136695976"


def test_the_offline_checker_takes_format_and_check_digits_only():
    checked = OfflineVatChecker().check("de 136 695 976")
    assert (checked, checked.country) == (GOOD_DE, "DE")
    with pytest.raises(InvalidInput) as refused:
        OfflineVatChecker().check("DE136695977")  # one check digit off
    assert refused.value.extensions["field"] == "vat_number"


def test_vies_confirms_a_registered_number_and_refuses_an_unregistered_one():
    registered = vies({PATH: (200, {"isValid": True, "userError": "VALID"})})
    unregistered = vies({PATH: (200, {"isValid": False, "userError": "INVALID"})})

    assert registered.check(GOOD_DE) == GOOD_DE
    with pytest.raises(InvalidInput) as refused:
        unregistered.check(GOOD_DE)
    assert "not registered for VAT in DE (VIES)" in refused.value.detail


def test_a_malformed_or_uk_number_never_reaches_vies():
    asked: list[str] = []
    checker = vies({}, asked=asked)
    with pytest.raises(InvalidInput):
        checker.check("DE123")
    assert checker.check("GB980780684").country == "GB"  # not in VIES since 2021
    assert asked == []


def test_vies_down_keeps_the_offline_answer_or_refuses_with_retry_after_when_closed():
    down = {PATH: (200, {"isValid": False, "userError": "MS_UNAVAILABLE"})}
    assert vies(down).check(GOOD_DE) == GOOD_DE  # fail open: the offline answer stands
    with pytest.raises(ServiceUnavailable) as closed:
        vies({}, fail_open=False).check(GOOD_DE)  # a 500 from VIES
    assert closed.value.extensions["retry_after"] == 60


def test_the_root_picks_the_checker_from_the_setting():
    assert isinstance(build_vat_checker(Settings()), OfflineVatChecker)
    assert isinstance(build_vat_checker(Settings(shop={"vat_checker": "vies"})),
                      ViesVatChecker)

"""VIES, the European Commission's VAT Information Exchange System, as a ``VatNumberChecker``
(``dropline.tax.ports``): an EU number is checked offline first (format and check digits, no
call for a malformed one), then VIES is asked whether it is registered now.

The REST API: ``GET {base}/ms/{country}/vat/{number}`` answers JSON with ``isValid`` (some
deployments of the same service name it ``valid``) and ``userError`` (``VALID``, ``INVALID``,
or why it could not tell: ``MS_UNAVAILABLE``, ``TIMEOUT``, ``SERVICE_UNAVAILABLE``,
``MS_MAX_CONCURRENT_REQ`` ...). Greece is ``EL`` in VIES. UK numbers are not in VIES since
2021 (HMRC runs its own service, not wired here): they get the offline check only.

VIES is often down for one member state for minutes at a time. ``fail_open`` (the default)
keeps the offline answer then and logs it, so a sale is not refused because a tax office's
server is; closed, the checkout answers 503 with ``Retry-After``."""

from __future__ import annotations

import logging

import httpx

from dropline.errors import InvalidInput, ServiceUnavailable
from dropline.tax.ports import VatNumber, VatNumberChecker

__all__ = ["VIES_URL", "ViesVatChecker"]

VIES_URL = "https://ec.europa.eu/taxation_customs/vies/rest-api"
log = logging.getLogger("dropline.tax")


class ViesVatChecker:
    def __init__(self, *, offline: VatNumberChecker, client: httpx.Client | None = None,
                 base_url: str = VIES_URL, timeout: float = 5.0, fail_open: bool = True
                 ) -> None:
        self._offline = offline
        self._client = client or httpx.Client(timeout=timeout)
        self._base = base_url.rstrip("/")
        self._fail_open = fail_open

    def check(self, number: str) -> VatNumber:
        checked = self._offline.check(number)
        if checked.country == "GB":
            return checked
        prefix, digits = checked[:2], checked[2:]  # EL stays EL for VIES
        try:
            response = self._client.get(f"{self._base}/ms/{prefix}/vat/{digits}")
            response.raise_for_status()
            answer = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            return self._cannot_tell(checked, f"VIES did not answer ({exc.__class__.__name__})")
        valid = answer.get("isValid", answer.get("valid"))
        if valid is True:
            return checked
        error = str(answer.get("userError") or "")
        if valid is False and error in ("", "VALID", "INVALID"):
            raise InvalidInput(f"{number!r} is not registered for VAT in {checked.country} "
                               "(VIES)", field="vat_number")
        return self._cannot_tell(checked, f"VIES could not tell ({error or 'no answer'})")

    def _cannot_tell(self, checked: VatNumber, why: str) -> VatNumber:
        if self._fail_open:
            log.warning("VAT number %s: %s; its format and check digits are valid", checked,
                        why)
            return checked
        raise ServiceUnavailable(f"{why}; retry in a minute", retry_after=60)

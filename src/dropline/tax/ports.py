"""The VAT number checker port: whether a business buyer's VAT number may make a sale
reverse-charged. The built-in checker is offline (``tax.service.OfflineVatChecker``: format
and check digits, python-stdnum); ``dropline.adapters.vies`` asks the European Commission's
VIES whether an EU number is registered. The composition root picks one
(``DROPLINE_SHOP_VAT_CHECKER``)."""

from __future__ import annotations

from typing import Protocol

__all__ = ["VatNumber", "VatNumberChecker"]


class VatNumber(str):
    """A VAT number checked by its format and check digits, compact (``DE136695976``)."""

    country: str


class VatNumberChecker(Protocol):
    def check(self, number: str) -> VatNumber:
        """The number, compact with its country; raises ``InvalidInput`` naming the field
        ``vat_number`` when it is not valid, ``ServiceUnavailable`` when the checker cannot
        tell now."""
        ...

"""Why a discount code is refused. Each refusal has its own problem type, so a client can tell
an expired code from a used-up one, and carries ``field="discount_code"`` so a form shows the
message beside the code's field. Nothing is changed by a refused code."""

from __future__ import annotations

from dropline.errors import Conflict, InvalidInput

__all__ = [
    "DiscountCapReached",
    "DiscountCustomerCapReached",
    "DiscountDisabled",
    "DiscountExpired",
    "DiscountNotApplicable",
    "DiscountNotBetter",
    "DiscountNotStarted",
    "DiscountUnknown",
]


class DiscountUnknown(InvalidInput):
    slug = "discount-unknown"
    title = "No such discount code"


class DiscountDisabled(InvalidInput):
    slug = "discount-disabled"
    title = "This discount code has been withdrawn"


class DiscountNotStarted(InvalidInput):
    slug = "discount-not-started"
    title = "This discount code is not valid yet"


class DiscountExpired(InvalidInput):
    slug = "discount-expired"
    title = "This discount code has expired"


class DiscountNotApplicable(InvalidInput):
    slug = "discount-not-applicable"
    title = "This discount code does not apply to this cart"


class DiscountNotBetter(DiscountNotApplicable):
    """A code that does not stack with member prices, worth less than the member prices."""

    slug = "discount-not-better-than-member-price"
    title = "Your member prices already save more than this code"


class DiscountCapReached(Conflict):
    slug = "discount-cap-reached"
    title = "This discount code has been used up"


class DiscountCustomerCapReached(Conflict):
    slug = "discount-customer-cap-reached"
    title = "You have already used this discount code as often as it allows"

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from dropline.schemas import Email, Input, Output

# Where a customer came from: a short token (instagram, pop-up, referral ...), the same whether
# it is sent at sign-up or remembered from a storefront link's utm_source.
SOURCE_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
CAMPAIGN_MAX_LENGTH = 120


class CustomerCreate(Input):
    email: Email
    password: str = Field(min_length=10, max_length=200,
                          description="at least 10 characters")
    name: str = Field("", max_length=120)
    acquisition_source: str | None = Field(
        None, max_length=64, pattern=SOURCE_PATTERN,
        description="where the customer came from (instagram, pop-up, referral ...); "
                    "defaults to the utm_source seen on the storefront, else 'direct'")
    acquisition_campaign: str | None = Field(None, max_length=CAMPAIGN_MAX_LENGTH)


class SessionCreate(Input):
    email: Email
    password: str = Field(min_length=1, max_length=200)


class CustomerRead(Output):
    id: int
    email: str
    name: str
    acquisition_source: str
    acquisition_campaign: str
    created_at: datetime


class SignUpAccepted(Output):
    detail: str = Field(description="the same for every address: whether it already had an "
                                    "account is told only to its owner, by email")


class SignUpConfirm(Input):
    token: str = Field(min_length=1, max_length=200, description="from the emailed link")


class PasswordChange(Input):
    current_password: str = Field(min_length=1, max_length=200)
    new_password: str = Field(min_length=10, max_length=200,
                              description="at least 10 characters, not a common password")


class PasswordResetRequest(Input):
    email: Email


class PasswordResetAccepted(Output):
    detail: str


class PasswordResetComplete(Input):
    token: str = Field(min_length=1, max_length=200, description="from the emailed link")
    new_password: str = Field(min_length=10, max_length=200,
                              description="at least 10 characters, not a common password")

from __future__ import annotations

from pydantic import Field

from dropline.schemas import Input, Output


class MailPreferencesUpdate(Input):
    marketing: bool = Field(description="news of drops and early access by mail")


class MailPreferencesRead(Output):
    # Transactional mail (orders, waitlist offers, membership notices) is always sent.
    marketing: bool = Field(description="news of drops and early access by mail")

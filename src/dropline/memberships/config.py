"""The memberships' configuration, from the ``memberships`` and ``shop`` sections of the settings
(``DROPLINE_MEMBERS_*``): the dunning schedule and where consumables ship from."""

from __future__ import annotations

from dataclasses import dataclass, field

from dropline.config import Settings
from dropline.memberships.rules import DunningPolicy


@dataclass(frozen=True)
class MembershipConfig:
    dunning: DunningPolicy = field(default_factory=DunningPolicy)
    location_code: str = "central"  # consumable orders take stock here
    charge_lease_seconds: int = 30


def membership_config(settings: Settings) -> MembershipConfig:
    env = settings.memberships
    return MembershipConfig(
        dunning=DunningPolicy(retries=env.dunning_retries,
                              retry_spacing_hours=env.dunning_retry_spacing_hours,
                              grace_hours=env.dunning_grace_hours),
        location_code=settings.shop.default_location_code,
        charge_lease_seconds=env.charge_lease_seconds,
    )

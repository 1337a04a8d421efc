"""Membership settings read from the environment (``DROPLINE_MEMBERS_*``), kept here rather than
in the shared ``config.py``: the dunning schedule and where consumables ship from."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic_settings import BaseSettings, SettingsConfigDict

from dropline.config import Settings
from dropline.memberships.rules import DunningPolicy


class MembersEnv(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DROPLINE_MEMBERS_", env_file=".env",
                                      extra="ignore")

    dunning_retries: int = 4
    dunning_retry_spacing_hours: int = 12
    dunning_grace_hours: int = 48
    # A claimed charge attempt is presumed crashed after this and may be resumed (same key).
    charge_lease_seconds: int = 30


@dataclass(frozen=True)
class MembershipConfig:
    dunning: DunningPolicy = field(default_factory=DunningPolicy)
    location_code: str = "central"  # consumable orders take stock here
    charge_lease_seconds: int = 30


def membership_config(settings: Settings, env: MembersEnv | None = None) -> MembershipConfig:
    env = env or MembersEnv()
    return MembershipConfig(
        dunning=DunningPolicy(retries=env.dunning_retries,
                              retry_spacing_hours=env.dunning_retry_spacing_hours,
                              grace_hours=env.dunning_grace_hours),
        location_code=settings.default_location_code,
        charge_lease_seconds=env.charge_lease_seconds,
    )

"""The drop endpoints' rate limits, per signed-in identity and per IP (counted by the app's
limiter, ``dropline.ratelimit``)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

from dropline.ratelimit import RateLimiter, make_limiter


class DropLimitSettings(BaseSettings):
    """``DROPLINE_DROPS_*``: requests allowed per window, per signed-in identity and per IP;
    ``redis_url`` shares the counters between workers (``DROPLINE_DROPS_REDIS_URL``)."""

    model_config = SettingsConfigDict(env_prefix="DROPLINE_DROPS_", extra="ignore")

    identity_per_minute: int = 120
    ip_per_minute: int = 600
    redis_url: str | None = None


def make_drop_limiter(settings: DropLimitSettings) -> RateLimiter:
    return make_limiter(settings.redis_url)

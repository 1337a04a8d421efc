"""The drop endpoints' rate limits, per signed-in identity and per IP: ``settings.drops`` holds
the limits, and the app's one limiter (``dropline.ratelimit``) counts them."""

from __future__ import annotations

from dropline.config import DropsSettings
from dropline.ratelimit import RateLimiter, make_limiter


def make_drop_limiter(limits: DropsSettings) -> RateLimiter:
    return make_limiter(limits.redis_url)

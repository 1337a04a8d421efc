"""The engine of an app: its ``HotPath`` built from the app's state, once per worker, and the
hooks the drop routes call so the engine's Redis state follows what the database path did.

The app's state holds the services (``app.state.services``), the drop limiter and its limits
(``limiter_for``), the early-access seam (``early_access_for``; tests and a memberships wiring
may set ``app.state.drops_early_access``) and, for tests, a Redis key prefix
(``app.state.drops_redis_prefix``). Every hook is a no-op when the engine is off (no Redis URL,
or SQLite).
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy.orm import Session

from dropline.config import DropsSettings
from dropline.drops import service
from dropline.drops.crowd import gate as gates
from dropline.drops.crowd.worker_state import HotPath
from dropline.drops.limits import make_drop_limiter
from dropline.orders.api import order_read
from dropline.ratelimit import RateLimiter

_state_lock = threading.Lock()
_hot_lock = threading.Lock()


def limiter_for(state: Any) -> tuple[RateLimiter, DropsSettings]:
    """The worker's drop rate limiter (shared by the routes and the fast lane) and its limits."""
    if getattr(state, "drops_limiter", None) is None:
        with _state_lock:
            if getattr(state, "drops_limiter", None) is None:
                limits = state.services.settings.drops
                state.drops_limits = limits
                state.drops_limiter = make_drop_limiter(limits)
    return state.drops_limiter, state.drops_limits


def early_access_for(app_state: Any) -> service.EarlyAccess:
    """Tests (and a future memberships wiring) may set ``app.state.drops_early_access``."""
    # State's own dict: getattr on a missing name would raise and catch an AttributeError on
    # every purchase (the fast lane asks each time).
    return app_state._state.get("drops_early_access") or service.membership_early_access


def _order_json(session: Session, order_id: int) -> Any:
    return order_read(session, order_id)


def hot_path(app_state: Any) -> HotPath | None:
    """The worker's HotPath, or None when the engine is off (no Redis URL, or SQLite)."""
    hot = getattr(app_state, "drops_hot", None)
    if hot is not None or getattr(app_state, "drops_hot_off", False):
        return hot
    services = app_state.services
    with _hot_lock:
        if getattr(app_state, "drops_hot", None) is None:
            url = services.settings.redis.url
            if not url or services.db.is_sqlite:
                app_state.drops_hot_off = True
                return None
            app_state.drops_hot = HotPath(
                db=services.db, clock=services.clock, settings=services.settings,
                provider=services.payments, redis_url=url,
                prefix=getattr(app_state, "drops_redis_prefix", gates.DEFAULT_PREFIX),
                admission_limits=lambda: limiter_for(app_state),
                early_access=lambda: early_access_for(app_state), read_order=_order_json,
                counters=getattr(app_state, "drop_counters", None))
    return app_state.drops_hot


def prepare(app_state: Any, drop_id: int) -> None:
    """A shopper was admitted to the drop, so a purchase will follow within seconds: the
    worker's hot path is set up and the drop's gate keys built now, once per worker and drop
    per ``worker_state.PREPARED_SECONDS``, rather than by the crowd's first purchases, which
    would all find them missing and wait for one rebuild. Blocking (the admission route runs in
    a thread; the fast lane awaits ``HotPath.prepared``)."""
    hot = hot_path(app_state)
    if hot is not None and hot.due_for_prepare(drop_id):
        hot.prepare_now(drop_id)


def forget_drop(app_state: Any, drop_id: int) -> None:
    """After a reschedule or restock has committed: the drop's Redis state is dropped, so the
    next purchase rebuilds it from PostgreSQL; other workers see the new facts within
    ``worker_state.DROP_CACHE_SECONDS``."""
    hot = hot_path(app_state)
    if hot is not None:
        hot.forget(drop_id)


def gate_hold_placed(app_state: Any, hold: Any) -> None:
    """A hold committed through the database path is entered in the gate
    (``HotPath.hold_placed``), so both paths draw from one count."""
    hot = hot_path(app_state)
    if hot is not None:
        hot.hold_placed(hold)


def gate_hold_closed(app_state: Any, hold: Any, *, units_back: bool) -> None:
    """A hold was paid for, or released / declined (``units_back``): ``HotPath.hold_closed``."""
    hot = hot_path(app_state)
    if hot is not None:
        hot.hold_closed(hold, units_back=units_back)

"""Named points where a crash test stops the process, so that it can be killed exactly there.

A process whose ``settings.testing.failpoint`` names a point blocks the thread that reaches it
for good (it never returns); the test, which watches for the point's visible effect (units
taken in Redis, a charge in the provider's ledger), then kills the process with SIGKILL. Unset
in production, where ``stop_at`` is one comparison.

    drops.after_take     the gate took a purchase's units; its order is not written yet
    drops.after_charge   a batch of drop orders is charged; its settlement has not run
"""

from __future__ import annotations

import logging
import threading

__all__ = ["AFTER_CHARGE", "AFTER_TAKE", "stop_at"]

AFTER_TAKE = "drops.after_take"
AFTER_CHARGE = "drops.after_charge"
log = logging.getLogger("dropline.failpoints")


def stop_at(point: str, configured: str | None) -> None:
    """Blocks for good when ``configured`` (the setting) names ``point``."""
    if configured is not None and configured == point:
        log.warning("failpoint %s reached: stopping here until the process is killed", point)
        threading.Event().wait()

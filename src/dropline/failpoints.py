"""Named points where a crash test stops the process, so that it can be killed exactly there.

A process whose ``settings.testing.failpoint`` names a point blocks the thread that reaches it
for good (it never returns); the test, which watches for the point's visible effect (units
taken in Redis, a charge in the provider's ledger), then kills the process with SIGKILL. Unset
in production, where ``stop_at`` is one comparison.

    drops.after_take          the gate took a purchase's units; its order is not written yet
    drops.after_charge        a batch of drop orders is charged; its settlement has not run
    memberships.after_charge  a renewal attempt is charged; its settlement has not run
    webhooks.after_send       the receiver accepted a delivery; it is not marked delivered yet
    fulfilment.after_solve    a window's routes are solved; the plan is not stored yet
    payments.after_lookup     the recovery job found a stranded payment's charge; the order
                              is not settled yet
"""

from __future__ import annotations

import logging
import threading

__all__ = ["AFTER_CHARGE", "AFTER_LOOKUP", "AFTER_RENEWAL_CHARGE", "AFTER_SEND", "AFTER_SOLVE",
           "AFTER_TAKE", "stop_at"]

AFTER_TAKE = "drops.after_take"
AFTER_CHARGE = "drops.after_charge"
AFTER_RENEWAL_CHARGE = "memberships.after_charge"
AFTER_SEND = "webhooks.after_send"
AFTER_SOLVE = "fulfilment.after_solve"
AFTER_LOOKUP = "payments.after_lookup"
log = logging.getLogger("dropline.failpoints")


def stop_at(point: str, configured: str | None) -> None:
    """Blocks for good when ``configured`` (the setting) names ``point``."""
    if configured is not None and configured == point:
        log.warning("failpoint %s reached: stopping here until the process is killed", point)
        threading.Event().wait()

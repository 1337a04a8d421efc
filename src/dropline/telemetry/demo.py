"""Demo step: the tags telemetry cuts by that the demo's order history lacks.

* **Drop types.** The demo's history predates the drop engine, so six past drops are
  re-enacted as tags: orders placed during a drop's two weeks that contain its family carry
  ``drop_type`` in their order events (as the drop engine's orders will), so CAC ceilings have
  drop types as well as the product-family fallback.
* **Subsidised first deliveries.** The brand ran a free-first-delivery trial from 330 to 120
  days ago: half of the customers whose first order in that time was delivered (not bought at
  a pop-up) had it subsidised, at random, so the subsidy decision has both groups to compare.
  Assignment is random and nothing else changes: the demo does not invent an effect.

Each tag is recorded as a ``telemetry.order_tagged`` event on the order, at the order's
time: the order events themselves stay exactly what checkout writes. ``telemetry.service``
reads ``drop_type`` and ``delivery_subsidised`` from any event whose subject is the order,
so the same code reads the drop engine's and fulfilment's own events when they carry them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from dropline.demo import DemoContext, demo_step
from dropline.demo.steps import PendingEvent

ORDER_EVENTS = ("order.created", "order.paid", "order.refunded")
TAG_EVENT = "telemetry.order_tagged"
# (days ago the drop opened, drop type, family it released)
DROPS = ((320, "limited-edition", "eau-de-parfum"), (270, "seasonal", "candles"),
         (200, "collab", "candles"), (150, "limited-edition", "eau-de-parfum"),
         (90, "seasonal", "discovery-sets"), (40, "collab", "eau-de-parfum"))
DROP_DAYS = 14
TRIAL = (330, 120)  # days ago: the free-first-delivery trial ran between these
SUBSIDY_SHARE = 0.5


@demo_step("telemetry", order=950, label="Telemetry tags (drops, delivery subsidy)")
def seed_telemetry_tags(ctx: DemoContext) -> str:
    by_order: dict[int, list[PendingEvent]] = {}
    first: dict[int, tuple[Any, int, dict[str, Any]]] = {}  # customer -> (time, order, payload)
    for event in ctx.events:
        if event.type not in ORDER_EVENTS or event.subject_type != "order":
            continue
        by_order.setdefault(int(event.subject_id), []).append(event)
        if event.type == "order.created" and event.customer_id is not None:
            seen = first.get(event.customer_id)
            if seen is None or (event.occurred_at, int(event.subject_id)) < seen[:2]:
                first[event.customer_id] = (event.occurred_at, int(event.subject_id),
                                            event.payload)
    windows = [(ctx.now - timedelta(days=ago), kind, family) for ago, kind, family in DROPS]
    tagged = 0
    for order_id, events in sorted(by_order.items()):
        created = min(e.occurred_at for e in events)
        families = events[0].payload.get("product_families", [])
        for opened, kind, family in windows:
            if opened <= created < opened + timedelta(days=DROP_DAYS) and family in families:
                created_event = next(e for e in events if e.type == "order.created")
                _tag(ctx, created_event, {"drop_type": kind, "drop_family": family})
                tagged += 1
                break
    trial_start = ctx.now - timedelta(days=TRIAL[0])
    trial_end = ctx.now - timedelta(days=TRIAL[1])
    subsidised = 0
    for _customer, (at, order_id, payload) in sorted(first.items()):
        if not trial_start <= at < trial_end or payload.get("fulfilment_path") == "pop-up":
            continue
        if ctx.rng.random() < SUBSIDY_SHARE:
            created = next(e for e in by_order[order_id] if e.type == "order.created")
            _tag(ctx, created, {"delivery_subsidised": True,
                                "reason": "free-first-delivery trial"})
            subsidised += 1
    return f"{tagged} drop orders tagged, {subsidised} first deliveries subsidised"


def _tag(ctx: DemoContext, order_event: PendingEvent, tags: dict[str, object]) -> None:
    ctx.record_later(at=order_event.occurred_at, type=TAG_EVENT, subject_type="order",
                     subject_id=order_event.subject_id, customer_id=order_event.customer_id,
                     payload={"order_id": int(order_event.subject_id), **tags})

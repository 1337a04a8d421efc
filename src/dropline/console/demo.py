"""Demo step that makes the fulfilment page, its route sheets, the decision-tree playbook and
the checklist's "routing rule tested" meaningful: today's deliveries (decided by the brand's
rules, booked into today's windows, routed). See ``demo_deliveries``.

The drops the console and the drop runbook show come from the planning module's demo step
(eleven past drops with waiting rooms, orders and waitlists, one scheduled), and members in
each segment from memberships' step: this step does not repeat them.
"""

from __future__ import annotations

from dropline.console.demo_deliveries import seed_deliveries
from dropline.demo import DemoContext, demo_step


@demo_step("console-deliveries", order=980, label="Today's deliveries")
def seed_console_deliveries(ctx: DemoContext) -> str:
    return seed_deliveries(ctx)

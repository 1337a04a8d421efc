"""``dropline demo``: a believable demo brand, Ember & Fig (a London perfumer), in one command.

``seed_demo(db, settings=..., customers=300, seed=7, console=...)`` fills an empty shop with
the brand's catalog (eau de parfum, candles, refills, discovery sets and a graded line of
restored diffusers), its locations with stock (Park Royal warehouse, four micro-hubs, the
Bermondsey micro-factory, two pop-ups), a year of customers with acquisition sources and
campaigns, their paid (and sometimes refunded) orders, and the domain events telemetry reads,
each at its historical time. It runs in one transaction: all of it is written, or none.
Run it again and it finds its marker event (``demo.seeded``), changes nothing and returns the
summary; a database holding any other shop is refused.

The same ``seed`` gives the same shop, relative to the clock's "now".

How it is built
---------------
``brand.py`` (the brand as data) and ``history.py`` (shoppers and their orders, a BG/NBD-like
process) are pure; the steps that write them are ``catalog.py``, ``access.py`` and
``shoppers.py``; ``seed.py`` runs the steps. Built-in steps, in order:

    100 catalog    200 locations    300 admin    400 customers    500 orders

Adding a step (memberships, drops, fulfilment ...)
--------------------------------------------------
Put a module named ``demo.py`` in your domain package; ``seed_demo`` imports every
``dropline.<domain>.demo`` it finds, so nothing here needs editing::

    # src/dropline/memberships/demo.py
    from dropline.demo import DemoContext, demo_step

    @demo_step("memberships", order=450, label="Memberships")
    def seed_memberships(ctx: DemoContext) -> str:
        loyal = [cid for cid, shopper in ctx.ids.customers.items() if ctx.rng.random() < 0.2]
        for customer_id in loyal:
            ...  # call your service with ctx.session (flush, never commit)
            ctx.record_later(at=..., type="membership.started", subject_type="membership",
                             subject_id=..., customer_id=customer_id, payload={...})
        ctx.ids.extra["memberships"] = loyal
        return f"{len(loyal)} members"

What a step gets (``DemoContext``): the ``session`` (shared, one transaction: flush, never
commit), ``db``, ``clock`` and ``now`` (place history before it), ``settings``, ``seed`` and
``customers`` (the CLI's arguments), its own ``rng`` (seeded from the seed and the step's
name, so a new step never changes what the others invent), ``ids`` (what earlier steps created:
families, products, variants by SKU, locations by code, customers with their invented
``history.Shopper``, orders, the admin user; ``ids.extra`` for yours), ``summary`` (lines to add
to the printed table) and ``record_later`` (queue a domain event at its historical time; all
queued events are written after the last step, oldest first). Pick an ``order`` after the steps
whose ids you need; the returned string is printed next to a tick.
"""

from dropline.demo import access, catalog, shoppers  # noqa: F401 - registers the built-in steps
from dropline.demo.seed import seed_demo
from dropline.demo.steps import DemoContext, DemoIds, DemoStep, demo_step, registered_steps

__all__ = ["DemoContext", "DemoIds", "DemoStep", "demo_step", "registered_steps", "seed_demo"]

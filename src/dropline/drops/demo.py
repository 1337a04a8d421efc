"""Demo step: a story for each of Ember & Fig's drops, and a note beside each drop variant
(the upcoming Ember Oud gets its own; past drops a story in the brand's voice)."""

from __future__ import annotations

from sqlalchemy import select

from dropline.demo import DemoContext, demo_step
from dropline.drops import service, stories
from dropline.drops.models import Drop

EMBER_OUD = """## Smoke, resin, a winter night

Ember Oud began with a bonfire on Bermondsey Wall: **charred cedar**, a thread of *oud* and
the sweetness of burnt sugar on the wind. We macerated each batch for six weeks at our
micro-factory, and there is only as much as the still gave us.

- Top: pink pepper, bergamot
- Heart: smoked cedar, labdanum
- Base: oud accord, vanilla, ambergris

Members get thirty minutes first. Two bottles each, so more of you get one.
"""

PAST = """## {name}

A small batch, blended and bottled at our Bermondsey micro-factory for this drop only. When
it is gone, it is gone: we note what you loved and it shapes the next one.
"""

NOTES = ("Numbered by hand.", "Poured this month.", "The last of this batch.")


@demo_step("drop-stories", order=960, label="Drop stories")
def tell_drop_stories(ctx: DemoContext) -> str:
    told = 0
    for drop in ctx.session.scalars(select(Drop).order_by(Drop.id)):
        variants = service.drop_variants(ctx.session, drop.id)
        stories.set_story(
            ctx.session, clock=ctx.clock, drop_id=drop.id,
            story=EMBER_OUD if drop.slug == "ember-oud" else PAST.format(name=drop.name),
            notes={v.variant_id: NOTES[i % len(NOTES)] for i, v in enumerate(variants)})
        told += 1
    return f"{told} drop stories"

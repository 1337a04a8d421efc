"""Demo step: pictures for Ember & Fig, drawn here at seed time with Pillow (nothing is
downloaded and no image is committed): a label-like card per product, drop and membership
tier, coloured by family, stored through the process's media store like any upload."""

from __future__ import annotations

import hashlib
import io

from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import select

from dropline.catalog.models import Product, ProductFamily
from dropline.demo import DemoContext, demo_step
from dropline.demo.brand import BRAND_SHORT_NAME
from dropline.drops.models import Drop
from dropline.media import service
from dropline.media.imaging import process_image
from dropline.media.models import MediaOwner
from dropline.media.rules import CONTENT_TYPES, Limits
from dropline.memberships.models import MembershipTier

SIZE = 640  # square art: two renditions (320, 640) in each format keep seeding quick
LIMITS = Limits(max_bytes=5_000_000, max_side=4000, min_side=200)
# Background and ink per family; anything else takes the brand's own colours.
PALETTE = {
    "eau-de-parfum": ("#2f3b2a", "#e9dcc3"), "candles": ("#8a4b2e", "#f6ead8"),
    "refills": ("#5b6e74", "#eef2ef"), "diffusers": ("#6b5a48", "#f3ece1"),
    "discovery": ("#3c2f4a", "#efe6f4"),
}
BRAND = ("#8a4b2e", "#fbf8f4")
# The further pictures of a drop still to come (after its hero): scene and colours.
GALLERY = (("the batch", ("#2f3b2a", "#e9dcc3")), ("the notes", ("#3c2f4a", "#efe6f4")))


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def draw_card(title: str, kind: str, colours: tuple[str, str], seed: str) -> bytes:
    """A square card: the brand's name, a vessel-like shape placed by ``seed`` (so each item
    looks its own), the item's name and what it is."""
    background, ink = colours
    image = Image.new("RGB", (SIZE, SIZE), background)
    draw = ImageDraw.Draw(image)
    digest = hashlib.sha256(seed.encode()).digest()
    # Soft circles behind the vessel, from the seed.
    for i in range(3):
        x, y, r = 80 + digest[i] * 2, 60 + digest[i + 3], 60 + digest[i + 6] // 2
        draw.ellipse((x - r, y - r, x + r, y + r), outline=ink, width=2)
    # The vessel: a bottle, or a jar for candles.
    cx = SIZE // 2
    if kind == "candles":
        draw.rounded_rectangle((cx - 110, 250, cx + 110, 430), radius=24, fill=ink)
    else:
        draw.rounded_rectangle((cx - 30, 180, cx + 30, 230), radius=6, fill=ink)
        draw.rounded_rectangle((cx - 95, 225, cx + 95, 440), radius=30, fill=ink)
    draw.text((cx, 335), BRAND_SHORT_NAME, fill=background, font=_font(26), anchor="mm")
    draw.text((cx, 500), title[:34], fill=ink, font=_font(34), anchor="mm")
    draw.text((cx, 550), kind.replace("-", " ").upper(), fill=ink, font=_font(20), anchor="mm")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _store(ctx: DemoContext, kind: MediaOwner, owner_id: int, data: bytes, alt: str) -> None:
    image = process_image(data, LIMITS)
    for rendition in image.renditions:
        ctx.media.put(rendition.name, rendition.data, CONTENT_TYPES[rendition.format])
    service.record_image(ctx.session, clock=ctx.clock, owner_kind=kind, owner_id=owner_id,
                         image=image, alt=alt)


@demo_step("media", order=970, label="Pictures (drawn locally)")
def seed_pictures(ctx: DemoContext) -> str | None:
    if ctx.media is None:
        return "skipped: no media store given"
    session = ctx.session
    count = 0
    for product, family in session.execute(
            select(Product, ProductFamily.slug).join(ProductFamily)
            .order_by(Product.id)):
        _store(ctx, MediaOwner.product, product.id,
               draw_card(product.name, family, PALETTE.get(family, BRAND), product.slug),
               f"{product.name}: {BRAND_SHORT_NAME}'s label art")
        count += 1
    for drop in session.scalars(select(Drop).order_by(Drop.id)):
        _store(ctx, MediaOwner.drop, drop.id, draw_card(drop.name, "drop", BRAND, drop.slug),
               f"{drop.name}, a {BRAND_SHORT_NAME} drop")
        count += 1
        if drop.ends_at > ctx.clock.now():  # a drop still to come gets a gallery too
            for scene, colours in GALLERY:
                _store(ctx, MediaOwner.drop, drop.id,
                       draw_card(drop.name, scene, colours, f"{drop.slug}-{scene}"),
                       f"{drop.name}: {scene}")
                count += 1
    for tier in session.scalars(select(MembershipTier).order_by(MembershipTier.id)):
        _store(ctx, MediaOwner.tier, tier.id,
               draw_card(tier.name, "membership", ("#1d1b19", "#e9c9a8"), tier.slug),
               f"{tier.name} membership card")
        count += 1
    ctx.summary["pictures"] = f"{count} drawn and stored"
    return f"{count} pictures"

"""``dropline media ...``: the same flows as the admin API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from dropline.cli_support import readable_errors, services
from dropline.media import flows
from dropline.media.models import MediaOwner
from dropline.media.rules import Limits

media_app = typer.Typer(help="Images of products, variants, drops and membership tiers.",
                        no_args_is_help=True)
console = Console()


@media_app.command(
    "add", epilog="Example: dropline media add product ember-oud ./ember.jpg --alt 'Ember Oud, "
                  "50 ml bottle'   |   dropline media add variant EMBER-50 ./50ml.png")
def add(
    owner: Annotated[MediaOwner, typer.Argument(help="What the image shows: product, variant, "
                                                     "drop or tier.")],
    ref: Annotated[str, typer.Argument(help="Its id or slug (a variant: its SKU).")],
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True,
                                         help="The image file (JPEG, PNG, WebP, AVIF, GIF).")],
    alt: Annotated[str, typer.Option(help="Text for those who cannot see the image.")] = "",
) -> None:
    """Upload an image: checked by content, made upright, stripped of metadata, stored as
    AVIF/WebP/JPEG renditions at several widths."""
    svc = services()
    media = svc.settings.media
    with readable_errors():
        asset = flows.add_image(
            svc.db, svc.media, clock=svc.clock,
            limits=Limits(max_bytes=media.max_bytes, max_side=media.max_side,
                          min_side=media.min_side),
            owner_kind=owner, owner_ref=ref, data=path.read_bytes()[:media.max_bytes + 1],
            alt=alt.strip()[:300])
    console.print(f"image {asset.id}: {owner.value} {asset.owner_id}, {asset.width}x"
                  f"{asset.height} px, {len(asset.renditions)} renditions")


@media_app.command("remove", epilog="Example: dropline media remove 12")
def remove(media_id: Annotated[int, typer.Argument(min=1, help="The image's id.")]) -> None:
    """Remove an image and the renditions no other image uses."""
    svc = services()
    with readable_errors():
        flows.remove_image(svc.db, svc.media, clock=svc.clock, media_id=media_id)
    console.print(f"image {media_id} removed")

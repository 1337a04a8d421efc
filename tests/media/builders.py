"""Images made in memory for the media tests (nothing binary is committed)."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw

ORIENTATION = 0x0112  # EXIF tag: how the camera was held
MAKE = 0x010F  # EXIF tag: the camera's maker (stands for any metadata that must not leak)


def image_bytes(width: int = 600, height: int = 400, fmt: str = "PNG", *,
                orientation: int | None = None, colour: str = "#8a4b2e") -> bytes:
    """A picture with a white mark in its top-left corner, so a rotation shows."""
    image = Image.new("RGB", (width, height), colour)
    ImageDraw.Draw(image).rectangle((0, 0, width // 4, height // 4), fill="white")
    exif = Image.Exif()
    if orientation is not None:
        exif[ORIENTATION] = orientation
        exif[MAKE] = "SpyCam"
    out = io.BytesIO()
    image.save(out, format=fmt, **({"exif": exif.tobytes()} if orientation else {}))
    return out.getvalue()

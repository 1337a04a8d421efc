"""Pure media rules: which widths an image is rendered at, the content-hashed names of the
renditions, and the ``srcset`` a page offers. No Pillow, no store, no session."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Widths (px) renditions are made at; an image narrower than one is not enlarged to it.
WIDTHS = (320, 640, 960, 1440)
# Best first: the order of the <source> elements in a <picture>.
FORMATS = ("avif", "webp", "jpeg")
CONTENT_TYPES = {"avif": "image/avif", "webp": "image/webp", "jpeg": "image/jpeg"}
EXTENSIONS = {"avif": "avif", "webp": "webp", "jpeg": "jpg"}
# What an upload may be, by its content (Pillow's format names).
ACCEPTED = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "AVIF": "image/avif",
            "GIF": "image/gif"}


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_side: int
    min_side: int


def rendition_widths(width: int, targets: Sequence[int] = WIDTHS) -> list[int]:
    """Each target narrower than the image, and the image's own width when it is narrower
    than the widest target (never upscaled)."""
    widths = [w for w in targets if w < width]
    if width <= max(targets):
        widths.append(width)
    return widths or [max(targets)]


def scaled_height(width: int, height: int, to_width: int) -> int:
    return max(1, round(height * to_width / width))


def rendition_name(digest: str, width: int, fmt: str) -> str:
    """Content-hashed, so a name's bytes never change and may be cached for ever."""
    return f"{digest[:20]}-{width}.{EXTENSIONS[fmt]}"


def content_type_of(name: str) -> str | None:
    ext = name.rsplit(".", 1)[-1]
    return next((CONTENT_TYPES[f] for f, e in EXTENSIONS.items() if e == ext), None)


def size_problem(width: int, height: int, limits: Limits) -> str | None:
    if max(width, height) > limits.max_side:
        return (f"the image is {width}x{height} px; its longest side may be at most "
                f"{limits.max_side} px")
    if min(width, height) < limits.min_side:
        return (f"the image is {width}x{height} px; its shortest side must be at least "
                f"{limits.min_side} px")
    return None


@dataclass(frozen=True)
class ImageView:
    """What a page needs to draw one image without layout shift: the fallback ``src`` with
    its width and height, a ``srcset`` per format, and a tiny placeholder."""

    src: str
    width: int
    height: int
    alt: str
    placeholder: str
    srcsets: tuple[tuple[str, str], ...]  # (content type, srcset), best format first


def image_view(asset: Any, *, base_url: str, fallback_width: int = 960) -> ImageView:
    """An ``ImageView`` from a stored asset (anything with width, height, alt, placeholder and
    renditions), its files linked from ``base_url``."""
    base = base_url.rstrip("/")
    by_format: dict[str, list[Mapping[str, Any]]] = {}
    for r in asset.renditions:
        by_format.setdefault(r["format"], []).append(r)
    srcsets = tuple(
        (CONTENT_TYPES[fmt], ", ".join(f"{base}/{r['name']} {r['width']}w"
                                       for r in sorted(by_format[fmt], key=lambda r: r["width"])))
        for fmt in FORMATS if fmt in by_format)
    jpegs = sorted(by_format.get("jpeg", []), key=lambda r: r["width"])
    fallback = next((r for r in jpegs if r["width"] >= fallback_width), jpegs[-1])
    return ImageView(src=f"{base}/{fallback['name']}", width=asset.width, height=asset.height,
                     alt=asset.alt, placeholder=asset.placeholder, srcsets=srcsets)


def largest_url(asset: Any, *, base_url: str) -> str:
    """The widest JPEG rendition: what feeds and JSON-LD link (every reader takes JPEG)."""
    jpegs = [r for r in asset.renditions if r["format"] == "jpeg"]
    widest = max(jpegs, key=lambda r: r["width"])
    return f"{base_url.rstrip('/')}/{widest['name']}"

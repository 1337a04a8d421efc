"""Uploads are judged by their content: type, size and dimensions; what is kept is upright,
carries no metadata, and comes in every width and format a page asks for."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from dropline.media.imaging import FORMATS, InvalidImage, process_image
from dropline.media.rules import Limits, rendition_widths
from tests.media.builders import MAKE, ORIENTATION, image_bytes

LIMITS = Limits(max_bytes=2_000_000, max_side=4000, min_side=200)


@pytest.mark.parametrize(("width", "expected"), [
    (2000, [320, 640, 960, 1440]),
    (800, [320, 640, 800]),
    (320, [320]),
    (250, [250]),
])
def test_renditions_are_made_at_each_width_below_the_original_and_never_enlarged(width,
                                                                                   expected):
    assert rendition_widths(width) == expected


def test_a_camera_jpeg_is_turned_upright_and_loses_its_metadata():
    # Orientation 6: the camera was held rotated; the stored pixels must be turned 90°.
    processed = process_image(image_bytes(600, 400, "JPEG", orientation=6), LIMITS)

    assert (processed.width, processed.height) == (400, 600)
    for rendition in processed.renditions:
        stored = Image.open(io.BytesIO(rendition.data))
        assert stored.getexif().get(MAKE) is None
        assert stored.getexif().get(ORIENTATION) in (None, 1)
        assert "exif" not in stored.info
        assert stored.size == (rendition.width, rendition.height)
    # The white mark was top-left as shot; after turning it is top-right.
    full = next(r for r in processed.renditions if r.width == 400 and r.format == "jpeg")
    upright = Image.open(io.BytesIO(full.data)).convert("RGB")
    assert upright.getpixel((390, 10))[0] > 200 and upright.getpixel((10, 10))[0] < 200


def test_every_width_comes_in_every_format_with_content_hashed_names():
    first = process_image(image_bytes(800, 500), LIMITS)
    again = process_image(image_bytes(800, 500), LIMITS)

    assert {(r.width, r.format) for r in first.renditions} == {
        (w, f) for w in (320, 640, 800) for f in FORMATS}
    assert [r.name for r in first.renditions] == [r.name for r in again.renditions]
    assert all(r.name.startswith(first.digest[:20]) for r in first.renditions)
    assert first.placeholder.startswith("data:image/webp;base64,")
    assert len(first.placeholder) < 600
    for rendition in first.renditions:
        assert Image.open(io.BytesIO(rendition.data)).format == rendition.format.upper()


def _truncated() -> bytes:
    return image_bytes(600, 400, "JPEG")[:300]


@pytest.mark.parametrize(("data", "says"), [
    (b"", "empty"),
    (b"%PDF-1.7 not a picture at all", "not an image"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "not an image"),
    (image_bytes(150, 400), "at least 200"),
    (image_bytes(4100, 300), "at most 4000"),
    (_truncated(), "damaged"),
    (image_bytes(600, 400, "TIFF"), "not accepted"),
])
def test_a_bad_file_is_refused_with_its_reason(data, says):
    with pytest.raises(InvalidImage, match=says) as refused:
        process_image(data, LIMITS)
    assert refused.value.status == 422


def test_a_file_over_the_size_limit_is_refused_before_it_is_decoded():
    with pytest.raises(InvalidImage, match="at most 1000 are accepted"):
        process_image(image_bytes(), Limits(max_bytes=1000, max_side=4000, min_side=200))

"""The admin upload (multipart) and the CLI store an image's renditions and show them on the
product page (srcset, width and height), in its JSON-LD and in the local inventory feed; a bad
file or an unknown owner is a 422/404 that stores nothing, neither a row nor a file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dropline.catalog.models import Variant
from dropline.cli import app as cli_app
from dropline.db import Database
from dropline.media.imaging import FORMATS
from dropline.migrate import upgrade
from tests.builders import api_token, make_location, make_product
from tests.media.builders import image_bytes
from tests.web.support import assert_problem, changed_tables, snapshot


def upload(client, headers, owner: str, ref: str | int, data: bytes, alt: str = "A bottle",
           name: str = "photo.png"):
    return client.post(f"/api/v1/admin/media/{owner}/{ref}", headers=headers,
                       files={"file": (name, data, "image/png")}, data={"alt": alt})


def stored_files(settings) -> list[Path]:
    root = Path(settings.media.dir)
    return sorted(root.iterdir()) if root.exists() else []


@pytest.fixture
def writer(db, clock):
    return api_token(db, clock, "media:write")


def test_an_uploaded_image_shows_on_the_product_page_feed_and_json_ld(client, db, clock,
                                                                      settings, writer):
    make_location(db)
    product_id, _ = make_product(db, clock, name="Ember Oud")
    before = client.get("/products/ember-oud")
    assert "<picture" not in before.text

    created = upload(client, writer, "product", "ember-oud", image_bytes(1000, 800))

    assert created.status_code == 201, created.text
    image = created.json()
    assert (image["owner_id"], image["width"], image["height"], image["alt"]) == (
        product_id, 1000, 800, "A bottle")
    assert {(r["width"], r["format"]) for r in image["renditions"]} >= {
        (320, "webp"), (960, "jpeg"), (1000, "jpeg")}
    # The page was cached before the upload: the upload purged it.
    page = client.get("/products/ember-oud").text
    img = re.search(r"<img [^>]*>", page).group(0)
    assert 'width="1000"' in img and 'height="800"' in img and 'alt="A bottle"' in img
    assert 'sizes="' in img and "320w" in img and "background-image:url(data:image/webp" in img
    assert '<source type="image/webp"' in page
    block = json.loads(re.search(r'<script type="application/ld\+json">(.*?)</script>',
                                 page).group(1))
    assert block["image"] == [image["url"]] and image["url"].endswith("-1000.jpg")

    served = client.get(image["url"])
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert len(stored_files(settings)) == len(image["renditions"])

    feed = client.get("/feeds/local-inventory.json").json()
    assert feed == [] or {r["image_link"] for r in feed} == {image["url"]}
    listed = client.get("/api/v1/media/product/ember-oud").json()
    assert [i["id"] for i in listed] == [image["id"]]


def test_a_variant_image_goes_with_its_variant_and_the_main_product_image_on_the_home_page(
        client, db, clock, writer):
    make_location(db)
    _, variant_id = make_product(db, clock, name="Fig Leaf")
    upload(client, writer, "product", "fig-leaf", image_bytes(700, 700), alt="Fig Leaf")
    with db.transaction() as session:
        sku = session.get(Variant, variant_id).sku
    variant = upload(client, writer, "variant", sku, image_bytes(400, 400, colour="#335"),
                     alt="The 50 ml bottle")
    assert variant.status_code == 201

    home = client.get("/").text
    product = client.get("/products/fig-leaf").text
    assert 'alt="Fig Leaf"' in home
    assert 'alt="The 50 ml bottle"' in product and 'alt="Fig Leaf"' in product


@pytest.mark.parametrize(("data", "status", "says"), [
    (b"GIF89a but then nothing", 422, "not an image"),
    (b"#!/bin/sh\nrm -rf /\n", 422, "not an image"),
    (image_bytes(120, 120), 422, "at least 200"),
])
def test_a_bad_file_is_a_422_that_stores_nothing(client, db, clock, settings, writer, data,
                                                  status, says):
    make_location(db)
    make_product(db, clock, name="Ember Oud")
    before = snapshot(db)

    problem = assert_problem(upload(client, writer, "product", "ember-oud", data), status)

    assert says in problem["detail"]
    assert changed_tables(before, snapshot(db)) == ["api_tokens"]  # its last use only
    assert stored_files(settings) == []


def test_an_unknown_owner_or_kind_stores_nothing(client, db, clock, settings, writer):
    before = snapshot(db)

    assert_problem(upload(client, writer, "product", "no-such-thing", image_bytes()), 404)
    assert_problem(upload(client, writer, "poster", "1", image_bytes()), 422)
    assert_problem(client.post("/api/v1/admin/media/product/1", headers=writer,
                               data={"alt": "no file"}), 422)

    assert changed_tables(before, snapshot(db)) == ["api_tokens"]  # its last use only
    assert stored_files(settings) == []


def test_a_file_over_the_size_limit_is_refused(client, db, clock, settings, writer):
    make_location(db)
    make_product(db, clock, name="Ember Oud")
    settings.media.max_bytes = 5000

    problem = assert_problem(upload(client, writer, "product", "ember-oud",
                                    image_bytes(1200, 1200) + b"\0" * 6000), 422)

    assert "larger than 5000 bytes" in problem["detail"]
    assert stored_files(settings) == []


def test_removing_an_image_removes_its_files_and_its_place_on_the_page(client, db, clock,
                                                                       settings, writer):
    make_location(db)
    make_product(db, clock, name="Ember Oud")
    image = upload(client, writer, "product", "ember-oud", image_bytes()).json()

    assert client.delete(f"/api/v1/admin/media/{image['id']}", headers=writer).status_code == 204

    assert stored_files(settings) == []
    assert client.get(image["url"]).status_code == 404
    assert "<picture" not in client.get("/products/ember-oud").text


def test_a_missing_or_malformed_media_name_is_a_404(client):
    assert client.get("/media/0123456789abcdef0123-320.jpg").status_code == 404
    assert client.get("/media/..%2f..%2fetc%2fpasswd").status_code == 404


def test_the_cli_adds_an_image_and_refuses_a_bad_file_in_one_line(tmp_path, monkeypatch, db,
                                                                   clock):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade(url)
    monkeypatch.setenv("DROPLINE_DATABASE_URL", url)
    monkeypatch.setenv("DROPLINE_MEDIA_DIR", str(tmp_path / "media"))
    runner = CliRunner()
    photo, junk = tmp_path / "photo.jpg", tmp_path / "notes.jpg"
    photo.write_bytes(image_bytes(500, 300, "JPEG"))
    junk.write_bytes(b"just some text")
    own = Database(url)
    make_location(own)
    make_product(own, clock, name="Ember Oud")
    own.dispose()

    added = runner.invoke(cli_app, ["media", "add", "product", "ember-oud", str(photo),
                                    "--alt", "Ember Oud"])
    refused = runner.invoke(cli_app, ["media", "add", "product", "ember-oud", str(junk)])
    helped = runner.invoke(cli_app, ["media", "add", "--help"], terminal_width=200)

    assert added.exit_code == 0, added.output
    assert "500x300 px" in added.output
    assert refused.exit_code == 2 and "not an image" in refused.output
    assert "Example: dropline media add" in helped.output
    assert len(list((tmp_path / "media").iterdir())) == 2 * len(FORMATS)  # 320 and 500 px

"""A drop tells its story: Markdown rendered to sanitised HTML on the public page, with its
hero image and a note beside each variant; once admitted the shopper's page offers "Buy now",
and a refused purchase keeps what was typed with one message (not beside "you can buy now")."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from dropline.cli import app as cli_app
from dropline.db import Database
from dropline.drops.story import render_story
from dropline.migrate import upgrade
from tests.builders import api_token, sign_up
from tests.drops.builders import make_drop
from tests.media.builders import image_bytes
from tests.storefront.builders import CHECKOUT_FORM
from tests.web.support import assert_problem, changed_tables, snapshot


@pytest.mark.parametrize(("markdown", "kept", "gone"), [
    ("# Midnight Fig\n\nA **dark** fig.", ["<h2>Midnight Fig</h2>", "<strong>dark</strong>"],
     ["<h1>"]),
    ("<script>alert(1)</script>", ["&lt;script&gt;"], ["<script"]),
    ("[win](javascript:alert(1))", [], ["href=\"javascript"]),
    ("[press](https://press.example)", ['rel="noopener noreferrer"'], []),
    ("![bottle](/media/abc-320.jpg)", ['<img src="/media/abc-320.jpg" alt="bottle">'], []),
    ("<img src=x onerror=alert(1)>", ["&lt;img"], ["<img"]),  # shown as text, not an element
])
def test_a_story_is_rendered_and_sanitised(markdown, kept, gone):
    html = render_story(markdown)
    for part in kept:
        assert part in html
    for part in gone:
        assert part not in html


def test_the_drop_page_shows_its_story_hero_image_and_variant_notes(client, db, clock):
    world = make_drop(db, clock, cap=5, variants=2)
    manager = api_token(db, clock, "drops:manage")
    media = api_token(db, clock, "media:write")
    before = client.get(f"/drops/{world.drop_id}").text  # cached, then purged by the changes

    story = client.put(f"/api/v1/admin/drops/{world.drop_id}/story", headers=manager, json={
        "story": "## Night harvest\n\nFigs picked **after dark**.",
        "notes": {str(world.variant_ids[0]): "Only 40 bottles this year."}})
    hero = client.post(f"/api/v1/admin/media/drop/{world.drop_id}", headers=media,
                       files={"file": ("hero.png", image_bytes(1200, 600), "image/png")},
                       data={"alt": "Figs at night"})

    assert story.status_code == 200, story.text
    assert story.json()["story_html"].startswith("<h2>Night harvest</h2>")
    assert hero.status_code == 201
    page = client.get(f"/drops/{world.drop_id}").text
    assert "Night harvest" not in before
    assert "<h2>Night harvest</h2>" in page and "<strong>after dark</strong>" in page
    assert "Only 40 bottles this year." in page
    img = re.search(r'<img [^>]*alt="Figs at night"[^>]*>', page).group(0)
    assert 'width="1200"' in img and 'height="600"' in img and 'loading="eager"' in img


def test_a_note_for_a_variant_outside_the_drop_changes_nothing(client, db, clock):
    world = make_drop(db, clock)
    manager = api_token(db, clock, "drops:manage")
    before = snapshot(db)

    refused = client.put(f"/api/v1/admin/drops/{world.drop_id}/story", headers=manager,
                         json={"story": "New", "notes": {"999999": "not here"}})

    assert "999999" in assert_problem(refused, 422)["detail"]
    assert changed_tables(before, snapshot(db)) == ["api_tokens"]  # its last use only


def test_a_refused_purchase_keeps_the_form_with_one_message(client, db, clock):
    world = make_drop(db, clock, cap=5, limit=2, queue=True)
    sign_up(client)
    joined = client.post(f"/drops/{world.drop_id}/queue", follow_redirects=False)
    mine = client.get(joined.headers["location"]).text
    assert '<h2 id="buy">Buy now</h2>' in mine
    key = re.search(r'name="key" value="([^"]+)"', mine).group(1)

    refused = client.post(f"/drops/{world.drop_id}/buy", follow_redirects=False, data={
        **CHECKOUT_FORM, "key": key, "variant_id": world.variant_ids[0], "quantity": 3})

    page = refused.text
    assert refused.status_code >= 400
    assert page.count('class="error"') == 1 and "you can buy now" not in page
    assert f'value="{CHECKOUT_FORM["line1"]}"' in page and 'value="3"' in page
    assert f'value="{CHECKOUT_FORM["postcode"]}"' in page
    assert CHECKOUT_FORM["payment_method"] not in page  # the payment reference is not kept


def test_the_cli_sets_a_story_and_refuses_a_malformed_note(tmp_path, monkeypatch, clock):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade(url)
    monkeypatch.setenv("DROPLINE_DATABASE_URL", url)
    own = Database(url)
    world = make_drop(own, clock)
    own.dispose()
    story = tmp_path / "story.md"
    story.write_text("## Night harvest\n\nFigs picked after dark.")
    runner = CliRunner()

    done = runner.invoke(cli_app, ["drops", "story", str(world.drop_id), "--file", str(story),
                                   "--note", f"{world.variant_ids[0]}=Only 40 bottles."])
    bad = runner.invoke(cli_app, ["drops", "story", str(world.drop_id), "--note", "oops"])

    assert done.exit_code == 0, done.output
    assert "1 note(s) set" in done.output
    assert bad.exit_code == 2 and "VARIANT_ID=TEXT" in bad.output

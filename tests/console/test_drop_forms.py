"""The console's drop forms over HTTP: schedule a drop with a story, reschedule it, rewrite
its story and notes, restock it, add an image. Times are typed in London time and stored as
UTC; a refused form keeps what was typed, shows why beside the field and changes nothing."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from dropline.drops import service as drops
from dropline.drops.models import Drop, DropVariant
from dropline.media.models import MediaAsset
from tests.builders import make_location, make_product, sign_in_console
from tests.media.builders import image_bytes
from tests.web.support import changed_tables, snapshot


@pytest.fixture
def console(client, db, clock):
    make_location(db, code="central")
    sign_in_console(client, db, clock)
    return client


def _form(variant_id: int, **changes: str) -> dict:
    return {"name": "Midsummer Fig", "slug": "", "variant_ids": [str(variant_id)], "cap": "40",
            "per_person_limit": "2", "starts_at": "2026-06-20T18:00",
            "ends_at": "2026-06-22T18:00", "early_access_minutes": "30",
            "queue_enabled": "yes", "location": "", "story": "# Fig\n\nPicked at *dawn*.",
            **changes}


def _drop_id(response) -> int:
    assert response.status_code == 303, response.text[:800]
    return int(re.search(r"/admin/drops/(\d+)/edit", response.headers["location"])[1])


def test_an_operator_schedules_a_drop_with_a_story_in_london_time(console, db, clock):
    _, variant_id = make_product(db, clock)
    drop_id = _drop_id(console.post("/admin/drops/new", data=_form(variant_id),
                                    follow_redirects=False))
    with db.transaction() as session:
        drop = session.get(Drop, drop_id)
        members = session.scalars(select(DropVariant).where(DropVariant.drop_id == drop_id))
        assert (drop.slug, drop.shared_cap, drop.per_person_limit) == ("midsummer-fig", 40, 2)
        # 18:00 in London in June is 17:00 UTC (BST)
        assert drop.starts_at == datetime(2026, 6, 20, 17, 0, tzinfo=UTC)
        assert drop.early_access_minutes == 30 and drop.queue_enabled
        assert drop.story.startswith("# Fig") and [m.variant_id for m in members] == [variant_id]
    page = console.get(f"/admin/drops/{drop_id}/edit")
    assert page.status_code == 200 and 'value="2026-06-20T18:00"' in page.text
    assert "<em>dawn</em>" in page.text  # the saved story's preview, rendered


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"name": ""}, "name", "a drop needs a name"),
    ({"variant_ids": []}, "variant_ids", "choose at least one variant"),
    ({"cap": "0"}, "cap", "enter a whole number from 1"),
    ({"ends_at": "2026-06-19T18:00"}, "ends_at", "a drop must end after it starts"),
    ({"starts_at": "next week"}, "starts_at", "enter a date and time"),
    ({"per_person_limit": "lots"}, "per_person_limit", "enter a whole number"),
])
def test_a_refused_drop_keeps_the_values_and_says_why(console, db, clock, changes, field,
                                                      message):
    _, variant_id = make_product(db, clock)
    before = snapshot(db)
    page = console.post("/admin/drops/new", data=_form(variant_id, **changes))
    assert page.status_code == 422, page.text[:500]
    assert re.search(rf'id="f-{field}-error" role="alert">[^<]*{re.escape(message)}', page.text)
    assert "Picked at *dawn*." in page.text  # the story typed is kept
    assert changed_tables(before, snapshot(db)) == []


def test_a_drop_is_rescheduled_restocked_and_its_story_and_notes_rewritten(console, db, clock):
    _, variant_id = make_product(db, clock)
    drop_id = _drop_id(console.post("/admin/drops/new", data=_form(variant_id),
                                    follow_redirects=False))
    moved = console.post(f"/admin/drops/{drop_id}/schedule", follow_redirects=False, data={
        "starts_at": "2026-06-21T09:00", "ends_at": "2026-06-21T21:00",
        "early_access_minutes": "0", "admission_per_minute": "300"})
    assert moved.status_code == 303
    story = console.post(f"/admin/drops/{drop_id}/story", follow_redirects=False, data={
        "story": "New words.", f"note-{variant_id}": "Last of the harvest"})
    assert story.status_code == 303
    restocked = console.post(f"/admin/drops/{drop_id}/restock", follow_redirects=False,
                             data={"units": "10", "variant_id": ""})
    assert restocked.status_code == 303 and "Restocked%2010" in restocked.headers["location"]
    with db.transaction() as session:
        drop = drops.get_drop(session, drop_id)
        note = session.get(DropVariant, (drop_id, variant_id)).note
        assert drop.starts_at == datetime(2026, 6, 21, 8, 0, tzinfo=UTC)
        assert (drop.admission_per_minute, drop.queue_enabled) == (300, False)
        assert (drop.story, note, drop.shared_cap) == ("New words.", "Last of the harvest", 50)
        assert sum(drops.remaining_by_pool(session, drop_id).values()) == 50


def test_refused_edits_change_nothing_and_land_beside_their_own_form(console, db, clock):
    _, variant_id = make_product(db, clock)
    drop_id = _drop_id(console.post("/admin/drops/new", data=_form(variant_id),
                                    follow_redirects=False))
    before = snapshot(db)
    bad_restock = console.post(f"/admin/drops/{drop_id}/restock", data={"units": "-4"})
    assert bad_restock.status_code == 422 and 'id="restock-units-error"' in bad_restock.text
    bad_times = console.post(f"/admin/drops/{drop_id}/schedule", data={
        "starts_at": "2026-06-21T09:00", "ends_at": "2026-06-21T08:00",
        "admission_per_minute": "300"})
    assert bad_times.status_code == 422 and 'id="schedule-ends_at-error"' in bad_times.text
    assert 'value="2026-06-21T08:00"' in bad_times.text
    long_note = console.post(f"/admin/drops/{drop_id}/story", data={
        "story": "ok", f"note-{variant_id}": "x" * 600})
    assert long_note.status_code == 422 and "at most 500" in long_note.text
    assert changed_tables(before, snapshot(db)) == []


def test_a_drop_image_is_uploaded_from_its_edit_page(console, db, clock):
    _, variant_id = make_product(db, clock)
    drop_id = _drop_id(console.post("/admin/drops/new", data=_form(variant_id),
                                    follow_redirects=False))
    uploaded = console.post(f"/admin/drops/{drop_id}/media", follow_redirects=False,
                            data={"alt": "Figs on a branch"},
                            files={"file": ("fig.png", image_bytes(), "image/png")})
    assert uploaded.status_code == 303 and uploaded.headers["location"].startswith(
        f"/admin/drops/{drop_id}/edit")
    with db.transaction() as session:
        asset = session.scalars(select(MediaAsset)).one()
        assert (asset.owner_kind.value, asset.owner_id, asset.alt) == (
            "drop", drop_id, "Figs on a branch")
    assert "Figs on a branch" in console.get(f"/admin/drops/{drop_id}/edit").text


def test_the_drop_forms_need_a_sign_in(client):
    for path in ("/admin/drops/new", "/admin/drops/1/edit"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and "/admin/login" in response.headers["location"]

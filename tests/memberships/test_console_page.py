"""The cohort map is a console page: signed-in admins see it, everyone else is sent to sign in."""

from tests.builders import sign_in_console


def test_cohort_map_page_needs_the_console_and_shows_segments(client, db, clock):
    anonymous = client.get("/admin/memberships/cohort-map", follow_redirects=False)
    sign_in_console(client, db, clock)
    page = client.get("/admin/memberships/cohort-map")

    assert anonymous.status_code == 303
    assert page.status_code == 200
    assert "Membership cohort map" in page.text and "Segment rules" in page.text
    assert page.headers["cache-control"] == "private, no-store"

"""The shop behind a real Varnish (deploy/varnish/dropline.vcl, Debian's varnish with the xkey
vmod): public pages are stored and served as hits, a commit purges exactly the pages that show
what changed (through ``DROPLINE_EDGE_PURGE_URL``, the shop's xkey purger), a drop's pages are
warm at its start after ``prewarm`` through the cache, and private pages are never shared.

Skipped, saying why, only where varnishd is not installed (``./run tests`` installs it when
run as root, as it does Chromium)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from dropline.catalog.models import Product, Variant
from dropline.config import Settings
from dropline.web.app import create_app
from dropline.web.prewarm import prewarm_drop
from tests.builders import PASSWORD, make_location, make_product, sign_up_token
from tests.drops.builders import make_drop
from tests.e2e.conftest import LiveServer

VCL = Path(__file__).resolve().parents[2] / "deploy" / "varnish" / "dropline.vcl"
VARNISHD = shutil.which("varnishd") or (
    "/usr/sbin/varnishd" if Path("/usr/sbin/varnishd").exists() else None)

pytestmark = pytest.mark.skipif(
    VARNISHD is None, reason="varnishd is not installed: apt-get install varnish "
    "varnish-modules (./run tests does this when run as root)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def run_varnish(backend_port: int, workdir: Path, port: int | None = None) -> Iterator[str]:
    """varnishd in the foreground on a free port with the shipped VCL (local.vcl including
    dropline.vcl), its backend pointed at ``backend_port``; yields its base URL once it
    answers."""
    vcl = workdir / "test.vcl"  # as local.vcl, with the test server's port
    vcl.write_text((VCL.parent / "local.vcl").read_text()
                   .replace('.port = "8000";', f'.port = "{backend_port}";')
                   .replace('include "./dropline.vcl";', f'include "{VCL}";'))
    port = port or _free_port()
    log = (workdir / "varnishd.log").open("wb")
    process = subprocess.Popen(
        [VARNISHD, "-F", "-j", "none", "-n", str(workdir / "instance"), "-a",
         f"127.0.0.1:{port}", "-f", str(vcl), "-s", "malloc,32m"],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("varnishd did not start: see "
                                       f"{workdir / 'varnishd.log'}") from None
                time.sleep(0.05)  # the readiness poll's interval, not a wait for an outcome
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture
def edge(db, clock, settings: Settings, tmp_path: Path) -> Iterator[tuple[str, object]]:
    """(Varnish's URL, the app's services): the shop served on a free port, Varnish in front,
    and the shop purging Varnish after each commit."""
    workdir = tmp_path / "varnish"
    workdir.mkdir()
    # The shop needs Varnish's address to purge, and Varnish the shop's to fetch: Varnish's
    # port is chosen first, the shop binds its own, then Varnish starts in front of it.
    varnish_port = _free_port()
    app_settings = settings.model_copy(update={"edge": settings.edge.model_copy(
        update={"purge_url": f"http://127.0.0.1:{varnish_port}/"})})
    app = create_app(app_settings, clock=clock, db=db, run_worker=False)
    server = LiveServer(app)
    server.start()
    try:
        with run_varnish(server.port, workdir, varnish_port) as url:
            yield url, app.state.services
    finally:
        server.stop()


def _get(client: httpx.Client, path: str) -> httpx.Response:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code, response.text[:300])
    return response


def test_public_pages_are_hits_and_a_price_change_purges_exactly_its_pages(edge, db):
    url, services = edge
    clock = services.clock
    make_location(db)
    changed, changed_variant = make_product(db, clock, name="Oud Noir", price=8500)
    other, _ = make_product(db, clock, name="Vetiver Rain", price=6200)
    with db.transaction() as session:
        slug_of = dict(session.execute(select(Product.id, Product.slug)).all())
    with httpx.Client(base_url=url, timeout=10) as client:
        changed_path, other_path = f"/products/{slug_of[changed]}", f"/products/{slug_of[other]}"
        for path in (changed_path, other_path, "/"):
            assert _get(client, path).headers["X-Edge-Cache"] == "MISS"
        for path in (changed_path, other_path, "/"):
            hit = _get(client, path)
            assert hit.headers["X-Edge-Cache"] == "HIT", path
            assert int(hit.headers["Age"]) >= 0
        assert "£85.00" in _get(client, changed_path).text

        with db.transaction() as session:  # a committed price change, as the console makes
            session.get(Variant, changed_variant).price_amount = 9900
        assert services.edge.flush()  # the purge left the shop (off the request's thread)

        after = _get(client, changed_path)
        assert after.headers["X-Edge-Cache"] == "MISS" and "£99.00" in after.text
        assert _get(client, "/").headers["X-Edge-Cache"] == "MISS"  # the listing shows it too
        assert _get(client, other_path).headers["X-Edge-Cache"] == "HIT"  # untouched
    assert services.edge.failed == 0


def test_a_drop_is_warm_at_its_start_after_prewarming_through_the_cache(edge, db, settings):
    url, services = edge
    clock = services.clock
    world = make_drop(db, clock, starts_in=0)

    rows = prewarm_drop(db, clock=clock, settings=settings, drop_ref=str(world.drop_id),
                        base_url=url)

    assert [row.edge_cache for row in rows] == ["MISS"] * len(rows)  # Varnish filled
    with httpx.Client(base_url=url, timeout=10) as client:
        for row in rows:
            first_of_the_crowd = _get(client, row.path)
            assert first_of_the_crowd.headers["X-Edge-Cache"] == "HIT", row.path
            assert first_of_the_crowd.headers["ETag"] == row.etag


def test_a_signed_in_shopper_never_gets_another_shoppers_page(edge, outbox):
    url, _ = edge
    pages = {}
    for name in ("ada", "bo"):
        with httpx.Client(base_url=url, timeout=10) as client:
            email = f"{name}@example.com"
            signed_up = client.post("/api/v1/customers",
                                    json={"email": email, "password": PASSWORD})
            assert signed_up.status_code == 202, signed_up.text
            confirmed = client.post("/api/v1/customers/confirmations",
                                    json={"token": sign_up_token(outbox, email)})
            assert confirmed.status_code == 201, confirmed.text
            account = _get(client, "/account")
            summary = _get(client, "/api/v1/me")
            pages[name] = (account, summary)

    for name, (account, summary) in pages.items():
        assert f"{name}@example.com" in account.text
        assert summary.json()["email"] == f"{name}@example.com"
        assert account.headers["X-Edge-Cache"] == "PASS"
        assert "private" in account.headers["Cache-Control"]
    assert "bo@example.com" not in pages["ada"][0].text
    assert "ada@example.com" not in pages["bo"][0].text


def test_only_the_purgers_acl_may_purge_and_a_purge_needs_its_keys(edge):
    url, _ = edge
    missing = httpx.request("PURGE", f"{url}/")
    purged = httpx.request("PURGE", f"{url}/", headers={"xkey-purge": "product-1"})

    assert missing.status_code == 400
    assert purged.status_code == 200 and "Invalidated" in purged.text

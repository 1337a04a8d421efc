"""Geocoding beyond London (a brand's postcode file in the GeoNames and ONS formats, a
Nominatim-compatible HTTP service) and travel times from OSRM's table API, each HTTP service a
tiny local stand-in served by the test (no internet)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse, urlsplit

import numpy as np
import pytest

from dropline.adapters.geocoding import (
    ChainGeocoder,
    LondonDistrictGeocoder,
    NominatimGeocoder,
    PostcodeFileGeocoder,
)
from dropline.adapters.routing import OSRMTravelTimes
from dropline.fulfilment import rules as R
from dropline.fulfilment import service
from dropline.fulfilment.travel import StraightLineTravel

DATA = Path(__file__).resolve().parent.parent / "data"
GEONAMES = DATA / "postcodes_geonames_sample.txt"
ONS = DATA / "postcodes_onspd_sample.csv"


def test_a_manchester_postcode_is_geocoded_from_the_shipped_geonames_sample():
    geocoder = PostcodeFileGeocoder.from_file(GEONAMES)
    point = geocoder.locate("m1 1ae")
    assert point == R.GeoPoint(53.4794, -2.2453)
    assert LondonDistrictGeocoder().locate("M1 1AE") is None  # the demo table: London only
    # A full postcode not in the file: the centre of its outward code's postcodes.
    m1 = geocoder.locate("M1 9ZZ")
    assert m1 is not None and m1.latitude == pytest.approx((53.4794 + 53.4774) / 2)
    assert geocoder.locate("ZZ1 1ZZ") is None and geocoder.locate("not a postcode") is None


def test_the_ons_directory_csv_is_read_and_rows_without_a_grid_reference_skipped():
    geocoder = PostcodeFileGeocoder.from_file(ONS)
    assert geocoder.locate("EH1 1YZ") == R.GeoPoint(55.9521, -3.1895)
    assert geocoder.locate("B11BB") == R.GeoPoint(52.4786, -1.909)
    assert geocoder.locate("ZZ9 9ZZ") is None
    assert len(geocoder) == 4


def test_a_malformed_file_is_refused_naming_the_line(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("GB\tM1 1AE\tManchester\n")
    with pytest.raises(ValueError, match="bad.txt:1"):
        PostcodeFileGeocoder.from_file(bad)
    csv_file = tmp_path / "bad.csv"
    csv_file.write_text("postcode,x,y\nM1 1AE,1,2\n")
    with pytest.raises(ValueError, match="pcds"):
        PostcodeFileGeocoder.from_file(csv_file)


def test_a_chain_uses_the_demo_table_then_the_brands_file():
    chain = ChainGeocoder([LondonDistrictGeocoder(), PostcodeFileGeocoder.from_file(GEONAMES)])
    assert chain.locate("E8 3PN") == LondonDistrictGeocoder().locate("E8 3PN")
    assert chain.locate("CF10 1EP") == R.GeoPoint(51.479, -3.177)
    destination = service.resolve_destination(geocoder=chain, postcode="g1 1xq")
    assert destination.point == R.GeoPoint(55.8609, -4.2514)
    assert (destination.label, destination.approximate) == ("G1 1XQ", True)


@contextmanager
def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class FakeNominatim(BaseHTTPRequestHandler):
    seen: list[dict] = []

    def do_GET(self) -> None:  # noqa: N802
        query = parse_qs(urlparse(self.path).query)
        FakeNominatim.seen.append({"path": urlparse(self.path).path, **query,
                                   "agent": self.headers.get("User-Agent")})
        found = ([{"lat": "53.4794", "lon": "-2.2453", "display_name": "M1 1AE"}]
                 if query.get("postalcode") == ["M1 1AE"] else [])
        body = json.dumps(found).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_the_nominatim_adapter_asks_for_the_postcode_and_reads_the_first_match():
    FakeNominatim.seen = []
    with serve(FakeNominatim) as url:
        geocoder = NominatimGeocoder(url, user_agent="dropline-test")
        assert geocoder.locate("M1 1AE") == R.GeoPoint(53.4794, -2.2453)
        assert geocoder.locate("M1 9ZZ") is None  # an empty answer: not known
    request = FakeNominatim.seen[0]
    assert request["path"] == "/search" and request["countrycodes"] == ["gb"]
    assert request["format"] == ["jsonv2"] and request["agent"] == "dropline-test"
    # The server gone: not known, rather than an error at checkout.
    assert NominatimGeocoder(url, timeout=0.5).locate("M1 1AE") is None


class FakeOSRM(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        parsed = urlsplit(self.path)  # not urlparse: it would cut the path at the ";"
        coordinates = parsed.path.rsplit("/", 1)[1].split(";")
        size = len(coordinates)
        # A one-way street: going "forward" (i < j) is 1 km and 100 s, back 2 km and 300 s.
        seconds = [[0 if i == j else (100 if i < j else 300) for j in range(size)]
                   for i in range(size)]
        metres = [[0 if i == j else (1000 if i < j else 2000) for j in range(size)]
                  for i in range(size)]
        ok = parsed.path.startswith("/table/v1/driving/")
        body = json.dumps({"code": "Ok" if ok else "InvalidUrl", "durations": seconds,
                           "distances": metres}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_the_osrm_adapter_reads_the_table_and_falls_back_to_straight_lines():
    points = [R.GeoPoint(51.543, -0.057), R.GeoPoint(51.548, -0.075), R.GeoPoint(51.55, -0.06)]
    with serve(FakeOSRM) as url:
        matrix = OSRMTravelTimes(url).matrix(points)
        wrong = OSRMTravelTimes(url, profile="boat").matrix(points)
    assert matrix.source == "osrm"
    assert matrix.seconds[0, 1] == 100 and matrix.seconds[1, 0] == 300  # not symmetric
    assert matrix.metres[2, 0] == 2000
    straight = StraightLineTravel().matrix(points)
    assert "OSRM failed" in wrong.source
    assert np.allclose(wrong.metres, straight.metres)


def test_a_window_is_planned_on_the_road_matrix_when_one_is_given(db, clock):
    from dropline.adapters.routing import PyVRPSolver
    from dropline.fulfilment.planning import plan_window

    from .builders import DALSTON, NEAR_HACKNEY, make_network, make_orders, make_windows

    make_network(db, clock)
    window_id = make_windows(db)[-1]
    orders = make_orders(db, clock, 2)
    with db.transaction() as session:
        for order, point in zip(orders, (DALSTON, NEAR_HACKNEY), strict=True):
            service.book_window(session, clock=clock, window_id=window_id, order_id=order,
                                destination=point, weight_grams=340)
    clock.advance(hours=12)
    with serve(FakeOSRM) as url, db.transaction() as session:
        planned = plan_window(session, clock=clock, window_id=window_id,
                              solver=PyVRPSolver(max_iterations=100), max_seconds=1,
                              travel=OSRMTravelTimes(url))
    assert "osrm" in planned.problem.name
    assert planned.problem.duration[1, 0] == 300 and planned.plan.feasible

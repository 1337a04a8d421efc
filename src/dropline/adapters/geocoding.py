"""Turning an address into a point, behind fulfilment's ``Geocoder`` Protocol
(``dropline.fulfilment.ports``, re-exported here).

Three geocoders, and a chain to try them in order:

* ``LondonDistrictGeocoder`` (below): the demo's built-in table, London only.
* ``PostcodeFileGeocoder``: a postcode dataset the brand supplies, in the GeoNames postal-code
  format (tab-separated, no header: country, postal code, place, admin names and codes,
  latitude, longitude, accuracy; ``GB_full.txt`` has full postcodes, ``GB.txt`` outward codes)
  or the ONS Postcode Directory CSV (a header with ``pcds`` or ``pcd``, ``lat`` and ``long``;
  postcodes without a grid reference, latitude 99.999999, are skipped). A full postcode not in
  the file falls back to the centre of its outward code's postcodes (``approximate``).
* ``NominatimGeocoder``: any Nominatim-compatible HTTP service
  (``GET {base}/search?postalcode=...&countrycodes=gb&format=jsonv2&limit=1``).

Every geocoder returns None for what it does not know; the caller then ships central, at the
farthest zone, with the reason recorded (``fulfilment.service.resolve_destination``).

`LondonDistrictGeocoder` is the built-in default: a small table of London postcode districts
(the outward code, "E8" of "E8 3PN") and an approximate centre for each, typed in by hand from
public maps. It is APPROXIMATE: a district spans one to three kilometres, so a point can be off
by a kilometre or more. That is good enough to pick a hub and quote a window, not to navigate;
a real geocoder (postcodes.io, an address file) can stand behind the same Protocol. Anything
outside the table (the rest of the UK, abroad) is not resolved, and the caller falls back to a
latitude and longitude or to central shipping.
"""

from __future__ import annotations

import csv
import json
import re
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from dropline.fulfilment.ports import Geocoder
from dropline.fulfilment.rules import GeoPoint

__all__ = ["ChainGeocoder", "Geocoder", "LondonDistrictGeocoder", "NominatimGeocoder",
           "PostcodeFileGeocoder", "normalise_postcode", "outward_code"]


# (latitude, longitude) of each district's approximate centre.
LONDON_DISTRICTS: dict[str, tuple[float, float]] = {
    "E1": (51.517, -0.059), "E1W": (51.508, -0.058), "E2": (51.529, -0.060),
    "E3": (51.528, -0.025), "E4": (51.627, -0.000), "E5": (51.560, -0.053),
    "E6": (51.528, 0.056), "E7": (51.547, 0.027), "E8": (51.543, -0.064),
    "E9": (51.541, -0.042), "E10": (51.566, -0.012), "E11": (51.567, 0.010),
    "E12": (51.552, 0.052), "E13": (51.527, 0.025), "E14": (51.505, -0.016),
    "E15": (51.539, 0.001), "E16": (51.510, 0.030), "E17": (51.585, -0.020),
    "E18": (51.592, 0.025), "EC1": (51.524, -0.100), "EC2": (51.518, -0.088),
    "EC3": (51.512, -0.080), "EC4": (51.514, -0.105),
    "N1": (51.539, -0.095), "N2": (51.589, -0.170), "N3": (51.600, -0.192),
    "N4": (51.571, -0.102), "N5": (51.553, -0.098), "N6": (51.570, -0.146),
    "N7": (51.553, -0.117), "N8": (51.585, -0.116), "N9": (51.626, -0.058),
    "N10": (51.593, -0.144), "N11": (51.613, -0.141), "N12": (51.615, -0.176),
    "N13": (51.620, -0.104), "N14": (51.634, -0.128), "N15": (51.582, -0.080),
    "N16": (51.563, -0.075), "N17": (51.596, -0.068), "N18": (51.613, -0.063),
    "N19": (51.565, -0.131), "N20": (51.630, -0.172), "N21": (51.638, -0.095),
    "N22": (51.599, -0.110),
    "NW1": (51.534, -0.146), "NW2": (51.556, -0.218), "NW3": (51.553, -0.171),
    "NW4": (51.589, -0.223), "NW5": (51.552, -0.142), "NW6": (51.543, -0.197),
    "NW7": (51.615, -0.235), "NW8": (51.532, -0.172), "NW9": (51.585, -0.260),
    "NW10": (51.540, -0.245), "NW11": (51.577, -0.197),
    "SE1": (51.500, -0.095), "SE2": (51.490, 0.118), "SE3": (51.470, 0.015),
    "SE4": (51.461, -0.034), "SE5": (51.474, -0.091), "SE6": (51.437, -0.017),
    "SE7": (51.484, 0.036), "SE8": (51.480, -0.028), "SE9": (51.446, 0.055),
    "SE10": (51.482, 0.000), "SE11": (51.489, -0.111), "SE12": (51.445, 0.024),
    "SE13": (51.461, -0.010), "SE14": (51.476, -0.042), "SE15": (51.470, -0.067),
    "SE16": (51.496, -0.050), "SE17": (51.487, -0.094), "SE18": (51.485, 0.068),
    "SE19": (51.418, -0.085), "SE20": (51.412, -0.057), "SE21": (51.441, -0.088),
    "SE22": (51.454, -0.070), "SE23": (51.443, -0.049), "SE24": (51.452, -0.100),
    "SE25": (51.397, -0.076), "SE26": (51.428, -0.055), "SE27": (51.430, -0.101),
    "SE28": (51.502, 0.111),
    "SW1": (51.497, -0.137), "SW2": (51.450, -0.120), "SW3": (51.490, -0.166),
    "SW4": (51.462, -0.139), "SW5": (51.490, -0.190), "SW6": (51.476, -0.200),
    "SW7": (51.496, -0.177), "SW8": (51.478, -0.128), "SW9": (51.468, -0.113),
    "SW10": (51.484, -0.183), "SW11": (51.464, -0.165), "SW12": (51.445, -0.150),
    "SW13": (51.473, -0.246), "SW14": (51.465, -0.266), "SW15": (51.458, -0.222),
    "SW16": (51.421, -0.128), "SW17": (51.429, -0.163), "SW18": (51.452, -0.193),
    "SW19": (51.420, -0.203), "SW20": (51.411, -0.226),
    "W1": (51.514, -0.145), "W2": (51.515, -0.180), "W3": (51.511, -0.268),
    "W4": (51.492, -0.262), "W5": (51.512, -0.301), "W6": (51.493, -0.228),
    "W7": (51.509, -0.333), "W8": (51.500, -0.195), "W9": (51.527, -0.193),
    "W10": (51.523, -0.214), "W11": (51.513, -0.206), "W12": (51.508, -0.234),
    "W13": (51.513, -0.322), "W14": (51.495, -0.211), "WC1": (51.522, -0.122),
    "WC2": (51.512, -0.123),
}

_POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][0-9A-Z]?)\s*([0-9][A-Z]{2})?$")


def outward_code(postcode: str) -> str | None:
    """"e8 3pn" -> "E8", "SW1A 1AA" -> "SW1A"; None when it is not shaped like a UK postcode."""
    match = _POSTCODE.match(postcode.strip().upper()[:10])
    return match.group(1) if match else None


class LondonDistrictGeocoder:
    """Approximate district centres for London postcodes (see the module docstring)."""

    def __init__(self, table: dict[str, tuple[float, float]] | None = None) -> None:
        self._table = table if table is not None else LONDON_DISTRICTS

    def locate(self, postcode: str) -> GeoPoint | None:
        outward = outward_code(postcode)
        if outward is None:
            return None
        # Central districts are split by a letter (W1T, EC1A, SW1A); the table holds the parent.
        for key in (outward, outward[:-1] if outward[-1].isalpha() else None):
            if key and key in self._table:
                lat, lon = self._table[key]
                return GeoPoint(lat, lon)
        return None

    def districts(self) -> list[str]:
        return sorted(self._table)


def normalise_postcode(postcode: str) -> str:
    """"sw1a 1aa" -> "SW1A1AA": upper case, no spaces (the key every table uses)."""
    return re.sub(r"\s+", "", postcode.strip().upper())[:8]


class PostcodeFileGeocoder:
    """Points from a postcode dataset the brand supplies (see the module docstring)."""

    def __init__(self, points: dict[str, tuple[float, float]], *, source: str = "") -> None:
        self.source = source
        self._points = {normalise_postcode(k): v for k, v in points.items()}
        sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
        for key, (lat, lon) in self._points.items():
            outward = outward_code(key[:-3] + " " + key[-3:]) if len(key) > 4 else key
            if outward:
                acc = sums[outward]
                acc[0] += lat
                acc[1] += lon
                acc[2] += 1
        self._outward = {k: (a[0] / a[2], a[1] / a[2]) for k, a in sums.items()}

    def __len__(self) -> int:
        return len(self._points)

    @classmethod
    def from_file(cls, path: str | Path) -> PostcodeFileGeocoder:
        """Reads either format, told apart by the first line (ONS has a header)."""
        path = Path(path)
        with path.open(encoding="utf-8-sig", newline="") as handle:
            first = handle.readline()
        if "\t" in first:
            return cls.from_geonames(path)
        return cls.from_ons(path)

    @classmethod
    def from_geonames(cls, path: str | Path) -> PostcodeFileGeocoder:
        points = {}
        with Path(path).open(encoding="utf-8", newline="") as handle:
            for number, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
                if len(row) < 11:
                    raise ValueError(f"{path}:{number}: a GeoNames row has 12 columns, "
                                     f"found {len(row)}")
                points[row[1]] = _point(row[9], row[10], path, number)
        return cls(points, source=str(path))

    @classmethod
    def from_ons(cls, path: str | Path) -> PostcodeFileGeocoder:
        points = {}
        with Path(path).open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            fields = {f.lower(): f for f in reader.fieldnames or []}
            key = fields.get("pcds") or fields.get("pcd") or fields.get("pcd2")
            if key is None or "lat" not in fields or "long" not in fields:
                raise ValueError(f"{path}: an ONS Postcode Directory CSV needs the pcds (or "
                                 "pcd), lat and long columns")
            for number, row in enumerate(reader, start=2):
                lat, lon = row[fields["lat"]], row[fields["long"]]
                if lat.startswith("99.9"):
                    continue  # no grid reference
                points[row[key]] = _point(lat, lon, path, number)
        return cls(points, source=str(path))

    def locate(self, postcode: str) -> GeoPoint | None:
        key = normalise_postcode(postcode)
        if key in self._points:
            return GeoPoint(*self._points[key])
        outward = outward_code(postcode)
        if outward is not None and outward in self._outward:
            return GeoPoint(*self._outward[outward])
        return None

    def postcodes(self) -> list[str]:
        return sorted(self._points)


def _point(lat: str, lon: str, path: object, number: int) -> tuple[float, float]:
    try:
        point = GeoPoint(float(lat), float(lon))
    except ValueError:
        raise ValueError(f"{path}:{number}: {lat!r}, {lon!r} is not a latitude and "
                         "longitude") from None
    return point.latitude, point.longitude


class NominatimGeocoder:
    """A Nominatim-compatible HTTP geocoder (OpenStreetMap's, or one the brand runs). Public
    Nominatim allows one request a second and wants a real ``user_agent``; a failed or slow
    request is "not known" (None), so the order ships central rather than failing."""

    def __init__(self, base_url: str, *, user_agent: str = "dropline", country: str = "gb",
                 timeout: float = 3.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.user_agent = user_agent
        self.country = country
        self.timeout = timeout

    def locate(self, postcode: str) -> GeoPoint | None:
        if outward_code(postcode) is None and self.country == "gb":
            return None
        query = urllib.parse.urlencode({"postalcode": postcode.strip()[:10],
                                        "countrycodes": self.country, "format": "jsonv2",
                                        "limit": 1})
        request = urllib.request.Request(f"{self.base_url}/search?{query}",
                                         headers={"User-Agent": self.user_agent})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                found = json.loads(response.read(1_000_000))
            if not found:
                return None
            return GeoPoint(float(found[0]["lat"]), float(found[0]["lon"]))
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            return None


class ChainGeocoder:
    """Tries each geocoder in turn: the first that knows the postcode answers."""

    def __init__(self, geocoders: Sequence[Geocoder] | Iterable[Geocoder]) -> None:
        self.geocoders = list(geocoders)

    def locate(self, postcode: str) -> GeoPoint | None:
        for geocoder in self.geocoders:
            point = geocoder.locate(postcode)
            if point is not None:
                return point
        return None

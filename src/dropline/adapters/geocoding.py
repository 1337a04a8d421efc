"""Turning an address into a point, behind fulfilment's ``Geocoder`` Protocol
(``dropline.fulfilment.ports``, re-exported here).

`LondonDistrictGeocoder` is the built-in default: a small table of London postcode districts
(the outward code, "E8" of "E8 3PN") and an approximate centre for each, typed in by hand from
public maps. It is APPROXIMATE: a district spans one to three kilometres, so a point can be off
by a kilometre or more. That is good enough to pick a hub and quote a window, not to navigate;
a real geocoder (postcodes.io, an address file) can stand behind the same Protocol. Anything
outside the table (the rest of the UK, abroad) is not resolved, and the caller falls back to a
latitude and longitude or to central shipping.
"""

from __future__ import annotations

import re

from dropline.fulfilment.ports import Geocoder
from dropline.fulfilment.rules import GeoPoint

__all__ = ["Geocoder", "LondonDistrictGeocoder", "outward_code"]


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

"""Slot steering: which delivery windows a shopper is offered, at what price, and why. Pure
functions over plain data (no session, no I/O).

A window's *marginal cost* is what one more stop adds to the routes forming in it:

* the cheapest insertion into a provisional tour of the stops booked so far
  (``rules.insertion_quote``, refreshed at every quote as orders arrive), and
* when the demand map expects more stops before the window's cutoff, the same stop priced at
  the density the window is heading for (``density_quote``, a continuous approximation: its
  share of the vans' drive out and back, plus the local hop between neighbours at that
  density, plus the time at the door).

The lower of the two is the estimate: the insertion is an upper bound for today's stops, and
the density price is what a stop costs once the window fills as the map expects. A stop at an
address already booked in the window (a second order of the same household) costs no driving:
the parcels are handed over in one visit (consolidation).

Prices follow the marginal cost: a *green* window (a van already passes, the stop adds at most
``green_max_share`` of a trip of its own) is offered at the green price; the others at the base
price plus ``pass_through`` of their extra marginal cost over the hub's cheapest window, capped
at ``max_surcharge``; a window whose vans' time is used up, or that would take a route of its
own while another window of the hub costs under half as much, is hidden. Members with a
delivery subsidy get ``member_subsidy`` off whatever remains. The cheapest window of a hub is
never hidden, so steering narrows the choice without emptying it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from dropline.fulfilment.rules import GeoPoint, Insertion, VehicleCosts, round_amount

__all__ = [
    "EXTRA_PARCEL_SECONDS", "SAME_ADDRESS_METRES", "Offer", "WindowQuote", "density_quote", "offer_windows", "round_price",
    "window_capacity",
]

# Beardwood-Halton-Hammersley: an optimal tour through n random points of an area A is about
# 0.7124 * sqrt(n * A) long, so each stop's hop to its neighbour is about 0.7124 * sqrt(A / n).
TOUR_CONSTANT = 0.7124
# Bookings closer than this are one address: one stop, the parcels handed over together;
# each parcel after the first adds this much time at the door.
SAME_ADDRESS_METRES = 15.0
EXTRA_PARCEL_SECONDS = 30

# The reason a window whose vans' time is used up is hidden (checkout reads it as "full").
FULL_VANS = "hidden: the vans' time in this window is used up"


def window_capacity(*, vehicles: int, window_seconds: float, costs: VehicleCosts,
                    area_m2: float, expected_stops: float) -> int:
    """Stops a hub's vans can serve inside one window: each van serves a stop every
    (time at the door + the hop to the next at the expected density) seconds for the length
    of the window (the drive out happens before the window opens). From the vehicles and the
    time, not a fixed number; at least one stop per van."""
    if vehicles <= 0 or window_seconds <= 0:
        return 0
    hop = costs.seconds_for(costs.street_metres(_hop_metres(area_m2, expected_stops)))
    per_van = int(window_seconds // (costs.service_seconds + hop))
    return vehicles * max(per_van, 1)


def _hop_metres(area_m2: float, stops: float) -> float:
    return TOUR_CONSTANT * math.sqrt(max(area_m2, 1.0) / max(stops, 1.0))


def density_quote(depot: GeoPoint, destination: GeoPoint, costs: VehicleCosts, *,
                  expected_stops: float, area_m2: float, stops_per_route: int) -> Insertion:
    """The marginal cost of a stop in a window expected to hold ``expected_stops`` spread over
    ``area_m2``, served by routes of up to ``stops_per_route`` stops: a share of the drive out
    to this address and back, the hop from its neighbour, the time at the door."""
    stops = max(expected_stops, 1.0)
    per_route = max(1.0, min(float(stops_per_route), stops))
    stem = 2 * costs.street_metres(depot.metres_to(destination)) / per_route
    hop = costs.street_metres(_hop_metres(area_m2, stops))
    metres = stem + hop
    seconds = costs.seconds_for(metres) + costs.service_seconds
    return Insertion(metres, seconds, costs.amount_for(metres, seconds), int(stops), None)


@dataclass(frozen=True)
class WindowQuote:
    """One window of one hub, as steering sees it for one order."""

    window_id: int
    location_code: str
    insertion: Insertion  # against the stops booked so far
    forecast: Insertion | None  # at the expected density; None without a demand map
    remaining: int  # stops the vans can still take
    same_address: bool = False  # the household already has a stop in this window

    @property
    def marginal_amount(self) -> int:
        if self.same_address:
            return 0
        if self.forecast is None:
            return self.insertion.amount
        return min(self.insertion.amount, self.forecast.amount)


@dataclass(frozen=True)
class Offer:
    window_id: int
    location_code: str
    marginal_amount: int  # what the stop adds to the routes (the brand's cost, before handling)
    price_amount: int  # what the shopper pays
    green: bool
    hidden: bool
    reason: str


def round_price(amount: float) -> int:
    """Prices end in 5: 195, 245, 395 (to the nearest 5 minor units, half up)."""
    return max(0, 5 * round_amount(amount / 5))


def offer_windows(quotes: Sequence[WindowQuote], *, trip: Insertion, base_price: int,
                  green_price: int, member_subsidy: int = 0, green_max_share: float = 0.4,
                  pass_through: float = 0.5, max_surcharge: int | None = None,
                  metres_label: bool = True) -> list[Offer]:
    """Prices and hides one hub's windows for one order (see the module docstring)."""
    if not quotes:
        return []
    cap = base_price if max_surcharge is None else max_surcharge
    open_quotes = [q for q in quotes if q.remaining > 0]
    cheapest = min((q.marginal_amount for q in open_quotes), default=None)
    offers = []
    for quote in quotes:
        marginal = quote.marginal_amount
        ins = quote.insertion
        if quote.remaining <= 0:
            offers.append(Offer(quote.window_id, quote.location_code, marginal, 0, False, True,
                                FULL_VANS))
            continue
        assert cheapest is not None
        if quote.same_address:
            price, green = green_price, True
            reason = "green: your earlier order arrives in this window (one stop)"
        elif ins.booked_stops > 0 and ins.amount <= green_max_share * trip.amount:
            price, green = green_price, True
            near = (f" {ins.nearest_booked_metres:.0f} m away"
                    if metres_label and ins.nearest_booked_metres is not None else " nearby")
            reason = f"green: a van already passes{near}"
        elif marginal > 2 * cheapest and marginal >= 0.8 * trip.amount and marginal > 0:
            offers.append(Offer(quote.window_id, quote.location_code, marginal, 0, False, True,
                                "hidden: it would take a route of its own while another "
                                "window costs under half"))
            continue
        else:
            surcharge = min(cap, pass_through * (marginal - cheapest))
            price, green = round_price(base_price + surcharge), False
            reason = ("priced up: costs more to reach than the cheapest window"
                      if surcharge >= 5 else "standard price")
        if member_subsidy:
            price = max(0, price - member_subsidy)
            reason += "; member subsidy applied"
        offers.append(Offer(quote.window_id, quote.location_code, marginal, price, green, False,
                            reason))
    return offers

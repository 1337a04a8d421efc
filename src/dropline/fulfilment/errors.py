"""Fulfilment refusals, placed in the domain error tree (``dropline.errors``)."""

from __future__ import annotations

from dropline.errors import Conflict, InvalidInput


class WindowFull(Conflict):
    slug = "window-full"
    title = "Delivery window full"


class WindowClosed(Conflict):
    slug = "window-closed"
    title = "Delivery window closed for booking"


class AddressNotFound(InvalidInput):
    slug = "address-not-found"
    title = "Address not found"


__all__ = ["AddressNotFound", "WindowClosed", "WindowFull"]

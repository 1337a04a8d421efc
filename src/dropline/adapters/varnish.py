"""Varnish as the edge cache: purge by surrogate key through the ``xkey`` vmod.

``deploy/varnish/dropline.vcl`` copies each response's ``Surrogate-Key`` into ``xkey`` and
answers ``PURGE`` requests (from the addresses in its ``purgers`` ACL) carrying an
``xkey-purge: key1 key2`` header by invalidating every object tagged with any of the keys.
Fastly (``Surrogate-Key`` natively, ``POST /service/{id}/purge`` with the keys) and Cloudflare
(``Cache-Tag`` and purge by tag) plug in as other adapters of ``dropline.edge.EdgePurger``."""

from __future__ import annotations

from collections.abc import Iterable

import httpx

__all__ = ["VarnishXkeyPurger"]


class VarnishXkeyPurger:
    def __init__(self, url: str, *, timeout: float = 2.0) -> None:
        self.url = url
        self._client = httpx.Client(timeout=timeout)

    def purge(self, keys: Iterable[str]) -> None:
        wanted = " ".join(sorted(set(keys)))
        if not wanted:
            return
        response = self._client.request("PURGE", self.url, headers={"xkey-purge": wanted})
        if response.status_code != 200:
            raise RuntimeError(f"Varnish refused the purge ({response.status_code}): "
                               f"{response.text[:200]}")

"""Warm a drop's public pages before launch: render each (drop page, its product pages, home)
with the same code the server uses, report its size, ETag and render time, and, with a base URL,
GET each through the edge (a CDN, or the server itself, whose in-process cache fills) so the
crowd's first requests are hits. Used by ``dropline drops prewarm``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from dropline.bootstrap import build_services
from dropline.catalog.models import Product, Variant
from dropline.clock import Clock
from dropline.config import Settings
from dropline.db import Database
from dropline.drops import service as drops
from dropline.drops.pages import render_drop
from dropline.errors import ServiceUnavailable
from dropline.services import Services
from dropline.web import caching
from dropline.web.pages import render_home, render_product


@dataclass(frozen=True)
class Warmed:
    path: str
    status: int
    bytes: int
    etag: str
    keys: str
    ms: float
    edge_status: int | None = None
    edge_cache: str = ""  # the edge's X-Cache (or CDN equivalent) on the warming GET
    edge_same: bool | None = None  # the edge serves the bytes rendered here (same ETag)


def _pages(services: Services, drop_ref: str) -> list[tuple[str, Callable[[], Any],
                                                              caching.CachePolicy]]:
    with services.db.transaction() as session:
        drop = drops.find_drop(session, drop_ref[:120])
        variant_ids = [v.variant_id for v in drops.drop_variants(session, drop.id)]
        slugs = list(session.scalars(
            select(Product.slug).join(Variant, Variant.product_id == Product.id)
            .where(Variant.id.in_(variant_ids)).distinct().order_by(Product.slug)))
        drop_id = drop.id
    pages: list[tuple[str, Callable[[], Any], caching.CachePolicy]] = [
        (f"/drops/{drop_id}", lambda: render_drop(services, str(drop_id)), caching.DROP)]
    pages += [(f"/products/{slug}", lambda slug=slug: render_product(services, slug),
               caching.CATALOGUE) for slug in slugs]
    pages.append(("/", lambda: render_home(services), caching.CATALOGUE))
    return pages


def prewarm_drop(db: Database, *, clock: Clock, settings: Settings, drop_ref: str,
                 base_url: str | None = None, cache: caching.PageCache | None = None,
                 http: httpx.Client | None = None,
                 progress: Callable[[str], None] | None = None) -> list[Warmed]:
    services = build_services(settings, db=db, clock=clock)
    cache = cache or caching.PageCache(now=lambda: clock.now().timestamp())
    rows = []
    client = http or (httpx.Client(base_url=base_url, timeout=10) if base_url else None)
    try:
        for path, render, policy in _pages(services, drop_ref):
            if progress:
                progress(path)
            started = time.perf_counter()
            page = caching.warm(cache, path, policy=policy, render=render)
            ms = (time.perf_counter() - started) * 1000
            row = Warmed(path, page.status_code, len(page.body), page.etag,
                         " ".join(sorted(page.keys)), round(ms, 2))
            if client is not None:
                try:
                    response = client.get(path)
                except httpx.HTTPError as exc:
                    raise ServiceUnavailable(f"the edge at {base_url} did not answer ({exc}); "
                                             "check --base-url") from None
                row = Warmed(**{**row.__dict__, "edge_status": response.status_code,
                                # Varnish's verdict (deploy/varnish), else the shop's own
                                "edge_cache": (response.headers.get("x-edge-cache")
                                               or response.headers.get("x-cache", "")),
                                "edge_same": response.headers.get("etag") == page.etag})
            rows.append(row)
    finally:
        if client is not None and http is None:
            client.close()
    return rows


def print_warmed(console: Console, rows: list[Warmed]) -> None:
    table = Table(title="pages warmed")
    edge = any(r.edge_status is not None for r in rows)
    for column in ("path", "status", "bytes", "ETag", "ms", "surrogate keys",
                   *(("edge", "edge cache", "same bytes") if edge else ())):
        table.add_column(column, justify="right" if column in ("bytes", "ms") else "left")
    for r in rows:
        cells = [r.path, str(r.status), f"{r.bytes:,}", r.etag, f"{r.ms:.1f}", r.keys]
        if edge:
            cells += [str(r.edge_status), r.edge_cache or "-", "yes" if r.edge_same else "no"]
        table.add_row(*cells)
    console.print(table)

"""Edge caching for the public storefront, as one mechanism shared by every cacheable page.

A public page (home, product, drop) is rendered *without* anything about the visitor, so the
same bytes can be served to everyone by a CDN, by Varnish, or, in the embedded default, by the
in-process :class:`PageCache`. Each response carries:

* ``Cache-Control: public, max-age=.., s-maxage=.., stale-while-revalidate=..``;
* a strong ``ETag`` (a digest of the exact bytes): ``If-None-Match`` with it gets a 304;
* ``Surrogate-Key``: the objects the page shows (``product-12 drop-3``), so one purge by key
  clears every page that shows a changed object.

Personal bits (cart count, who is signed in, member state, drop eligibility) are fetched by the
page's script from ``/api/v1/me/summary`` (``private, no-store``); the page itself never varies.

Purging is tied to the database, not to call sites: :func:`install_purge_hooks` listens to the
sessions of a :class:`~dropline.db.Database`. When a transaction changes a product, a variant
(price), stock, a drop or a drop's variants, or starts or stops an A/B experiment on a kind of
page (``popups.experiments``), it records one ``cache.purge`` event with the
surrogate keys *in the same transaction* (so the webhook outbox delivers it to any CDN purger
subscribed to ``cache.purge`` only if the change committed), and after the commit the in-process
caches drop the entries carrying those keys and the edge cache in front (Varnish, when
``DROPLINE_EDGE_PURGE_URL`` names it: ``dropline.edge``) is purged by the same keys.

Per-unit drop sales (the ``drop_slots`` rows) deliberately emit nothing: a purge per sale would
add a write to the drop's hot path and empty the cache exactly when the crowd arrives. A drop
page is instead cached briefly (seconds) and its script reads the live state from the uncached
drop API; a drop's schedule, restock or variant change does purge.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy import event, select
from sqlalchemy.orm import ORMExecuteState, Session

from dropline.catalog.models import Product, Variant
from dropline.clock import Clock
from dropline.db import Database
from dropline.drops.models import Drop, DropVariant
from dropline.events.service import record_event
from dropline.media.models import MediaAsset, MediaOwner
from dropline.popups.experiments import page_key
from dropline.popups.models import Experiment

PRIVATE = "private, no-store"


@dataclass(frozen=True)
class CachePolicy:
    """How long browsers (max-age) and shared caches (s-maxage) may keep a page, and how long a
    shared cache may serve it stale while fetching a fresh copy."""

    max_age: int
    s_maxage: int
    stale_while_revalidate: int

    @property
    def header(self) -> str:
        return (f"public, max-age={self.max_age}, s-maxage={self.s_maxage}, "
                f"stale-while-revalidate={self.stale_while_revalidate}")


# Catalogue pages change rarely and are purged on change: the edge may keep them for minutes.
CATALOGUE = CachePolicy(max_age=60, s_maxage=600, stale_while_revalidate=3600)
# A drop page changes state by the clock and by sales (not purged per sale): seconds only.
DROP = CachePolicy(max_age=5, s_maxage=5, stale_while_revalidate=30)


@dataclass(frozen=True)
class CachedPage:
    body: bytes
    etag: str
    keys: frozenset[str]
    status_code: int
    expires: float  # PageCache.now() after which the in-process copy is re-rendered


def strong_etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison for If-None-Match: a list of tags, ``W/`` ignored, or ``*``."""
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


class PageCache:
    """Rendered public pages in memory, by path, purged by surrogate key. Bounded (LRU)."""

    def __init__(self, max_entries: int = 512,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.now = now  # seconds; the app passes its injected clock, so tests control expiry
        self._entries: OrderedDict[str, CachedPage] = OrderedDict()
        self._lock = threading.Lock()
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0

    def get(self, path: str) -> CachedPage | None:
        with self._lock:
            page = self._entries.get(path)
            if page is None or page.expires <= self.now():
                self.misses += 1
                return None
            self._entries.move_to_end(path)
            self.hits += 1
            return page

    def put(self, path: str, page: CachedPage) -> None:
        with self._lock:
            self._entries[path] = page
            self._entries.move_to_end(path)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def purge(self, keys: Iterable[str]) -> int:
        wanted = set(keys)
        with self._lock:
            stale = [p for p, page in self._entries.items() if page.keys & wanted]
            for path in stale:
                del self._entries[path]
            return len(stale)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def paths(self) -> list[str]:
        with self._lock:
            return list(self._entries)


# (html, surrogate keys, status) or, for pages that change by the clock, a fourth item: the
# seconds the render stays true (the in-process copy never outlives it).
Renderer = Callable[[], tuple[Any, ...]]


def page_cache_of(request: Request) -> PageCache:
    return request.app.state.page_cache


def _respond(request: Request, page: CachedPage, policy: CachePolicy, hit: bool) -> Response:
    headers = {"Cache-Control": policy.header, "ETag": page.etag,
               "Surrogate-Key": " ".join(sorted(page.keys)), "X-Cache": "hit" if hit else "miss"}
    if etag_matches(request.headers.get("if-none-match"), page.etag) and page.status_code == 200:
        return Response(status_code=304, headers=headers)
    return Response(page.body, status_code=page.status_code, headers=headers,
                    media_type="text/html; charset=utf-8")


def public_page(request: Request, *, policy: CachePolicy, render: Renderer,
                ttl: float | None = None, key: str | None = None) -> Response:
    """Serves a public page from the in-process cache, rendering it on a miss. ``render``
    returns (html, surrogate keys, status); it must not read the visitor's cookies. A 404 is
    cached too (briefly, by the same policy), so probing missing slugs costs no database."""
    cache = page_cache_of(request)
    path = key or request.url.path  # only parameters the page reads belong in ``key``
    page = cache.get(path)
    hit = page is not None
    if page is None:
        page = warm(cache, path, policy=policy, render=render, ttl=ttl)
    return _respond(request, page, policy, hit)


async def serve_public(request: Request, *, policy: CachePolicy, render: Renderer,
                       key: str | None = None) -> Response:
    """``public_page`` for ``async def`` endpoints: a hit is answered on the event loop with no
    thread hop (the common case under a crowd); only a miss renders, in the thread pool."""
    cache = page_cache_of(request)
    path = key or request.url.path
    page = cache.get(path)
    hit = page is not None
    if page is None:
        page = await run_in_threadpool(warm, cache, path, policy=policy, render=render)
    return _respond(request, page, policy, hit)


def services_of(request: Request) -> Any:
    """The app's services without a dependency (a sync dependency costs a thread hop)."""
    return request.app.state.services


def warm(cache: PageCache, path: str, *, policy: CachePolicy, render: Renderer,
         ttl: float | None = None) -> CachedPage:
    """Renders one page into the cache (used by requests on a miss and by prewarm)."""
    result = render()
    html, keys, status = result[:3]
    if len(result) > 3:
        ttl = result[3] if ttl is None else min(ttl, result[3])
    body = html.encode()
    seconds = policy.s_maxage if ttl is None else min(ttl, policy.s_maxage)
    page = CachedPage(body=body, etag=strong_etag(body), keys=frozenset(keys),
                      status_code=status, expires=cache.now() + max(seconds, 0.0))
    cache.put(path, page)
    return page


def private_response(response: Response) -> Response:
    """Pages for one signed-in person: never stored by any cache."""
    response.headers["Cache-Control"] = PRIVATE
    return response


# --- purge hooks ------------------------------------------------------------------------------

# Tables whose changes show on public pages, and the column naming the object in a bulk
# statement (UPDATE ... WHERE <column> = ?, INSERT ... VALUES (<column>)).
_BULK_COLUMNS = {"variants": "id", "products": "id", "stock_levels": "variant_id",
                 "drops": "id", "drop_variants": "drop_id"}


def _bound_ids(state: ORMExecuteState, column: str) -> set[int] | None:
    """The integer values bound to ``column`` in a statement's WHERE or VALUES, read from its
    compiled parameters (``id_1``, ``variant_id``...) and its execute parameters. None when
    they cannot be read (an ORM bulk statement compiles only inside the ORM)."""
    pattern = re.compile(rf"^{column}(_\d+)?$")
    rows: list[dict[str, Any]] = []
    # An ORM bulk statement compiles only inside the ORM: then the execute parameters alone.
    with contextlib.suppress(Exception):
        rows.append(dict(state.statement.compile(dialect=state.session.get_bind().dialect)
                         .params))
    given = state.parameters
    rows.extend(given if isinstance(given, list) else [given] if given else [])
    ids: set[int] = set()
    found = False
    for params in rows:
        for name, value in params.items():
            if not pattern.match(str(name)):
                continue
            found = True
            for item in value if isinstance(value, list | tuple | set) else [value]:
                if isinstance(item, int) and not isinstance(item, bool):
                    ids.add(item)
    return ids if found else None


@dataclass
class _Pending:
    products: set[int]
    variants: set[int]
    keys: set[str]


def _pending(session: Session) -> _Pending:
    pending = session.info.get("dl_purge")
    if pending is None:
        pending = session.info["dl_purge"] = _Pending(set(), set(), set())
    return pending


def _purge_owner_of(pending: _Pending, asset: MediaAsset) -> None:
    if asset.owner_kind is MediaOwner.product:
        pending.products.add(asset.owner_id)
        pending.keys.add("product-list")
    elif asset.owner_kind is MediaOwner.variant:
        pending.variants.add(asset.owner_id)
    elif asset.owner_kind is MediaOwner.drop:
        pending.keys.update({f"drop-{asset.owner_id}", "drop-list"})
    else:
        pending.keys.add(f"tier-{asset.owner_id}")


class PurgeHub:
    """One per Database: turns committed changes into ``cache.purge`` events and in-process
    invalidations for every page cache registered on it."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self.caches: weakref.WeakSet[PageCache] = weakref.WeakSet()
        self.edges: weakref.WeakSet[Any] = weakref.WeakSet()  # EdgePurgers (Varnish)
        target = db.sessions
        event.listen(target, "after_flush", self._after_flush)
        event.listen(target, "do_orm_execute", self._on_execute)
        event.listen(target, "before_commit", self._before_commit)
        event.listen(target, "after_commit", self._after_commit)
        event.listen(target, "after_rollback", self._after_rollback)

    def _after_flush(self, session: Session, _context: Any) -> None:
        for obj in (*session.new, *session.dirty, *session.deleted):
            if isinstance(obj, Variant):
                _pending(session).products.add(obj.product_id)
                if obj in session.new:
                    _pending(session).keys.add("product-list")
            elif isinstance(obj, Product):
                pending = _pending(session)
                pending.products.add(obj.id)
                if obj in session.new or obj in session.deleted or obj in session.dirty:
                    pending.keys.add("product-list")
            elif isinstance(obj, Drop):
                _pending(session).keys.update({f"drop-{obj.id}", "drop-list"})
            elif isinstance(obj, DropVariant):
                _pending(session).keys.add(f"drop-{obj.drop_id}")
                _pending(session).variants.add(obj.variant_id)
            elif isinstance(obj, Experiment):  # started or stopped on a kind of page
                _pending(session).keys.add(page_key(obj.page_kind))
            elif isinstance(obj, MediaAsset):  # an image shows on its owner's pages
                _purge_owner_of(_pending(session), obj)

    def _on_execute(self, state: ORMExecuteState) -> None:
        if not (state.is_update or state.is_insert or state.is_delete):
            return
        table = getattr(state.statement, "table", None)
        column = _BULK_COLUMNS.get(getattr(table, "name", ""))
        if column is None:
            return
        ids = _bound_ids(state, column)
        pending = _pending(state.session)
        name = table.name  # type: ignore[union-attr]
        if ids is None:  # unreadable: purge the listings rather than miss a change
            pending.keys.update({"product-list", "drop-list"})
            return
        if name in ("variants", "stock_levels"):
            pending.variants.update(ids)
        elif name == "products":
            pending.products.update(ids)
        else:
            pending.keys.update(f"drop-{i}" for i in ids)

    def _before_commit(self, session: Session) -> None:
        if session.new or session.dirty or session.deleted:
            # Commit calls this hook before its own flush: flush first, so a change that only
            # the commit would have flushed is purged too.
            session.flush()
        pending = session.info.pop("dl_purge", None)
        if pending is None or not (pending.products or pending.variants or pending.keys):
            return
        products = set(pending.products)
        if pending.variants:
            products.update(session.scalars(select(Variant.product_id)
                                            .where(Variant.id.in_(pending.variants))))
        keys = sorted(pending.keys | {f"product-{p}" for p in products})
        record_event(session, clock=self.clock, type="cache.purge", subject_type="cache",
                     subject_id=" ".join(keys)[:60], payload={"surrogate_keys": keys})
        session.info["dl_purged"] = keys

    def _after_commit(self, session: Session) -> None:
        keys = session.info.pop("dl_purged", None)
        if keys:
            for cache in list(self.caches):
                cache.purge(keys)
            for edge in list(self.edges):  # returns at once (edge.BackgroundPurger)
                edge.purge(keys)

    def _after_rollback(self, session: Session) -> None:
        session.info.pop("dl_purge", None)
        session.info.pop("dl_purged", None)


_hub_lock = threading.Lock()


def install_purge_hooks(db: Database, clock: Clock, cache: PageCache,
                        edge: Any | None = None) -> PurgeHub:
    """Idempotent per Database (tests build many apps over one engine): the newest clock wins.
    ``edge``: the process's edge purger (``dropline.edge``), if the root built one."""
    with _hub_lock:
        hub: PurgeHub | None = getattr(db, "_dl_purge_hub", None)
        if hub is None:
            hub = PurgeHub(db, clock)
            db._dl_purge_hub = hub  # type: ignore[attr-defined]
        hub.clock = clock
        hub.caches.add(cache)
        if edge is not None:
            hub.edges.add(edge)
        return hub


def install(app: Any, services: Any) -> PageCache:
    """Gives the app its in-process page cache and ties it to the database's purge hooks."""
    cache = PageCache(now=lambda: services.clock.now().timestamp())
    app.state.page_cache = cache
    install_purge_hooks(services.db, services.clock, cache, services.edge)
    return cache

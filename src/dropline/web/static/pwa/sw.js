// Dropline service worker (scope "/"). App shell pre-cached at install; public pages and
// product tiles served stale-while-revalidate; other navigations network-first with the
// cached copy, else /offline, when the network fails. Never touches /api/ or non-GET
// requests: writes go through the page's outbox (IndexedDB), so an offline checkout is sent
// by the page with its Idempotency-Key, not replayed blindly by the worker.
const VERSION = "dropline-v3";  // bumped when the shell's files change
const SHELL = ["/offline", "/static/shop.css", "/static/pwa/app.js", "/static/pwa/outbox.js",
               "/static/pwa/outbox_view.js", "/static/pwa/checkout.js", "/static/pwa/drop.js",
               "/static/pwa/icon-192.png", "/static/pwa/icon-512.png", "/manifest.webmanifest"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(VERSION).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== VERSION).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

// Catalogue pages may be a little stale; a drop page changes state by the minute, so it is
// fetched first and its copy only used offline.
const PUBLIC = /^\/(|products\/[^/]+|offline)$/;
const DROP = /^\/drops\/[^/]+$/;

async function staleWhileRevalidate(request) {
  const cache = await caches.open(VERSION);
  const cached = await cache.match(request);
  const fresh = fetch(request).then((response) => {
    if (response.ok) cache.put(request, response.clone());
    return response;
  });
  if (cached) { fresh.catch(() => {}); return cached; }
  return fresh.catch(async () => (await cache.match("/offline")) || Response.error());
}

async function networkFirst(request, keep) {
  const cache = await caches.open(VERSION);
  try {
    const response = await fetch(request);
    if (keep && response.ok) cache.put(request, response.clone());
    return response;
  } catch (error) {
    return (await cache.match(request)) || (await cache.match("/offline")) || Response.error();
  }
}

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin ||
      url.pathname.startsWith("/api/")) return;
  if (url.pathname.startsWith("/static/") || PUBLIC.test(url.pathname)) {
    event.respondWith(staleWhileRevalidate(event.request));
  } else if (DROP.test(url.pathname)) {
    event.respondWith(networkFirst(event.request, true));
  } else if (event.request.mode === "navigate") {
    event.respondWith(networkFirst(event.request, false));
  }
});

"""The waiting page: a shell with no personal data, so any cache (or CDN) may serve it to the
whole crowd, and a small script that polls ``/api/v1/drops/{id}/queue/me`` (no-store) for the
shopper's own position. The storefront will style it; it works as is."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment

from dropline.drops import service
from dropline.errors import NotFound
from dropline.web.deps import SessionDep, SettingsDep

router = APIRouter(include_in_schema=False)
CACHE_SECONDS = 60

_env = Environment(autoescape=True)
_PAGE = _env.from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ name }} · waiting room · {{ shop }}</title></head>
<body>
<main data-drop-id="{{ drop_id }}">
  <h1>{{ name }}</h1>
  <p>Opens {{ starts_at }} (UTC). Keep this page open: you keep your place.</p>
  <p id="status" aria-live="polite">Checking your place in the queue…</p>
  <noscript><p>Your place: <a href="/api/v1/drops/{{ drop_id }}/queue/me">see it here</a>.</p></noscript>
</main>
<script>
(function () {
  var id = {{ drop_id }}, el = document.getElementById("status");
  function show(q) {
    el.textContent = q.admitted ? "It's your turn: you can buy now."
      : "You are number " + q.position + " in the queue; about " + q.eta_seconds + " s to go.";
    return q.admitted ? 0 : q.poll_after_seconds;
  }
  function poll(method) {
    fetch("/api/v1/drops/" + id + "/queue" + (method === "POST" ? "" : "/me"),
          {method: method, credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (q) { var s = show(q); if (s) setTimeout(function () { poll("GET"); }, s * 1000); })
      .catch(function (s) {
        el.textContent = s === 401 ? "Sign in to join the queue." : "Reconnecting…";
        if (s !== 401) setTimeout(function () { poll("GET"); }, 5000);
      });
  }
  poll("POST");
})();
</script>
</body></html>
""")


@router.get("/drops/{slug}/waiting-room", response_class=HTMLResponse)
def waiting_room(slug: str, request: Request, session: SessionDep, settings: SettingsDep,
                 if_none_match: Annotated[str | None, Header()] = None) -> Response:
    try:
        drop = service.find_drop(session, slug[:120])
    except NotFound:
        return HTMLResponse("<!doctype html><title>Not found</title><h1>No such drop</h1>",
                            status_code=404)
    body = _PAGE.render(drop_id=drop.id, name=drop.name, shop=settings.shop_name,
                        starts_at=drop.starts_at.strftime("%Y-%m-%d %H:%M"))
    etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:20] + '"'
    headers = {"Cache-Control": f"public, max-age={CACHE_SECONDS}", "ETag": etag,
               "Surrogate-Key": f"drop-{drop.id}"}
    if if_none_match == etag:
        return Response(status_code=304, headers=headers)
    return HTMLResponse(body, headers=headers)

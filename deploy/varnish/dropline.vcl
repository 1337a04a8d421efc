vcl 4.1;
# Varnish in front of Dropline (Debian: apt-get install varnish varnish-modules).
#
# What it caches is what the shop marks cacheable: responses with `Cache-Control: public` and
# an `s-maxage` (the home, product and drop pages), kept for their s-maxage and served stale
# for their stale-while-revalidate while Varnish refetches. Everything else (private pages,
# the JSON API, any response that sets a cookie) goes to the shop every time. Public pages
# never read the visitor's cookies (their personal bits come from /api/v1/me/summary), so a
# request's cookies do not split the cache; they still reach the shop, which needs them for
# everything personal. `Vary: X-Dropline-Variant` keeps one copy per A/B variant.
#
# Purging: the shop sends `PURGE /` with `xkey-purge: product-12 drop-3` after each commit
# that changes a public page (DROPLINE_EDGE_PURGE_URL=http://<varnish>/); every object whose
# `Surrogate-Key` carries one of the keys is invalidated. Only the `purgers` below may purge.
#
# This file holds the behaviour only: the backend (the shop or the load balancer in front of
# its nodes) and the `purgers` ACL come from the file that includes it (local.vcl for one
# machine, compose.vcl for deploy/compose.yaml, your own otherwise).

import std;
import xkey;

sub vcl_recv {
    if (req.method == "PURGE") {
        if (client.ip !~ purgers) {
            return (synth(403, "Not a purger"));
        }
        if (!req.http.xkey-purge) {
            return (synth(400, "PURGE needs an xkey-purge header"));
        }
        set req.http.n-gone = xkey.purge(req.http.xkey-purge);
        return (synth(200, "Invalidated " + req.http.n-gone + " objects"));
    }
    if (req.method != "GET" && req.method != "HEAD") {
        return (pass);
    }
    # Look every GET up, cookies or not: the shop decides what is shareable (below), and a
    # response it marks private is never stored, so no visitor gets another's page.
    return (hash);
}

sub vcl_backend_response {
    if (beresp.http.Set-Cookie
            || beresp.http.Cache-Control !~ "(^|[ ,])public([ ,]|$)"
            || beresp.http.Cache-Control ~ "(private|no-store|no-cache)") {
        # Remember briefly that this URL is not shareable (no request coalescing on it).
        set beresp.uncacheable = true;
        set beresp.ttl = 60s;
        return (deliver);
    }
    if (beresp.http.Surrogate-Key) {
        set beresp.http.xkey = beresp.http.Surrogate-Key;
    }
    return (deliver);
}

sub vcl_deliver {
    unset resp.http.xkey;
    if (obj.uncacheable) {
        set resp.http.X-Edge-Cache = "PASS";
    } elsif (obj.hits > 0) {
        set resp.http.X-Edge-Cache = "HIT";
    } else {
        set resp.http.X-Edge-Cache = "MISS";
    }
}

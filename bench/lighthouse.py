"""Lighthouse (mobile profile) on the demo shop's home, product, drop and checkout pages: the
four category scores and the cumulative layout shift, median of N runs per page.

    .venv/bin/python bench/lighthouse.py --runs 3          # a Rich table
    .venv/bin/python bench/lighthouse.py --runs 3 --json   # JSON on the last line

It seeds the demo brand (with its pictures) into a temporary SQLite file, serves it with
`dropline serve` on a free port, signs a demo shopper in and fills a cart for the checkout page
(Lighthouse sends that session's cookie), and runs npm `lighthouse` 12.2.3 driving Debian's
Chromium (CHROME_PATH, default /usr/bin/chromium). Lighthouse is installed outside the repo:

    mkdir -p ~/.cache/dropline-lighthouse && cd ~/.cache/dropline-lighthouse \\
      && npm i -E lighthouse@12.2.3

(or point --lighthouse at another `lighthouse` binary). Targets (docs/benchmarks.md):
performance >= 95, accessibility 100, best practices >= 95, SEO >= 95, CLS < 0.05."""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
DROPLINE = ROOT / ".venv" / "bin" / "dropline"
LIGHTHOUSE = Path.home() / ".cache" / "dropline-lighthouse" / "node_modules" / ".bin" / "lighthouse"
CATEGORIES = ("performance", "accessibility", "best-practices", "seo")
SHOPPER = ("amara.shah.1@example.com", "ember-and-fig-shopper")
PAGES = {"home": "/", "product": "/products/fig-eau-de-parfum", "drop": "/drops/ember-oud",
         "checkout": "/checkout"}
TARGETS = {"performance": 95, "accessibility": 100, "best-practices": 95, "seo": 95}
CLS_TARGET = 0.05


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _token(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _shopper_cookie(url: str) -> str:
    """A signed-in demo shopper with one item in the cart, as a Cookie header."""
    with httpx.Client(base_url=url, timeout=30, follow_redirects=True) as client:
        form = client.get("/sign-in").text
        client.post("/sign-in", data={"email": SHOPPER[0], "password": SHOPPER[1],
                                      "csrf_token": _token(form)})
        product = client.get(PAGES["product"]).text
        variant = re.search(r'name="variant_id" value="(\d+)"', product).group(1)
        # The cached product page's form proves its origin instead of carrying a token.
        client.post("/cart/lines", data={"variant_id": variant, "quantity": "1"},
                    headers={"Origin": url, "Sec-Fetch-Site": "same-origin"})
        assert client.get("/checkout").url.path == "/checkout", "the shopper is not signed in"
        return "; ".join(f"{name}={value}" for name, value in client.cookies.items())


def _serve(env: dict[str, str], port: int) -> subprocess.Popen:
    server = subprocess.Popen([str(DROPLINE), "serve", "--port", str(port), "--no-migrate"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              cwd=env["DROPLINE_MEDIA_DIR"].rsplit("/", 1)[0])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    server.terminate()
    raise SystemExit("dropline serve did not become ready within 60 s")


def _lighthouse(binary: str, url: str, chrome: str, cookie: str | None) -> dict[str, float]:
    command = [binary, url, "--output=json", "--output-path=stdout", "--quiet",
               "--only-categories=" + ",".join(CATEGORIES),
               "--chrome-flags=--headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage"]
    if cookie:
        command.append("--extra-headers=" + json.dumps({"Cookie": cookie}))
    done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "CHROME_PATH": chrome})
    if done.returncode != 0:
        raise SystemExit(f"lighthouse failed on {url}: {done.stderr[-2000:]}")
    report = json.loads(done.stdout)
    scores = {name: round(report["categories"][name]["score"] * 100) for name in CATEGORIES}
    scores["cls"] = report["audits"]["cumulative-layout-shift"]["numericValue"]
    scores["lcp_ms"] = report["audits"]["largest-contentful-paint"]["numericValue"]
    failing = [audit["id"] for audit in report["audits"].values()
               if audit.get("score") is not None and audit["score"] < 0.9
               and audit.get("scoreDisplayMode") in ("binary", "numeric", "metricSavings")]
    scores["failing"] = failing
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="Lighthouse runs per page.")
    parser.add_argument("--lighthouse", default=str(LIGHTHOUSE), help="The lighthouse binary.")
    parser.add_argument("--chrome", default=os.environ.get("CHROME_PATH", "/usr/bin/chromium"))
    parser.add_argument("--customers", type=int, default=60, help="Demo customers to seed.")
    parser.add_argument("--json", action="store_true", help="Print JSON instead of a table.")
    args = parser.parse_args()
    if not Path(args.lighthouse).exists():
        raise SystemExit(f"no lighthouse at {args.lighthouse}: see this script's docstring")
    console = Console(stderr=True)
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        # PYTHONPATH: the dropline of this checkout, not whichever the venv installed.
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"),
               "DROPLINE_DATABASE_URL": f"sqlite:///{tmp}/shop.db",
               "DROPLINE_MEDIA_DIR": f"{tmp}/media", "DROPLINE_RUN_SCHEDULER": "false",
               "DROPLINE_SHOP_NAME": "Ember & Fig", "DROPLINE_SECRET_KEY": "bench-lighthouse",
               "DROPLINE_MAIL_OUTBOX_DIR": f"{tmp}/mail"}
        console.print("seeding the demo shop…")
        subprocess.run([str(DROPLINE), "demo", "--customers", str(args.customers)], env=env,
                       check=True, stdout=subprocess.DEVNULL, cwd=tmp)
        server = _serve(env, port)
        try:
            url = f"http://127.0.0.1:{port}"
            cookie = _shopper_cookie(url)
            runs: dict[str, list[dict]] = {}
            for name, path in PAGES.items():
                for i in range(args.runs):
                    console.print(f"lighthouse {name} ({i + 1}/{args.runs})")
                    runs.setdefault(name, []).append(_lighthouse(
                        args.lighthouse, url + path, args.chrome,
                        cookie if name == "checkout" else None))
        finally:
            server.terminate()
            server.wait(timeout=20)
    result = {"benchmark": "lighthouse", "runs": args.runs, "profile": "mobile",
              "lighthouse": "12.2.3", "pages": {}}
    for name, samples in runs.items():
        result["pages"][name] = {
            **{key: statistics.median(s[key] for s in samples)
               for key in (*CATEGORIES, "cls", "lcp_ms")},
            "failing_audits": sorted({a for s in samples for a in s["failing"]})}
    if args.json:
        print(json.dumps(result))
        return
    table = Table(title=f"Lighthouse, mobile, median of {args.runs}")
    for column in ("page", *CATEGORIES, "CLS", "LCP ms", "audits under 0.9"):
        table.add_column(column)
    for name, page in result["pages"].items():
        marks = [f"{page[c]:g}" + ("" if page[c] >= TARGETS[c] else " ✗") for c in CATEGORIES]
        cls = f"{page['cls']:.3f}" + ("" if page["cls"] < CLS_TARGET else " ✗")
        table.add_row(name, *marks, cls, f"{page['lcp_ms']:.0f}",
                      ", ".join(page["failing_audits"]) or "-")
    Console().print(table)


if __name__ == "__main__":
    main()

"""The README's first command, end to end: seed the demo into a SQLite file and serve it."""

import html
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

DROPLINE = Path(sys.executable).parent / "dropline"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_demo_then_serve_answers_the_storefront_and_the_docs(tmp_path):
    env = {**os.environ, "DROPLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'shop.db'}"}
    seeded = subprocess.run([DROPLINE, "demo", "--customers", "30"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert seeded.returncode == 0, seeded.stderr
    port = _free_port()
    server = subprocess.Popen([DROPLINE, "serve", "--port", str(port), "--log-level", "warning"],
                              env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:  # poll until the server accepts connections (bounded)
            try:
                health = httpx.get(f"{base}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline, "server did not start within 60 s"
                time.sleep(0.2)
        home = httpx.get(base + "/")
        docs = httpx.get(base + "/docs")
        schema = httpx.get(base + "/openapi.json")
        products = httpx.get(base + "/api/v1/products").json()
    finally:
        server.terminate()
        server.wait(timeout=20)

    assert health.json()["status"] == "ok"
    assert home.status_code == 200 and products and html.escape(products[0]["name"]) in home.text
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert "/api/v1/checkout" in schema.json()["paths"]

"""A drop through two nodes, then its mail through workers that die: the two-node layout run
on this machine's loopback ports.

    .venv/bin/python bench/two_nodes.py --json
    .venv/bin/python bench/two_nodes.py --units 400 --shoppers 500 --json

1. As ``drop_sellout.py``: (re)creates ``dropline_bench`` on PostgreSQL, seeds a drop of
   ``--units`` units (2 per person) and ``--shoppers`` signed-in shoppers, and flushes the
   bench's Redis keys.
2. Starts two nodes, each a ``dropline serve`` process on its own port, one database and one
   Redis, with the scheduler off (as deploy/compose.yaml runs them). When HAProxy is installed
   (Debian: ``apt-get install haproxy``) it runs in front of them with the shipped
   ``deploy/haproxy/haproxy.cfg`` (its addresses rewritten to this machine's loopback ports)
   and the whole crowd goes through it; each node's share is read from its ``/metrics``.
   Otherwise (or with ``--no-balancer``) shopper *i* talks to node *i mod 2* itself. The whole
   crowd asks for admission and buys at once.
3. Runs the jobs as a deployment does, with workers that die: a first ``dropline worker`` is
   killed (SIGKILL) as soon as it has sent some of the drop's confirmation mails, then two
   workers run together until the mail outbox is empty. Mail goes by SMTP to a real server in
   this process (aiosmtpd), which counts every message it receives by Message-ID.
4. Prints (last line, JSON): ``through`` (``haproxy`` or ``direct``), units sold per node,
   oversold (units beyond the cap), lost paid
   orders, units left while someone was told sold out, and for the jobs: paid drop orders,
   confirmation mails queued, sent, received, received twice, and still pending. A mail is
   received twice only if its worker died between the SMTP server's acceptance and marking it
   sent (at-least-once delivery; the Message-ID lets the receiving side drop the copy).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from email import message_from_bytes
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import drop_sellout as bench  # noqa: E402  (the same seed, server and crowd)
from leanhttp import Pool  # noqa: E402


MAIL_LEASE_SECONDS = 5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class CountingHandler:
    """aiosmtpd handler: every message received, by Message-ID."""

    def __init__(self) -> None:
        self.received: collections.Counter[str] = collections.Counter()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content)
        self.received[message.get("Message-ID", "").strip("<>")] += 1
        return "250 OK"


async def crowd_through(ports: list[int], ids: dict[str, Any], tokens: list[str]
                        ) -> tuple[dict[int, list[tuple[int, dict, float]]], float]:
    pools = [Pool("127.0.0.1", port, max(1, len(tokens[i::len(ports)])))
             for i, port in enumerate(ports)]
    wait = (ids["starts_at"] - datetime.now(UTC)).total_seconds()
    if wait > 0:
        await asyncio.sleep(wait + 0.1)
    for pool in pools:
        await pool.open()
    drop_id = ids["drop_id"]

    async def shopper(node: int, token: str) -> tuple[int, dict, float]:
        status, body, _ = await bench.send(pools[node], "POST",
                                           f"/api/v1/drops/{drop_id}/admission", token=token)
        if status != 200:
            return status, body, 0.0
        return await bench.send(pools[node], "POST", f"/api/v1/drops/{drop_id}/purchase",
                                token=token, key=uuid.uuid4().hex, json_body={
                                    "lines": [{"variant_id": ids["drop_variant"],
                                               "quantity": bench.PER_PERSON}],
                                    "admission_token": body["token"],
                                    "payment_method": bench.CARD,
                                    "shipping_address": bench.ADDRESS})

    started = time.perf_counter()
    try:
        results = await asyncio.gather(*(shopper(i % len(ports), token)
                                         for i, token in enumerate(tokens)))
    finally:
        for pool in pools:
            pool.close()
    seconds = time.perf_counter() - started
    by_node: dict[int, list[tuple[int, dict, float]]] = {n: [] for n in range(len(ports))}
    for i, result in enumerate(results):
        by_node[i % len(ports)].append(result)
    return by_node, seconds


HAPROXY_CONFIG = bench.ROOT / "deploy" / "haproxy" / "haproxy.cfg"


def haproxy_binary() -> str | None:
    found = shutil.which("haproxy") or "/usr/sbin/haproxy"
    return found if Path(found).exists() else None


def start_haproxy(binary: str, node_ports: list[int], work: Path, log: Any
                  ) -> tuple[subprocess.Popen[bytes], int]:
    """HAProxy with the shipped configuration, its front on a free loopback port and its
    servers at the nodes' ports; returns once it answers through to a node."""
    import httpx

    port = free_port()
    config = HAPROXY_CONFIG.read_text().replace("bind :8080", f"bind 127.0.0.1:{port}")
    for n, node_port in enumerate(node_ports, start=1):
        config = config.replace(f"node{n}:8000", f"127.0.0.1:{node_port}")
    path = work / "haproxy.cfg"
    path.write_text(config)
    checked = subprocess.run([binary, "-c", "-f", str(path)], capture_output=True, text=True)
    if checked.returncode != 0:
        raise SystemExit(f"haproxy refused its configuration: {checked.stdout}{checked.stderr}")
    process = subprocess.Popen([binary, "-db", "-f", str(path)], stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process, port
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"haproxy did not answer on {port}; see {work}")
        time.sleep(0.1)  # polls until it answers, bounded by the deadline


def node_figures(port: int) -> dict[str, int]:
    """A node's drop purchases as its /metrics reports them (the sum over its workers)."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    paid = refused = 0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "dropline_drop_purchases_total" and \
                    sample.labels.get("outcome") == "paid":
                paid += int(sample.value)
            elif sample.name == "dropline_drop_refusals_total":
                refused += int(sample.value)
    return {"paid": paid, "refused": refused}


def mail_counts(ids: dict[str, Any]) -> dict[str, int]:
    from sqlalchemy import func, select

    from dropline.db import Database
    from dropline.notifications.models import MailOutboxItem
    from dropline.orders.models import Order, OrderLine, OrderStatus

    db = Database(bench.DB_URL)
    try:
        with db.transaction() as session:
            drop_orders = select(OrderLine.order_id).where(
                OrderLine.variant_id == ids["drop_variant"])
            paid = session.scalar(select(func.count()).select_from(Order).where(
                Order.id.in_(drop_orders), Order.status == OrderStatus.paid))
            rows = dict(session.execute(
                select(MailOutboxItem.status, func.count())
                .where(MailOutboxItem.order_id.in_(drop_orders),
                       MailOutboxItem.template == "order_confirmation")
                .group_by(MailOutboxItem.status)).all())
    finally:
        db.dispose()
    counts = {str(status): int(n) for status, n in rows.items()}
    return {"paid_orders": int(paid), "queued": sum(counts.values()),
            "sent": counts.get("sent", 0), "pending": counts.get("pending", 0),
            "failed": counts.get("failed", 0)}


def start_worker(smtp_port: int, log: Any) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DROPLINE_DATABASE_URL": bench.DB_URL,
           "DROPLINE_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}?starttls=off",
           # The killed worker's mail in hand is sent again once its lease lapses.
           "DROPLINE_MAIL_LEASE_SECONDS": str(MAIL_LEASE_SECONDS),
           "PYTHONPATH": str(bench.ROOT / "src")}
    env.pop("DROPLINE_REDIS_URL", None)
    return subprocess.Popen([sys.executable, "-c",
                             "from dropline.cli import app; app(['worker', '--interval', '0.2'])"],
                            env=env, cwd=bench.ROOT, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def kill(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        process.wait(timeout=20)


def run_jobs(ids: dict[str, Any], handler: CountingHandler, smtp_port: int, log_path: Path,
             progress: Any) -> dict[str, Any]:
    """A worker killed mid-way, then two together until nothing is pending (bounded)."""
    with open(log_path, "ab") as log:
        first = start_worker(smtp_port, log)
        deadline = time.monotonic() + 180
        while sum(handler.received.values()) == 0 and time.monotonic() < deadline:
            if first.poll() is not None:
                raise SystemExit(f"the first worker exited; see {log_path}")
            time.sleep(0.05)  # polls the SMTP server's count, bounded by the deadline
        kill(first)
        killed_after = sum(handler.received.values())
        progress(f"worker 1 killed after {killed_after} mails")
        workers = [start_worker(smtp_port, log) for _ in range(2)]
        try:
            deadline = time.monotonic() + 120 + MAIL_LEASE_SECONDS
            while mail_counts(ids)["pending"] and time.monotonic() < deadline:
                time.sleep(0.5)  # polls the outbox, bounded by the deadline
        finally:
            for worker in workers:
                kill(worker, signal.SIGTERM)
    counts = mail_counts(ids)
    twice = sum(1 for n in handler.received.values() if n > 1)
    return {**counts, "received": len(handler.received), "received_twice": twice,
            "killed_worker_after_mails": killed_after}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Example: bench/two_nodes.py --units 400 --json")
    parser.add_argument("--units", type=int, default=600)
    parser.add_argument("--shoppers", type=int, default=500)
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--no-balancer", action="store_true",
                        help="send each shopper to a node directly even if HAProxy is installed")
    args = parser.parse_args()

    def say(message: str) -> None:
        if not args.json:
            print(message, flush=True)

    from aiosmtpd.controller import Controller

    bench.recreate_database()
    bench.flush_bench_keys()
    ids = bench.seed(units=args.units, shoppers=args.shoppers, queue=True)
    tokens = ids.pop("tokens")
    say(f"seeded drop {ids['drop_id']}: {args.units} units, {args.shoppers} shoppers")
    handler = CountingHandler()
    smtp = Controller(handler, hostname="127.0.0.1", port=free_port())
    smtp.start()
    ports = [free_port(), free_port()]
    work = Path(tempfile.mkdtemp(prefix="two-nodes-"))
    nodes = []
    balancer = None if args.no_balancer else haproxy_binary()
    proxy: subprocess.Popen[bytes] | None = None
    figures: dict[int, dict[str, int]] = {}
    try:
        secret = uuid.uuid4().hex * 2  # one shop: every node signs and checks with the same key
        for port in ports:
            nodes.append(bench.start_server(port=port, workers=1, ids=ids, async_commit=False,
                                            secret_key=secret))
        say(f"nodes on {ports}")
        if balancer:
            proxy, front = start_haproxy(balancer, ports, work,
                                         open(work / "haproxy.log", "ab"))  # noqa: SIM115
            say(f"haproxy on {front} in front of them")
            by_node, seconds = asyncio.run(crowd_through([front], ids, tokens))
            figures = {n: node_figures(port) for n, port in enumerate(ports)}
        else:
            by_node, seconds = asyncio.run(crowd_through(ports, ids, tokens))
        if proxy is not None:
            kill(proxy, signal.SIGTERM)
            proxy = None
        for node in nodes:
            bench.stop_server(node)
        nodes = []
        checks = bench.verify(ids, units=args.units)
        say(f"crowd done in {seconds:.1f} s: {checks['drop']}")
        jobs = run_jobs(ids, handler, smtp.port, work / "workers.log", say)
    finally:
        if proxy is not None:
            kill(proxy, signal.SIGTERM)
        for node in nodes:
            bench.stop_server(node)
        smtp.stop()
    answers = {f"node{n + 1}" if not balancer else "haproxy": {
        **{key: value for key, value in bench.summarise(seconds, results).items()
           if key in ("orders", "units", "statuses", "sold_out_answers", "errors")}}
        for n, results in by_node.items()}
    sold_out_answers = sum(node["sold_out_answers"] for node in answers.values())
    per_node = answers if not balancer else {
        f"node{n + 1}": node for n, node in figures.items()}
    result = {
        "through": "haproxy" if balancer else "direct", "answers": answers,
        "units": args.units, "shoppers": args.shoppers, "seconds": round(seconds, 2),
        "units_sold": checks["drop"]["sold"], "oversold": checks["drop"]["oversold"],
        "lost_paid_orders": checks["drop"]["lost_paid_orders"],
        "undersold": bench.undersold({"sold_out_answers": sold_out_answers},
                                     checks["drop"]["slots_remaining"]),
        "nodes": per_node, "mail": jobs, "load_average": bench.load(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

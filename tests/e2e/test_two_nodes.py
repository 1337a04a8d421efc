"""Two nodes on one PostgreSQL and one Redis (``bench/two_nodes.py``, small), behind HAProxy
with the shipped configuration when it is installed (its configuration is checked with
``haproxy -c``): a drop bought through both at once sells exactly its units, loses no paid
order and tells nobody "sold out" while units are left; its confirmation mails then go through workers, one killed mid-way, to
a real SMTP server: every paid order's mail is sent, none is lost, and a mail reaches the
server twice only if its worker died between the server's acceptance and marking it sent."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
DATABASE_URL = os.environ.get("DROPLINE_TEST_DATABASE_URL", "")
REDIS_URL = os.environ.get("DROPLINE_TEST_REDIS_URL", "")

two_nodes_need = pytest.mark.skipif(
    not DATABASE_URL.startswith("postgresql") or not REDIS_URL,
    reason="two nodes need PostgreSQL and Redis: set DROPLINE_TEST_DATABASE_URL and "
    "DROPLINE_TEST_REDIS_URL (.ci/run does)")


def test_haproxys_shipped_configuration_is_valid(tmp_path):
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(haproxy).exists():
        pytest.skip("haproxy is not installed: apt-get install haproxy (./run tests does)")
    # The servers' names resolve only inside compose's network: checked at loopback here.
    config = tmp_path / "haproxy.cfg"
    config.write_text((ROOT / "deploy" / "haproxy" / "haproxy.cfg").read_text()
                      .replace("node1:8000", "127.0.0.1:8001")
                      .replace("node2:8000", "127.0.0.1:8002"))
    checked = subprocess.run([haproxy, "-c", "-f", str(config)], capture_output=True,
                             text=True)

    assert checked.returncode == 0, checked.stdout + checked.stderr


@two_nodes_need
def test_a_drop_through_two_nodes_and_its_mail_through_dying_workers():
    database = f"{make_url(DATABASE_URL).database}_two_nodes"
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "two_nodes.py"), "--units", "80",
         "--shoppers", "60", "--json"],
        env={**os.environ, "DROPLINE_BENCH_DATABASE": database,
             "DROPLINE_BENCH_REDIS_URL": REDIS_URL},
        capture_output=True, text=True, timeout=600, cwd=ROOT)

    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["units_sold"] == 80
    assert (result["oversold"], result["lost_paid_orders"], result["undersold"]) == (0, 0, 0)
    answers = list(result["answers"].values())
    assert sum(a["orders"] for a in answers) == 40
    assert sum(sum(a["statuses"].values()) for a in answers) == 60
    assert all(set(a["statuses"]) <= {"201", "409"} for a in answers)
    if result["through"] == "haproxy":  # the balancer spread the crowd: each node sold some
        nodes = result["nodes"].values()
        assert sum(node["paid"] for node in nodes) == 40
        assert sum(node["refused"] for node in nodes) == 20
        assert all(node["paid"] > 0 for node in nodes)
    else:  # each node served its half of the crowd
        for node in result["nodes"].values():
            assert sum(node["statuses"].values()) == 30
    mail = result["mail"]
    assert mail["paid_orders"] == 40 and mail["queued"] == 40
    assert (mail["sent"], mail["pending"], mail["failed"]) == (40, 0, 0)
    assert mail["received"] == 40  # every paid order's mail reached the server
    assert mail["received_twice"] <= 1  # at most the one the killed worker had in hand

"""The deployment files: the Dockerfile passes hadolint (no Docker engine runs here, so the
image itself is not built in CI), the compose file describes the two-node layout with what it
mounts present, and the Varnish files compile."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HADOLINT = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")


def test_the_dockerfile_passes_hadolint_and_runs_unprivileged():
    lint = subprocess.run([HADOLINT, "--failure-threshold", "info", str(ROOT / "Dockerfile")],
                          capture_output=True, text=True)
    dockerfile = (ROOT / "Dockerfile").read_text()

    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "USER 10001" in dockerfile and dockerfile.count("FROM ") == 2  # multi-stage
    for source in ("requirements.lock", "pyproject.toml", "README.md", "src"):
        assert (ROOT / source).exists()


def test_compose_runs_two_nodes_behind_haproxy_and_varnish():
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    services = compose["services"]

    assert {"postgres", "redis", "node1", "node2", "worker", "haproxy", "varnish"} <= set(services)
    for node in ("node1", "node2"):
        assert services[node]["environment"]["DROPLINE_RUN_SCHEDULER"] == "false"
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / "deploy" / source).exists(), volume
    haproxy = (ROOT / "deploy" / "haproxy" / "haproxy.cfg").read_text()
    assert "server node1 node1:8000 check" in haproxy and "GET /readyz" in haproxy


@pytest.mark.parametrize("name", ["local.vcl", "compose.vcl"])
def test_the_varnish_files_compile(name, tmp_path):
    varnishd = shutil.which("varnishd") or "/usr/sbin/varnishd"
    if not Path(varnishd).exists():
        pytest.skip("varnishd is not installed: apt-get install varnish varnish-modules")
    folder = ROOT / "deploy" / "varnish"
    # Varnish resolves backend names as it compiles: compose's "haproxy" only resolves there.
    vcl = tmp_path / name
    vcl.write_text((folder / name).read_text().replace('"haproxy"', '"127.0.0.1"')
                   .replace('include "./dropline.vcl";', f'include "{folder / "dropline.vcl"}";'))
    compiled = subprocess.run([varnishd, "-C", "-j", "none", "-f", str(vcl), "-n",
                               str(tmp_path / "instance")],
                              capture_output=True, text=True)

    assert compiled.returncode == 0, compiled.stderr[-2000:]

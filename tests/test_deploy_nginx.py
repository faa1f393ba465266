"""The production set-up: deploy/nginx.conf in front of uvicorn holds the slow-header attack.

Regression (issue 12): uvicorn alone has no header-read timeout, so 1 000 connections sending
their headers a byte at a time were held for as long as the clients liked. nginx, started
here with the repository's configuration (only the two ports changed), in a temporary
prefix, as the tests' user, cuts such a connection at its ``client_header_timeout`` while a
normal request through it is answered.

Skipped only when nginx is not installed (``apt-get install nginx-light``; scripts/bootstrap.sh
installs it), with that reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from tests.support import ROOT, free_port, running_server, scaled, stop, wait_healthy

CONFIG = ROOT / "deploy" / "nginx.conf"
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx-light; scripts/bootstrap.sh does)"),
]


def header_timeout() -> float:
    match = re.search(r"^\s*client_header_timeout\s+(\d+)s;", CONFIG.read_text(), re.M)
    assert match, "deploy/nginx.conf sets no client_header_timeout"
    return float(match[1])


def render(port: int, upstream_port: int) -> str:
    """deploy/nginx.conf with its two ports changed (each must occur exactly once)."""
    text = CONFIG.read_text()
    for old, new in ((r"^(\s*)listen 8080;", rf"\1listen 127.0.0.1:{port};"), (r"^(\s*)server 127\.0\.0\.1:8000", rf"\1server 127.0.0.1:{upstream_port}")):
        text, count = re.subn(old, new, text, flags=re.M)
        assert count == 1, f"deploy/nginx.conf should have one line matching {old!r}"
    return text


@contextlib.contextmanager
def running_nginx(prefix: Path, upstream: str) -> Iterator[str]:
    port = free_port()
    for sub in ("logs", "tmp"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(render(port, int(upstream.rsplit(":", 1)[1])))
    # in the foreground (a child of this test, stopped by its pid); as root, the workers stay
    # root too, so that they can write the temporary prefix
    directives = "daemon off;" + (" user root;" if os.geteuid() == 0 else "")
    command = [NGINX, "-p", f"{prefix}/", "-c", str(conf), "-e", str(prefix / "logs" / "error.log"), "-g", directives]
    check = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, f"nginx -t refused deploy/nginx.conf:\n{check.stderr}"
    log = prefix / "logs" / "error.log"
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(proc, base, "nginx", log, 30)
        yield base
    finally:
        stop(proc)


def _service_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRLM_KG_")}
    env.update({"CRLM_KG_QUERY_WORKERS": "1", "PYTHONPATH": str(ROOT)})
    return env


def test_nginx_cuts_a_slow_header_while_normal_requests_pass(tmp_path):
    timeout = header_timeout()
    with running_server(tmp_path / "logs", _service_env(tmp_path), name="uvicorn-behind-nginx") as upstream, \
            running_nginx(tmp_path / "nginx", upstream) as base:
        host, port = base.removeprefix("http://").split(":")
        slow = socket.create_connection((host, int(port)), timeout=5)
        started = time.monotonic()
        slow.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n")
        closed_after = None
        answered_meanwhile = False
        deadline = started + timeout + scaled(10)
        slow.settimeout(0.5)
        while time.monotonic() < deadline:
            try:
                slow.sendall(b"X-Slow: a\r\n")  # one header line at a time, never the blank line that ends them
                data = slow.recv(4096)
            except socket.timeout:
                data = None
            except OSError:  # reset by nginx
                data = b""
            if data == b"":
                closed_after = time.monotonic() - started
                break
            if data is not None:
                raise AssertionError(f"nginx answered an unfinished header: {data[:200]!r}")
            if not answered_meanwhile:
                # a normal client is served through nginx while the slow one is held
                record = {"id": "p-nginx", "age": 64, "liverMetastases": {"count": 2}, "molecular": {"ras": "wild-type"}}
                response = httpx.post(base + "/evidence?view=summary", content=json.dumps(record),
                                      headers={"content-type": "application/json", "accept-encoding": "gzip"}, timeout=scaled(30))
                assert response.status_code == 200, response.text[:300]
                assert response.json()["patient"] == "p-nginx"
                answered_meanwhile = True
        slow.close()
        assert answered_meanwhile
        assert closed_after is not None, f"nginx held a slow header for more than {timeout + scaled(10):g} s"
        # cut by the header timeout (not earlier, by something else)
        assert timeout - 1 <= closed_after <= timeout + scaled(5), closed_after
        assert httpx.get(base + "/health", timeout=scaled(5)).status_code == 200


def test_nginx_refuses_an_oversized_body_before_the_service_reads_it(tmp_path):
    with running_server(tmp_path / "logs", _service_env(tmp_path), name="uvicorn-behind-nginx") as upstream, \
            running_nginx(tmp_path / "nginx", upstream) as base:
        response = httpx.post(base + "/patients/validate", content=b" " * (2 << 20), headers={"content-type": "application/json"}, timeout=scaled(10))
        assert response.status_code == 413
        small = httpx.post(base + "/patients/validate", content=json.dumps({"id": "p1", "age": 60}), headers={"content-type": "application/json"},
                           timeout=scaled(10))
        assert small.status_code == 200, small.text[:300]
        # gzip from nginx for a plain answer the service does not compress itself
        big = httpx.get(base + "/openapi.json", headers={"accept-encoding": "gzip"}, timeout=scaled(10))
        assert big.status_code == 200 and big.headers.get("content-encoding") == "gzip"

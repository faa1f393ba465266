"""Shared fixtures: the repository graph is loaded once per session."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from crlm_kg.store import EmbeddedStore


@pytest.fixture(scope="session")
def repo_store() -> EmbeddedStore:
    return EmbeddedStore.from_repository()


ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def live_server():
    port = _free_port()
    env = dict(os.environ, CRLM_KG_QUERY_TIMEOUT="2", CRLM_KG_QUERY_WORKERS="2", PYTHONPATH=str(ROOT))
    env.pop("CRLM_KG_SPARQL_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError("uvicorn exited: " + proc.stdout.read().decode(errors="replace")[-2000:])
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start in 60 s")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()




# --------------------------------------------------------------------------- hooks: quality gates, server logs

from tests import quality_gates, support  # noqa: E402


def pytest_configure(config):
    config.pluginmanager.register(quality_gates, "crlm-kg-quality-gates")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test shows the tail of every server log of ``support.running_server`` that is still open."""
    report = yield
    if report.failed:
        for name, path in support.RUNNING_LOGS.items():
            report.sections.append((f"server log {name} ({path})", support.log_tail(path)))
    return report
